"""The ledger entry of a linkage run: what went in, which model, what came out.

:func:`success_entry` gathers a finished run's facts from the warehouse,
:func:`failure_entry` those of a failed one (whatever can still be read). Both give
plain JSON-able dicts for :func:`linkage.audit.ledger.append_run`; the keys are listed in
the README (*Audit*). No record value goes in: ids, counts, hashes, file names.

Examples:
    ```py
    entry = success_entry(con, context=RunContext(run_id=rid, job_name="meld_pipeline",
                          started_at=t0, sources=["crm"], config=cfg, config_hash=h,
                          code_folder=Path(".")), clustering_run_id=rid,
                          mlflow_run_id=mlflow_id, model_alias="champion")
    append_run(con, run_id=rid, status="succeeded", entry=entry)
    ```
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from linkage.audit.ledger import canonical_json
from linkage.audit.run_facts import (
    assignment_sha256,
    code_version,
    evaluation_metrics,
    input_fingerprints,
    partition_sha256,
    pipeline_counts,
    redact_config,
    table_sha256,
)
from linkage.model.store import scoring_model
from linkage.model.vetoes import vetoes_in_force
from linkage.tables import CUSTOMER_RECORDS
from linkage.warehouse import table_columns, table_exists

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000
NOT_SCORING_INPUT = frozenset({"loaded_at"})
"""Columns of ``customer_records`` left out of its hash: when, not what, was loaded."""


@dataclass(frozen=True)
class RunContext:
    """What the orchestrator knows about a run before looking at the warehouse."""

    run_id: str
    job_name: str
    started_at: datetime | None
    sources: Sequence[str]
    config: Mapping[str, Any]
    config_hash: str
    code_folder: Path
    extra: Mapping[str, Any] = field(default_factory=dict)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def utc_now() -> datetime:
    """Now, in UTC without a time zone (as the warehouse stores times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def scoring_input_sha256(con: duckdb.DuckDBPyConnection) -> str | None:
    """SHA-256 of the records that were scored, independent of row order and load time."""
    if not table_exists(con, CUSTOMER_RECORDS):
        return None
    columns = [c for c in table_columns(con, CUSTOMER_RECORDS) if c not in NOT_SCORING_INPUT]
    return table_sha256(con, CUSTOMER_RECORDS, columns)


def _base(context: RunContext, status: str) -> dict[str, Any]:
    config = redact_config(dict(context.config))
    return {
        "dagster_run_id": context.run_id,
        "job_name": context.job_name,
        "status": status,
        "started_at": _iso(context.started_at),
        "ended_at": _iso(utc_now()),
        "config_hash": context.config_hash,
        "config_sha256": hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest(),
        "config": config,
        "code_version": code_version(context.code_folder),
        **dict(context.extra),
    }


def success_entry(
    con: duckdb.DuckDBPyConnection,
    *,
    context: RunContext,
    clustering_run_id: str | None,
    mlflow_run_id: str | None,
    model_alias: str | None,
) -> dict[str, Any]:
    """The ledger entry of a run that scored and clustered the warehouse.

    Args:
        con: Warehouse connection after clustering.
        context: The run as the orchestrator sees it.
        clustering_run_id: The run that produced ``customer_clusters`` (this run, unless
            only the audit step was re-run).
        mlflow_run_id: This linkage run's MLflow run.
        model_alias: Registry aliases of the scoring model version (comma-separated).
    """
    stored = scoring_model(con)
    entry = _base(context, "succeeded")
    entry.update(
        mlflow_run_id=mlflow_run_id,
        model_name=stored.model_name,
        model_version=stored.model_version,
        model_alias=model_alias,
        model_mlflow_run_id=stored.mlflow_run_id,
        model_trained_by_run=stored.dagster_run_id,
        clustering_run_id=clustering_run_id,
        inputs=input_fingerprints(con, context.sources),
        scoring_input_sha256=scoring_input_sha256(con),
        thresholds={
            "match_threshold": stored.match_threshold,
            "prediction_floor": stored.prediction_floor,
            "link_vetoes": vetoes_in_force(con),
        },
        counts=pipeline_counts(
            con,
            context.sources,
            threshold=stored.match_threshold,
            clustering_run_id=clustering_run_id,
        ),
        metrics=evaluation_metrics(con, clustering_run_id or context.run_id),
        partition_sha256=partition_sha256(con),
        assignment_sha256=assignment_sha256(con),
        error=None,
    )
    return entry


def failure_entry(
    con: duckdb.DuckDBPyConnection | None,
    *,
    context: RunContext,
    failed_step: str | None,
    error: str,
) -> dict[str, Any]:
    """The ledger entry of a failed run: its error and whatever inputs were loaded.

    Args:
        con: Warehouse connection, or None when the warehouse cannot be opened.
        context: The run as the orchestrator sees it.
        failed_step: The step (asset) that failed first.
        error: The error message; cut to :data:`MAX_ERROR_CHARS`.
    """
    entry = _base(context, "failed")
    entry.update(
        failed_step=failed_step,
        error=error[:MAX_ERROR_CHARS],
        inputs=input_fingerprints(con, context.sources) if con is not None else [],
        counts={},
        metrics={},
    )
    return entry
