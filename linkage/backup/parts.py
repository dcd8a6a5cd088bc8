"""What a backup is made of: the parts of a project and where each sits in a backup.

A project's state is its DuckDB warehouse, the warehouse's artifacts folder (reports,
snapshots, models and the ledger head file), the MLflow tracking store (a sqlite file),
the MLflow artifact folder, and the erasure key file beside the warehouse when there is
one (:mod:`linkage.privacy.keyed_hash`: without it the deny list of erased persons
matches nothing). :class:`ProjectParts` says where they are for one
project config; a backup folder keeps them under fixed names (``BACKUP_*``), so a
backup can be restored into a project whose paths differ.

Examples:
    ```py
    parts = ProjectParts.of(load_project("config/demo.yaml"))
    parts.warehouse, parts.mlflow_store      # absolute paths
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linkage.backup.manifest import BackupError
from linkage.config import ProjectConfig
from linkage.privacy.keyed_hash import key_file

BACKUP_WAREHOUSE = "warehouse/warehouse.duckdb"
BACKUP_ARTIFACTS = "artifacts"
BACKUP_MLFLOW_STORE = "mlflow/mlflow.db"
BACKUP_MLFLOW_ARTIFACTS = "mlartifacts"
BACKUP_CONFIG = "config"
BACKUP_ERASURE_KEY = "keys/erasure_key"

SQLITE_PREFIX = "sqlite:///"
WAREHOUSE_SIDECARS = (".wal",)
"""Files DuckDB keeps beside the warehouse (``<warehouse>.wal``)."""
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
"""Files sqlite keeps beside its database."""


def sqlite_store_path(tracking_uri: str) -> Path:
    """The file of a ``sqlite:///`` MLflow tracking URI.

    Raises:
        BackupError: The store is not a sqlite file.

    Examples:
        >>> sqlite_store_path("sqlite:////srv/meld/mlflow.db")
        PosixPath('/srv/meld/mlflow.db')
    """
    if not tracking_uri.startswith(SQLITE_PREFIX):
        raise BackupError(
            f"mlflow.tracking_uri {tracking_uri!r} is not a sqlite store: Meld backs up "
            "sqlite stores only; back this store up with its own tools"
        )
    return Path(tracking_uri[len(SQLITE_PREFIX) :])


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class ProjectParts:
    """Where one project keeps each part of its state (absolute paths).

    Attributes:
        warehouse: The DuckDB file.
        artifacts: The warehouse's artifacts folder.
        mlflow_store: The MLflow sqlite file.
        mlflow_artifacts: The MLflow artifact folder.
        config_file: The project config.
    """

    warehouse: Path
    artifacts: Path
    mlflow_store: Path
    mlflow_artifacts: Path
    config_file: Path

    @classmethod
    def of(cls, project: ProjectConfig) -> ProjectParts:
        """The parts of ``project``.

        Raises:
            BackupError: The MLflow store is not sqlite, or one part lies inside another.
        """
        parts = cls(
            warehouse=project.warehouse,
            artifacts=project.artifacts,
            mlflow_store=sqlite_store_path(project.mlflow.tracking_uri),
            mlflow_artifacts=Path(project.mlflow.artifact_location),
            config_file=project.config_path,
        )
        parts.check_apart()
        return parts

    @property
    def erasure_key(self) -> Path:
        """The erasure key file beside the warehouse (used when ``MELD_ERASURE_KEY`` is
        not set; it may not exist)."""
        return key_file(self.warehouse)

    def origins(self) -> dict[str, str]:
        """Each part's location, for the manifest."""
        return {
            "warehouse": str(self.warehouse),
            "artifacts": str(self.artifacts),
            "mlflow_store": str(self.mlflow_store),
            "mlflow_artifacts": str(self.mlflow_artifacts),
        }

    def check_apart(self) -> None:
        """Refuse parts that lie inside one another (they would be copied twice).

        Raises:
            BackupError: Naming the two parts.
        """
        named = {
            "warehouse": self.warehouse,
            "artifacts": self.artifacts,
            "MLflow store": self.mlflow_store,
            "MLflow artifact folder": self.mlflow_artifacts,
        }
        for name, path in named.items():
            for other_name, other in named.items():
                if name != other_name and _inside(path, other):
                    raise BackupError(
                        f"the {name} ({path}) lies inside the {other_name} ({other}): "
                        "give them separate places in the project config to back them up"
                    )

    def check_outside(self, folder: Path) -> None:
        """Refuse a backup folder inside one of the parts (it would copy itself).

        Raises:
            BackupError: Naming the part.
        """
        for path in (self.artifacts, self.mlflow_artifacts):
            if _inside(folder, path):
                raise BackupError(f"the backup folder {folder} lies inside {path}: pick another")

    def sidecars(self) -> list[Path]:
        """Files the databases keep beside themselves (write-ahead logs, journals).

        Not the run lock file, and not the warehouse's published snapshot
        (:mod:`linkage.snapshot`): a copy that a restore publishes afresh."""
        found = [self.warehouse.with_name(self.warehouse.name + s) for s in WAREHOUSE_SIDECARS]
        found += [self.mlflow_store.with_name(self.mlflow_store.name + s) for s in SQLITE_SIDECARS]
        return found

    def occupied(self) -> list[Path]:
        """The parts (and sidecars) that exist with content: what a restore would replace."""
        found = []
        places = (self.warehouse, self.artifacts, self.mlflow_store, self.mlflow_artifacts)
        for path in (*places, self.erasure_key):
            if path.is_dir():
                if any(path.iterdir()):
                    found.append(path)
            elif path.exists():
                found.append(path)
        return found + [path for path in self.sidecars() if path.exists()]
