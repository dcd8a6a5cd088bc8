"""Audit: every linkage run in the append-only ledger ``linkage_runs``, with its report.

- The asset ``linkage_runs`` runs last: it appends the run's row (inputs, model,
  config, counts, metrics, hashes), writes the run report (offline HTML) and the
  run's customers snapshot, and logs both to the run's MLflow run.
- A failure hook on every pipeline asset records a failed run with its error at
  the first failing step; the sensor ``linkage_run_failures`` records runs that
  failed elsewhere (a blocking check, a run that never started a step) while the
  Dagster daemon runs.
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.audit.ledger import append_run, has_run, previous_success
from linkage.audit.run_entry import RunContext, failure_entry, success_entry
from linkage.audit.run_report import write_run_report
from linkage.config.project import ProjectConfig
from linkage.model.store import scoring_model
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMERS_SNAPSHOT_FILE,
    LEDGER_HEAD_FILE,
    LINKAGE_RUNS,
    RUN_REPORT_FILE,
    RUNS_FOLDER,
)
from training.promotion import model_aliases
from training.run_tracking import close_linkage_run, open_linkage_run

logger = logging.getLogger(__name__)

AUDIT_GROUP = "audit"
CODE_FOLDER = Path(__file__).resolve().parents[1]


def run_folder(project: ProjectConfig, run_id: str) -> Path:
    """Where a run's report and customers snapshot are written."""
    return project.artifacts / RUNS_FOLDER / run_id


def ledger_head_file(project: ProjectConfig) -> Path:
    """The text file that anchors the ledger's newest row outside the warehouse."""
    return project.artifacts / LEDGER_HEAD_FILE


def _run_context(
    project: ProjectConfig, instance: dg.DagsterInstance, run_id: str, job_name: str
) -> RunContext:
    stats = instance.get_run_stats(run_id)
    started = (
        datetime.fromtimestamp(stats.start_time, timezone.utc).replace(tzinfo=None)
        if stats.start_time
        else None
    )
    return RunContext(
        run_id=run_id,
        job_name=job_name,
        started_at=started,
        sources=list(project.sources),
        config=project.model_dump(mode="json", exclude={"config_path"}),
        config_hash=project.fingerprint(),
        code_folder=CODE_FOLDER,
    )


def _write_customers_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    table = con.sql(
        f"SELECT unique_id, customer_id FROM {CUSTOMER_CLUSTERS} ORDER BY unique_id"
    ).to_arrow_table()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def build_audit_assets(
    project: ProjectConfig, upstream: Sequence[dg.AssetKey]
) -> list[dg.AssetsDefinition]:
    """The ledger asset, downstream of every other pipeline asset (``upstream``)."""

    @dg.asset(group_name=AUDIT_GROUP, kinds={"duckdb", "mlflow"}, deps=list(upstream))
    def linkage_runs(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
    ) -> dg.MaterializeResult:
        """The run ledger, one row appended per linkage run and never changed: Dagster and
        MLflow run ids, model name, version and alias, code version, config hash and
        effective config (no secrets), every input delivery (file, size, SHA-256, rows),
        thresholds, counts (records, quarantined, pairs, customers, merges, splits, moved
        records), evaluation metrics, times and status. Failed runs are appended with
        their error by a failure hook. Each row's row_hash chains it to the previous row:
        `meld verify-ledger` checks the chain. Also writes the run report (offline HTML:
        inputs, data quality, model, thresholds, evaluation, customer sizes, changes since
        the previous run), logged to the run's MLflow run in the experiment
        '<experiment> linkage runs', and a snapshot of every record's customer id for
        `meld diff` and `meld reproduce`."""
        target = mlflow.target()
        run_id = context.run_id
        job_name = context.dagster_run.job_name
        run_context = _run_context(project, context.instance, run_id, job_name)
        latest = context.instance.get_latest_materialization_event(dg.AssetKey(CUSTOMER_CLUSTERS))
        clustering_run_id = latest.run_id if latest is not None else None
        folder = run_folder(project, run_id)
        with warehouse.connect() as con:
            try:
                stored = scoring_model(con)
            except LookupError as exc:
                raise dg.Failure(description=f"nothing to audit: {exc}") from exc
            aliases = model_aliases(target, stored.model_name)
            alias = ",".join(sorted(a for a, v in aliases.items() if v == stored.model_version))
            mlflow_run_id = open_linkage_run(target, dagster_run_id=run_id, job_name=job_name)
            entry = success_entry(
                con,
                context=run_context,
                clustering_run_id=clustering_run_id,
                mlflow_run_id=mlflow_run_id,
                model_alias=alias or None,
            )
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
                run_id=run_id,
                status="succeeded",
                entry=entry,
                head_file=ledger_head_file(project),
            )
            metadata = table_metadata(con, LINKAGE_RUNS)
        close_linkage_run(
            target,
            mlflow_run_id,
            entry=entry,
            files={"report": report},
            ledger_tags={"ledger.seq": str(row.seq), "ledger.row_hash": row.row_hash},
        )
        counts = entry["counts"]
        context.log.info(
            "ledger row #%d: %d customers, %d created, %d merged, %d split, %d records moved",
            row.seq,
            counts["customers"],
            counts["created"],
            counts["merged"],
            counts["split"],
            counts["records_moved"],
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "ledger_seq": row.seq,
                "row_hash": row.row_hash,
                "model_version": stored.model_version,
                "mlflow_linkage_run_id": mlflow_run_id,
                "partition_sha256": entry["partition_sha256"],
                **{k: int(v) for k, v in counts.items()},
                "run_report": dg.MetadataValue.path(str(report)),
                "run_report_link": dg.MetadataValue.url(report.resolve().as_uri()),
                "customers_snapshot": dg.MetadataValue.path(str(snapshot)),
            }
        )

    return [linkage_runs]


def record_failure(
    project: ProjectConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    *,
    instance: dg.DagsterInstance,
    run_id: str,
    job_name: str,
    failed_step: str | None,
    error: str,
) -> bool:
    """Append a failed run to the ledger, and to MLflow as a failed linkage run, unless
    the ledger has it already.

    Returns:
        Whether a row was appended.
    """
    run_context = _run_context(project, instance, run_id, job_name)
    with warehouse.connect() as con:
        if has_run(con, run_id, status="failed"):
            return False
        entry = failure_entry(con, context=run_context, failed_step=failed_step, error=error)
        target = mlflow.target()
        try:
            entry["mlflow_run_id"] = open_linkage_run(
                target, dagster_run_id=run_id, job_name=job_name
            )
        except Exception:  # MLflow unreachable: the ledger row matters more
            logger.exception("could not open an MLflow run for failed run %s", run_id)
            entry["mlflow_run_id"] = None
        row = append_run(
            con,
            run_id=run_id,
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
    return True


def build_failure_hook(project: ProjectConfig) -> dg.HookDefinition:
    """A hook that records the run as failed when one of its steps fails."""

    @dg.failure_hook(
        name="record_failed_linkage_run", required_resource_keys={"warehouse", "mlflow"}
    )
    def record_failed_linkage_run(context: dg.HookContext) -> None:
        exc = context.op_exception
        error = f"{type(exc).__name__}: {exc}" if exc is not None else "step failed"
        try:
            appended = record_failure(
                project,
                context.resources.warehouse,
                context.resources.mlflow,
                instance=context.instance,
                run_id=context.run_id,
                job_name=context.job_name,
                failed_step=context.op.name,
                error=error,
            )
        except Exception:  # the run has failed already; say why the ledger could not
            context.log.exception("could not record the failed run in %s", LINKAGE_RUNS)
            return
        if appended:
            context.log.info("run recorded as failed in %s", LINKAGE_RUNS)

    return record_failed_linkage_run
