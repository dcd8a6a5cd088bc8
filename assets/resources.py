"""Typed Dagster resources: the DuckDB warehouse and the MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from training.mlflow_store import MlflowTarget


class WarehouseResource(dg.ConfigurableResource):
    """The embedded DuckDB warehouse file every asset reads and writes."""

    path: str = Field(description="DuckDB database file; created with its folder if missing.")

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse for one step and close it afterwards.

        Examples:
            ```py
            with warehouse.connect() as con:
                con.execute("SELECT count(*) FROM customer_records").fetchall()
            ```
        """
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path)
        try:
            yield con
        finally:
            con.close()


class MlflowResource(dg.ConfigurableResource):
    """Where training runs, charts and registered models are tracked."""

    tracking_uri: str = Field(description="MLflow tracking store, e.g. sqlite:///mlflow.db.")
    experiment: str = Field(description="Experiment that holds Meld's training runs.")
    artifact_location: str = Field(description="Folder for run artifacts and models.")
    registered_model: str = Field(description="Name of the model in the MLflow registry.")

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
