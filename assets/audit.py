"""Audit: every linkage run in the append-only ledger ``linkage_runs``, with its report.

- The asset ``linkage_runs`` runs last: it appends the run's row (inputs, model,
  config, counts, metrics, hashes), writes the run report (offline HTML) and the
  run's customers snapshot, and logs both to the run's MLflow run.
- A failure hook on every pipeline asset records a failed run with its error at
  the first failing step; the sensor ``linkage_run_failures`` records runs that
  failed elsewhere (a blocking check, a run that never started a step) while the
  Dagster daemon runs.
"""

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from assets.failures import failure_at, failure_text
from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.audit.run_entry import RunContext
from linkage.config import ProjectConfig
from linkage.errors import safe_error_text
from linkage.tables import CUSTOMER_CLUSTERS, LINKAGE_RUNS
from training.steps.audit import record_failed_run, record_linkage_run

AUDIT_GROUP = "audit"
CODE_FOLDER = Path(__file__).resolve().parents[1]


def _run_context(
    project: ProjectConfig, instance: dg.DagsterInstance, run_id: str, job_name: str
) -> RunContext:
    """What Dagster knows of the run, for its ledger entry."""
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
        run_context = _run_context(
            project, context.instance, context.run_id, context.dagster_run.job_name
        )
        latest = context.instance.get_latest_materialization_event(dg.AssetKey(CUSTOMER_CLUSTERS))
        with warehouse.connect() as con, failure_at():
            recorded = record_linkage_run(
                con,
                project,
                mlflow.target(),
                context=run_context,
                clustering_run_id=latest.run_id if latest is not None else None,
            )
            metadata = table_metadata(con, LINKAGE_RUNS)
        row, counts = recorded.row, recorded.entry["counts"]
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
                "model_version": recorded.model.model_version,
                "mlflow_linkage_run_id": recorded.mlflow_run_id,
                "partition_sha256": recorded.entry["partition_sha256"],
                **{k: int(v) for k, v in counts.items()},
                "run_report": dg.MetadataValue.path(str(recorded.report)),
                "run_report_link": dg.MetadataValue.url(recorded.report.resolve().as_uri()),
                "customers_snapshot": dg.MetadataValue.path(str(recorded.snapshot)),
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
    """Append a failed run to the ledger (and MLflow) unless the ledger has it already.

    Returns:
        Whether a row was appended.
    """
    run_context = _run_context(project, instance, run_id, job_name)
    with warehouse.connect() as con:
        row = record_failed_run(
            con,
            project,
            mlflow.target(),
            context=run_context,
            failed_step=failed_step,
            error=error,
        )
    return row is not None


def build_failure_hook(project: ProjectConfig) -> dg.HookDefinition:
    """A hook that records the run as failed when one of its steps fails."""

    @dg.failure_hook(
        name="record_failed_linkage_run", required_resource_keys={"warehouse", "mlflow"}
    )
    def record_failed_linkage_run(context: dg.HookContext) -> None:
        error = failure_text(context.op_exception)  # never a record value
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
        except Exception as exc:  # the run has failed already; say why the ledger could not
            context.log.error(
                "could not record the failed run in %s: %s", LINKAGE_RUNS, safe_error_text(exc)
            )
            return
        if appended:
            context.log.info("run recorded as failed in %s", LINKAGE_RUNS)

    return record_failed_linkage_run
