"""Load the project's evaluation inputs, the truth file and the clerical labels, into the
warehouse; errors name the config key at fault (``truth`` or ``labels``)."""

from __future__ import annotations

import duckdb

from linkage.config import ProjectConfig
from linkage.errors import at_config_key
from training.ground_truth import load_truth
from training.labels import LabelsSummary, load_labels


def load_project_truth(con: duckdb.DuckDBPyConnection, project: ProjectConfig) -> bool:
    """Load ``truth.path`` into ``ground_truth``; False when the config names no truth.

    Raises:
        SourceError: The file cannot be read ("truth: ...").
    """
    truth = project.truth
    if truth is None:
        return False
    with at_config_key("truth"):
        load_truth(
            con,
            path=project.resolve(truth.path),
            source_column=truth.source_column,
            id_column=truth.id_column,
            entity_column=truth.entity_column,
        )
    return True


def load_project_labels(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig
) -> LabelsSummary | None:
    """Load ``labels.path`` into ``clerical_labels``; None when the config has no labels.

    Raises:
        LabelsError: The file cannot be used ("labels: ...").
    """
    labels = project.labels
    if labels is None:
        return None
    with at_config_key("labels"):
        return load_labels(
            con,
            path=project.resolve(labels.path),
            sources=list(project.sources),
            source_dataset_l=labels.source_dataset_l,
            source_dataset_r=labels.source_dataset_r,
            match_score_threshold=labels.match_score_threshold,
        )
