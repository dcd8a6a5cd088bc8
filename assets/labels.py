"""Loading the project's clerical labels inside an asset."""

from __future__ import annotations

import dagster as dg
import duckdb

from linkage.config.project import LabelsConfig, ProjectConfig
from training.labels import LabelsError, LabelsSummary, load_labels


def load_project_labels(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, labels: LabelsConfig
) -> LabelsSummary:
    """Load ``labels.path`` into ``clerical_labels``; a bad file fails the asset with a
    message naming the config file and the key ``labels``."""
    try:
        return load_labels(
            con,
            path=project.resolve(labels.path),
            sources=list(project.sources),
            source_dataset_l=labels.source_dataset_l,
            source_dataset_r=labels.source_dataset_r,
            match_score_threshold=labels.match_score_threshold,
        )
    except LabelsError as exc:
        raise dg.Failure(description=f"{project.config_path}: labels: {exc}") from exc
