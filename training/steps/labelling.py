"""The labelling step, run on demand (job ``label_pairs``): Splink's clerical labelling
tool over a seeded sample of scored pairs near the match threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.config import ProjectConfig
from linkage.model.store import StoredModel, scoring_model
from linkage.tables import CUSTOMER_RECORDS, LABELLING_TOOL_FILE, PAIRWISE_MATCHES
from training.labelling_tool import write_labelling_tool


@dataclass(frozen=True)
class LabellingTool:
    """The page :func:`write_project_labelling_tool` wrote (none when ``pairs`` is 0)."""

    pairs: int
    path: Path
    model: StoredModel
    seed: int


def write_project_labelling_tool(
    con: duckdb.DuckDBPyConnection,
    project: ProjectConfig,
    *,
    pairs: int,
    band: float,
    seed: int | None = None,
) -> LabellingTool:
    """Write the labelling tool for up to ``pairs`` unlabelled scored pairs within
    ``band`` match weight of the threshold; ``seed`` defaults to ``model.seed``.

    With no such pair, an earlier page is removed: no one should label an earlier run's
    pairs.
    """
    seed = project.model.seed if seed is None else seed
    out_path = project.artifacts / LABELLING_TOOL_FILE
    stored = scoring_model(con)
    written = write_labelling_tool(
        con,
        records_table=CUSTOMER_RECORDS,
        pairs_table=PAIRWISE_MATCHES,
        model=stored.model,
        threshold=stored.match_threshold,
        band=band,
        sample_size=pairs,
        seed=seed,
        out_path=out_path,
    )
    if written == 0:
        out_path.unlink(missing_ok=True)
    return LabellingTool(pairs=written, path=out_path, model=stored, seed=seed)
