"""Typed Dagster resources: the DuckDB warehouse and the MLflow store.

The warehouse resource also keeps runs apart: every run holds the warehouse's run lock
(:mod:`linkage.run_lock`) from the moment its resources are set up, before any step
writes, to the end of the run. Meld's jobs use the in-process executor, where resources
are set up once per run. A second run started meanwhile fails at resource setup with
the holder's run id and start time, and writes nothing. The run that takes the lock
first records any earlier run that was killed or crashed (the lock file says it never
released the lock) as failed: ledger, MLflow and Dagster. At the end of a run with no
failed step it publishes the warehouse snapshot reads use while the next run writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from linkage.config import ProjectConfig, load_project
from linkage.errors import MeldError
from linkage.run_lock import COMMAND, RunInProgressError, RunLock, RunLockInfo, hold_run_lock
from linkage.snapshot import publish_snapshot
from linkage.warehouse import WarehouseBusyError, connect_warehouse, is_lock_conflict
from training.mlflow_store import MlflowTarget
from training.stale_runs import KILLED_ERROR, record_killed_run

logger = logging.getLogger(__name__)

CONNECT_WAIT_SECONDS = 60.0
"""How long a step waits for a read command to close the warehouse file."""
REFUSED_TAG = "meld/refused_by_run"
"""Tag of a run refused because another run held the warehouse: the holder's run id."""


class WarehouseResource(dg.ConfigurableResource):
    """The embedded DuckDB warehouse file every asset reads and writes, one run at a time."""

    path: str = Field(description="DuckDB database file; created with its folder if missing.")
    config_path: str | None = Field(
        default=None,
        description="The project config: with it, a run records earlier runs that were "
        "killed or crashed before they finished in its ledger and MLflow store.",
    )
    publish_snapshot: bool = Field(
        default=True,
        description="At the end of a run with no failed step, publish a copy of the "
        "warehouse that read commands use while the next run writes.",
    )
    _held: ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Take the run lock for the whole run (not for a sensor or a schedule, nor when
        ``dagster job execute`` sets resources up again after the run has ended, to build
        its result)."""
        run = context.run
        if run is None or run.is_finished:
            return
        stack = ExitStack()
        try:
            lock = stack.enter_context(
                hold_run_lock(Path(self.path), run_id=run.run_id, job=run.job_name)
            )
        except RunInProgressError as exc:
            holder = exc.holder.run_id if exc.holder is not None else "?"
            context.instance.add_run_tags(run.run_id, {REFUSED_TAG: holder})
            raise
        try:
            if lock.stale and self.config_path is not None:
                _record_killed_runs(self, context.instance, lock)
        except BaseException:  # teardown is not called when setup fails: release here
            stack.close()
            raise
        self._held = stack

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Publish the snapshot when no step failed, then release the run lock."""
        held, self._held = self._held, None
        if held is None:
            return
        with held:
            run = context.run
            if self.publish_snapshot and run is not None and _no_step_failed(context, run.run_id):
                try:
                    publish_snapshot(Path(self.path), run_id=run.run_id, job=run.job_name)
                except (OSError, duckdb.Error):  # reads keep the previous snapshot
                    logger.exception("could not publish the warehouse snapshot")

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse for one step and close it afterwards.

        Waits up to :data:`CONNECT_WAIT_SECONDS` for a read command that has the file
        open to close it.

        Examples:
            ```py
            with warehouse.connect() as con:
                con.execute("SELECT count(*) FROM customer_records").fetchall()
            ```
        """
        try:
            con = connect_warehouse(Path(self.path), wait=CONNECT_WAIT_SECONDS)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            raise WarehouseBusyError(
                f"the warehouse {self.path} is still open in another process after "
                f"{CONNECT_WAIT_SECONDS:.0f}s (a read command, a DuckDB client?): close it "
                "and run again"
            ) from exc
        try:
            yield con
        finally:
            con.close()


def _no_step_failed(context: dg.InitResourceContext, run_id: str) -> bool:
    failures = context.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return not failures


def _step_in_progress(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The step a dead run had started and not finished, if Dagster knows the run."""
    for stats in instance.get_run_step_stats(run_id):
        if stats.start_time is not None and stats.end_time is None:
            return stats.step_key
    return None


def _last_seen(instance: dg.DagsterInstance, run_id: str) -> datetime | None:
    """When a dead run logged its last Dagster event (UTC), if Dagster knows the run."""
    records = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    if not records:
        return None
    return datetime.fromtimestamp(records[0].event_log_entry.timestamp, timezone.utc).replace(
        tzinfo=None
    )


def _record_killed_run(
    warehouse: WarehouseResource,
    instance: dg.DagsterInstance,
    project: ProjectConfig,
    killed: RunLockInfo,
    *,
    noticed_by: str,
) -> None:
    """Record one dead run as failed: ledger and MLflow, then its Dagster run."""
    with warehouse.connect() as con:
        record_killed_run(
            con,
            project,
            MlflowResource.from_project(project).target(),
            killed,
            noticed_by=noticed_by,
            failed_step=_step_in_progress(instance, killed.run_id),
            last_seen=_last_seen(instance, killed.run_id),
        )
    dagster_run = instance.get_run_by_id(killed.run_id)
    if dagster_run is not None and not dagster_run.is_finished:
        instance.report_run_failed(dagster_run, message=f"Meld: {KILLED_ERROR}")


def _record_killed_runs(
    warehouse: WarehouseResource, instance: dg.DagsterInstance, lock: RunLock
) -> None:
    """Record each stale run of ``lock`` as failed: ledger, MLflow, Dagster.

    Best effort: this run goes on whatever happens. A run that could not be recorded is
    logged and stays in the lock file, for the next run to record.
    """
    assert warehouse.config_path is not None
    try:
        project = load_project(warehouse.config_path)
    except MeldError:
        logger.exception("cannot record killed runs: the project config does not load")
        return
    recorded = []
    for killed in lock.stale:
        if killed.kind == COMMAND:  # not a linkage run: nothing to record in the ledger
            logger.warning("%s was killed before it finished", killed.describe())
        else:
            try:
                _record_killed_run(
                    warehouse, instance, project, killed, noticed_by=lock.info.run_id
                )
            except Exception:  # the ledger, MLflow or Dagster failed; the next run retries
                logger.exception("could not record killed run %s as failed", killed.run_id)
                continue
        recorded.append(killed.run_id)
    lock.mark_recorded(recorded)


class MlflowResource(dg.ConfigurableResource):
    """Where training runs, charts and registered models are tracked."""

    tracking_uri: str = Field(description="MLflow tracking store, e.g. sqlite:///mlflow.db.")
    experiment: str = Field(description="Experiment that holds Meld's training runs.")
    artifact_location: str = Field(description="Folder for run artifacts and models.")
    registered_model: str = Field(description="Name of the model in the MLflow registry.")

    @classmethod
    def from_project(cls, project: ProjectConfig) -> MlflowResource:
        """The MLflow resource of a project's ``mlflow`` section."""
        return cls(
            tracking_uri=project.mlflow.tracking_uri,
            experiment=project.mlflow.experiment,
            artifact_location=project.mlflow.artifact_location,
            registered_model=project.mlflow.registered_model,
        )

    def target(self) -> MlflowTarget:
        """The plain settings the domain code in ``training`` needs."""
        return MlflowTarget(
            tracking_uri=self.tracking_uri,
            experiment=self.experiment,
            artifact_location=self.artifact_location,
            registered_model=self.registered_model,
        )

    def ui_command(self) -> str:
        """The shell command that opens the MLflow UI on this store."""
        return f"mlflow ui --backend-store-uri {self.tracking_uri}"
