"""Runs killed or crashed before they finished: record them as failed, end their MLflow runs.

A run that dies without a chance to clean up (SIGKILL, out of memory, a power cut)
leaves its run lock file saying "running" (:mod:`linkage.run_lock`), no ledger row and
its MLflow runs RUNNING. The next run that takes the lock calls
:func:`record_killed_run` for each: a failed ledger row (with a failed MLflow linkage
run, as any failed run gets) and every MLflow run still RUNNING with the killed run's
``dagster_run_id`` tag (the training run of :mod:`training.tracking`, the linkage run of
:mod:`training.run_tracking`) ended as FAILED. Nothing here reads record values: the
ledger row holds ids, times, the step and a fixed error text.

Examples:
    ```py
    with hold_run_lock(warehouse, run_id=rid, job=job) as lock:
        with warehouse_connection() as con:
            for killed in lock.stale:
                record_killed_run(con, project, target, killed, noticed_by=rid)
        lock.mark_recorded(k.run_id for k in lock.stale)
    ```
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from linkage.audit.ledger import has_run
from linkage.audit.run_entry import RunContext
from linkage.config import ProjectConfig
from linkage.run_lock import RunLockInfo
from training.mlflow_store import MlflowTarget, tracking_client
from training.run_tracking import linkage_experiment_name
from training.steps.audit import record_failed_run

logger = logging.getLogger(__name__)

KILLED_ERROR = "killed or crashed before it finished (it never released its run lock)"
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
CODE_FOLDER = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class KilledRunRecord:
    """What recording one killed run did.

    Attributes:
        run_id: The killed run.
        ledger_seq: Its new failed row, or None when the ledger had the run already.
        mlflow_runs_failed: MLflow runs that were still RUNNING and are now FAILED.
    """

    run_id: str
    ledger_seq: int | None
    mlflow_runs_failed: tuple[str, ...]


def _started(killed: RunLockInfo) -> datetime | None:
    try:
        return datetime.fromisoformat(killed.started_at.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def fail_running_mlflow_runs(target: MlflowTarget, dagster_run_id: str) -> tuple[str, ...]:
    """End as FAILED every MLflow run still RUNNING that a Dagster run started.

    Looks in the project's experiment (training runs) and its linkage-runs experiment.

    Returns:
        The MLflow run ids ended.
    """
    if not _RUN_ID.fullmatch(dagster_run_id):  # it goes into a filter string
        logger.warning("not a run id: %r; its MLflow runs are left as they are", dagster_run_id)
        return ()
    client = tracking_client(target)
    experiments = [
        client.get_experiment_by_name(name)
        for name in (target.experiment, linkage_experiment_name(target))
    ]
    ids = [e.experiment_id for e in experiments if e is not None]
    if not ids:
        return ()
    runs = client.search_runs(
        ids,
        filter_string=f"tags.dagster_run_id = '{dagster_run_id}' AND attributes.status = 'RUNNING'",
    )
    for run in runs:
        client.set_tag(run.info.run_id, "meld.killed", "true")
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        logger.info("MLflow run %s of killed run %s ended FAILED", run.info.run_id, dagster_run_id)
    return tuple(run.info.run_id for run in runs)


def record_killed_run(
    con: duckdb.DuckDBPyConnection,
    project: ProjectConfig,
    target: MlflowTarget,
    killed: RunLockInfo,
    *,
    noticed_by: str,
    failed_step: str | None = None,
    last_seen: datetime | None = None,
) -> KilledRunRecord:
    """Record a run that took the run lock and never released it as failed.

    Args:
        con: The warehouse, written under the run lock the caller holds.
        project: The project (its sources and config go into the ledger entry).
        target: The MLflow store.
        killed: The dead run, from :attr:`linkage.run_lock.RunLock.stale`.
        noticed_by: The run that found it.
        failed_step: The step it was in when it died, when the orchestrator knows.
        last_seen: Its last sign of life (UTC), when the orchestrator knows: the
            entry's ``ended_at`` (unknown otherwise: it is not when it was noticed).
    """
    mlflow_failed: tuple[str, ...] = ()
    try:
        mlflow_failed = fail_running_mlflow_runs(target, killed.run_id)
    except MlflowException:  # the ledger row matters more; the next run tries again
        logger.exception("could not end the MLflow runs of killed run %s", killed.run_id)
    if has_run(con, killed.run_id):
        return KilledRunRecord(killed.run_id, None, mlflow_failed)
    context = RunContext(
        run_id=killed.run_id,
        job_name=killed.job,
        started_at=_started(killed),
        sources=list(project.sources),
        config=project.model_dump(mode="json", exclude={"config_path"}),
        config_hash=project.fingerprint(),
        code_folder=CODE_FOLDER,
        extra={
            "ended_at": last_seen.isoformat() if last_seen is not None else None,
            "killed": {
                "pid": killed.pid,
                "host": killed.host,
                "noticed_by_run": noticed_by,
                "noticed_at": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
            },
        },
    )
    row = record_failed_run(
        con, project, target, context=context, failed_step=failed_step, error=KILLED_ERROR
    )
    logger.warning("run %s was %s: recorded as failed", killed.run_id, KILLED_ERROR)
    return KilledRunRecord(killed.run_id, row.seq if row is not None else None, mlflow_failed)
