"""The audit steps: record a linkage run in the append-only ledger (``linkage_runs``),
with its report, customers snapshot and MLflow linkage run; and record a failed run.

The orchestrator describes the run (:class:`linkage.audit.run_entry.RunContext`); these
functions read everything else from the warehouse.

What leaves the warehouse holds no personal data: a failed run's error is reduced by
:func:`linkage.errors.safe_error_text`; the customers snapshot (record ids are
identifiers of people) stays beside the warehouse; MLflow gets the run report with
every record id masked, or no report under ``mlflow.record_level_artifacts: none``.

Examples:
    ```py
    recorded = record_linkage_run(con, project, target, context=ctx, clustering_run_id=rid)
    recorded.row.seq, recorded.report
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from linkage.audit.ledger import LedgerRow, append_run, has_run, previous_success
from linkage.audit.run_entry import RunContext, failure_entry, success_entry
from linkage.audit.run_report.page import write_run_report
from linkage.config import ProjectConfig
from linkage.errors import MeldError, safe_error_text
from linkage.model.store import StoredModel, scoring_model
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMERS_SNAPSHOT_FILE,
    LEDGER_HEAD_FILE,
    RUN_REPORT_FILE,
    RUNS_FOLDER,
)
from training.chart_masking import mask_record_ids
from training.mlflow_store import MlflowTarget
from training.promotion import model_aliases
from training.run_tracking import close_linkage_run, open_linkage_run

logger = logging.getLogger(__name__)

MASKED_FOLDER = "masked"
"""Subfolder of a run's folder for the copies that may leave the warehouse."""


class NothingToAuditError(MeldError, LookupError):
    """The run reached the ledger before any model scored the warehouse."""


def run_folder(project: ProjectConfig, run_id: str) -> Path:
    """Where a run's report and customers snapshot are written."""
    return project.artifacts / RUNS_FOLDER / run_id


def ledger_head_file(project: ProjectConfig) -> Path:
    """The text file that anchors the ledger's newest row outside the warehouse."""
    return project.artifacts / LEDGER_HEAD_FILE


def _write_customers_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    table = con.sql(
        f"SELECT unique_id, customer_id FROM {CUSTOMER_CLUSTERS} ORDER BY unique_id"
    ).to_arrow_table()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@dataclass(frozen=True)
class RecordedRun:
    """The ledger row a run got, its entry, files and MLflow linkage run."""

    row: LedgerRow
    entry: dict[str, Any]
    model: StoredModel
    mlflow_run_id: str
    report: Path
    snapshot: Path


def record_linkage_run(
    con: duckdb.DuckDBPyConnection,
    project: ProjectConfig,
    target: MlflowTarget,
    *,
    context: RunContext,
    clustering_run_id: str | None,
) -> RecordedRun:
    """Append the run's succeeded row to the ledger, with the run report and customers
    snapshot, and log both to a new MLflow linkage run.

    Raises:
        NothingToAuditError: No model has scored pairs in this warehouse.
    """
    try:
        stored = scoring_model(con)
    except LookupError as exc:
        raise NothingToAuditError(f"nothing to audit: {exc}") from exc
    aliases = model_aliases(target, stored.model_name)
    alias = ",".join(sorted(a for a, v in aliases.items() if v == stored.model_version))
    mlflow_run_id = open_linkage_run(
        target, dagster_run_id=context.run_id, job_name=context.job_name
    )
    entry = success_entry(
        con,
        context=context,
        clustering_run_id=clustering_run_id,
        mlflow_run_id=mlflow_run_id,
        model_alias=alias or None,
    )
    folder = run_folder(project, context.run_id)
    snapshot = folder / CUSTOMERS_SNAPSHOT_FILE
    _write_customers_snapshot(con, snapshot)
    entry["customers_snapshot"] = str(snapshot)
    entry["run_report"] = str(folder / RUN_REPORT_FILE)
    last = previous_success(con, before_seq=2**62)
    report = write_run_report(
        con,
        entry=entry,
        previous=last.entry if last is not None else None,
        model=stored.model,
        out_path=folder / RUN_REPORT_FILE,
    )
    row = append_run(
        con,
        run_id=context.run_id,
        status="succeeded",
        entry=entry,
        head_file=ledger_head_file(project),
    )
    shared = _shareable_report(project, report)
    close_linkage_run(
        target,
        mlflow_run_id,
        entry=entry,
        files={"report": shared} if shared is not None else {},
        ledger_tags={"ledger.seq": str(row.seq), "ledger.row_hash": row.row_hash},
    )
    return RecordedRun(row, entry, stored, mlflow_run_id, report, snapshot)


def _shareable_report(project: ProjectConfig, report: Path) -> Path | None:
    """The run report as MLflow may get it: a copy with every record id masked
    (``masked/run_report.html`` beside it), or None under ``record_level_artifacts: none``."""
    if project.mlflow.record_level_artifacts != "masked":
        return None
    masked = report.parent / MASKED_FOLDER / report.name
    masked.parent.mkdir(parents=True, exist_ok=True)
    text = mask_record_ids(report.read_text(encoding="utf-8"), project.sources)
    masked.write_text(text, encoding="utf-8")
    return masked


def record_failed_run(
    con: duckdb.DuckDBPyConnection,
    project: ProjectConfig,
    target: MlflowTarget,
    *,
    context: RunContext,
    failed_step: str | None,
    error: str | BaseException,
) -> LedgerRow | None:
    """Append a failed run to the ledger, and to MLflow as a failed linkage run, unless
    the ledger has it already.

    Args:
        con: Warehouse connection.
        project: The project config.
        target: The MLflow store.
        context: The run as the orchestrator sees it.
        failed_step: The step (asset) that failed first.
        error: The error as a value-free text (``assets.failures.failure_text``), or
            the exception, reduced here by :func:`~linkage.errors.safe_error_text`. The
            ledger row cannot be changed later, so it must hold no record value.

    Returns:
        The row appended, or None when the ledger had the run.
    """
    if has_run(con, context.run_id, status="failed"):
        return None
    text = error if isinstance(error, str) else safe_error_text(error)
    entry = failure_entry(con, context=context, failed_step=failed_step, error=text)
    try:
        entry["mlflow_run_id"] = open_linkage_run(
            target, dagster_run_id=context.run_id, job_name=context.job_name
        )
    except Exception as exc:  # MLflow unreachable: the ledger row matters more
        logger.error(
            "could not open an MLflow run for failed run %s: %s",
            context.run_id,
            safe_error_text(exc),
        )
        entry["mlflow_run_id"] = None
    row = append_run(
        con,
        run_id=context.run_id,
        status="failed",
        entry=entry,
        head_file=ledger_head_file(project),
    )
    if entry["mlflow_run_id"] is not None:
        close_linkage_run(
            target,
            entry["mlflow_run_id"],
            entry=entry,
            files={},
            ledger_tags={"ledger.seq": str(row.seq), "ledger.row_hash": row.row_hash},
        )
    return row
