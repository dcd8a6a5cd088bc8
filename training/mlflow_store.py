"""Where Meld tracks in MLflow: the store, the experiment, the artifact folder and the
registered model, as plain data for the domain code (no Dagster)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MlflowTarget:
    """Where to track: store, experiment, artifact folder and registered model name."""

    tracking_uri: str
    experiment: str
    artifact_location: str
    registered_model: str


def ensure_experiment(target: MlflowTarget) -> str:
    """Point MLflow at the target and return the experiment id, creating it if needed."""
    mlflow.set_tracking_uri(target.tracking_uri)
    client = MlflowClient(target.tracking_uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(target.experiment, artifact_location=target.artifact_location)
