"""Each linkage run as an MLflow run, in the experiment ``<experiment> linkage runs``.

Training runs (one per model version) stay in the project's experiment; a linkage run
is a scoring and clustering of the warehouse with some model version, so its runs are
kept apart where auditors can browse them without the training runs in between.

Tags: ``dagster_run_id``, ``job_name``, ``status``, ``model_name``, ``model_version``,
``model_alias``, ``model_mlflow_run_id``, ``config_hash``, ``git_commit``,
``ledger.seq`` and ``ledger.row_hash`` (the run's row in ``linkage_runs``).
Parameters: the thresholds and the clustering method. Metrics: the run's counts and
evaluation metrics (``eval.<metric>``). Artifacts: ``report/run_report.html`` (with every
record id masked; none under ``mlflow.record_level_artifacts: none``, see
:mod:`training.steps.audit`), ``ledger/entry.json`` (the ledger entry, effective config
included). None of it holds a record value: the entry holds counts, hashes, file names
and, for a failed run, an error text reduced by :func:`linkage.errors.safe_error_text`.

Examples:
    ```py
    run_id = open_linkage_run(target, dagster_run_id=rid, job_name="meld_pipeline")
    close_linkage_run(target, run_id, entry=entry, files={"report": report_path})
    ```
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from training.mlflow_store import MlflowTarget, tracking_client

logger = logging.getLogger(__name__)

LINKAGE_RUNS_SUFFIX = " linkage runs"


def linkage_experiment_name(target: MlflowTarget) -> str:
    """Name of the experiment that holds the linkage runs.

    Examples:
        >>> linkage_experiment_name(MlflowTarget("sqlite:///m.db", "meld", "/tmp/a", "m"))
        'meld linkage runs'
    """
    return f"{target.experiment}{LINKAGE_RUNS_SUFFIX}"


def _experiment_id(client: MlflowClient, target: MlflowTarget) -> str:
    name = linkage_experiment_name(target)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=target.artifact_location)


def open_linkage_run(target: MlflowTarget, *, dagster_run_id: str, job_name: str) -> str:
    """Start the MLflow run of one linkage run and return its id."""
    client = tracking_client(target)
    run = client.create_run(
        _experiment_id(client, target),
        run_name=f"{job_name} {dagster_run_id[:8]}",
        tags={"dagster_run_id": dagster_run_id, "job_name": job_name, "meld.run_kind": "linkage"},
    )
    return run.info.run_id


def _tags(entry: Mapping[str, Any]) -> dict[str, str]:
    code = entry.get("code_version") or {}
    tags = {
        "status": entry.get("status"),
        "model_name": entry.get("model_name"),
        "model_version": entry.get("model_version"),
        "model_alias": entry.get("model_alias"),
        "model_mlflow_run_id": entry.get("model_mlflow_run_id"),
        "config_hash": entry.get("config_hash"),
        "config_sha256": entry.get("config_sha256"),
        "git_commit": code.get("git_commit"),
        "partition_sha256": entry.get("partition_sha256"),
    }
    return {k: str(v) for k, v in tags.items() if v is not None}


def close_linkage_run(
    target: MlflowTarget,
    run_id: str,
    *,
    entry: Mapping[str, Any],
    files: Mapping[str, Path],
    ledger_tags: Mapping[str, str] | None = None,
) -> None:
    """Log a linkage run's facts and files and end it.

    Args:
        target: The MLflow store.
        run_id: From :func:`open_linkage_run`.
        entry: The run's ledger entry (counts, metrics, thresholds, model, config).
        files: Artifact folder name -> file, e.g. ``{"report": Path("run_report.html")}``.
        ledger_tags: The ledger row's ``seq`` and ``row_hash``.
    """
    client = tracking_client(target)
    for key, value in {**_tags(entry), **dict(ledger_tags or {})}.items():
        client.set_tag(run_id, key, value)
    thresholds = entry.get("thresholds") or {}
    params = {k: v for k, v in thresholds.items() if v is not None}
    for key, value in params.items():
        client.log_param(run_id, key, value)
    metrics = {k: float(v) for k, v in (entry.get("counts") or {}).items() if v is not None}
    metrics.update({f"eval.{k}": float(v) for k, v in (entry.get("metrics") or {}).items()})
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    with tempfile.TemporaryDirectory() as scratch:
        entry_path = Path(scratch) / "entry.json"
        entry_path.write_text(json.dumps(entry, indent=2, default=str), encoding="utf-8")
        client.log_artifact(run_id, str(entry_path), artifact_path="ledger")
        for folder, path in files.items():
            client.log_artifact(run_id, str(path), artifact_path=folder)
    failed = entry.get("status") == "failed"
    client.set_terminated(
        run_id, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
    )
    logger.info("MLflow linkage run %s closed", run_id)
