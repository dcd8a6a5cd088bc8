"""What an erasure needs from the project config, as plain data.

Examples:
    ```py
    spec = erasure_spec(load_project("config/demo.yaml"))
    spec.contact_columns["crm_contacts"]     # {"email": "email_address", "phone": "mobile"}
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from linkage.config import ProjectConfig
from linkage.privacy.files import RecordFile
from linkage.privacy.rebuild import RebuildSpec
from linkage.tables import LEDGER_HEAD_FILE

_LOCAL_URI = "file://"


@dataclass(frozen=True)
class ErasureSpec:
    """Where an erasure looks, and how it rebuilds the customers.

    Attributes:
        warehouse: The warehouse file (its folder holds the key file).
        sources: The project's source names.
        contact_columns: Per source, the raw column of ``email`` and ``phone``.
        rebuild: How customers are clustered and mastered again.
        folders: Folders whose files are searched: the artifacts folder and a local
            MLflow artifact folder.
        warehouse_files: Files beside the warehouse that are searched too.
        record_files: CSV files a steward keeps that name records.
        inputs: Source and related input files, never rewritten by an erasure.
        ledger_head: The ledger's head file.
    """

    warehouse: Path
    sources: tuple[str, ...]
    contact_columns: Mapping[str, Mapping[str, str]]
    rebuild: RebuildSpec
    folders: tuple[Path, ...] = ()
    warehouse_files: tuple[Path, ...] = ()
    record_files: tuple[RecordFile, ...] = ()
    inputs: frozenset[Path] = field(default_factory=frozenset)
    ledger_head: Path | None = None


def _local_folder(location: str) -> Path | None:
    """A local artifact folder (a path or a ``file://`` URI); None for a remote store."""
    if not location:
        return None
    if location.startswith(_LOCAL_URI):
        return Path(location[len(_LOCAL_URI) :])
    return None if "://" in location else Path(location)


def _record_files(project: ProjectConfig) -> list[RecordFile]:
    files = []
    if project.overrides.path:
        path = project.resolve(project.overrides.path)
        files.append(RecordFile(path, ((None, "record_a"), (None, "record_b"))))
    if project.labels is not None:
        labels = project.labels
        files.append(
            RecordFile(
                project.resolve(labels.path),
                (
                    (labels.source_dataset_l, "unique_id_l"),
                    (labels.source_dataset_r, "unique_id_r"),
                ),
            )
        )
    if project.truth is not None:
        truth = project.truth
        files.append(
            RecordFile(project.resolve(truth.path), ((truth.source_column, truth.id_column),))
        )
    return files


def _inputs(project: ProjectConfig) -> set[Path]:
    inputs = {path for name in project.sources for path in project.source_files(name)}
    for related in (project.relationships.orders, project.relationships.products):
        if related is not None:
            inputs.add(project.resolve(related.path))
    return {path.resolve() for path in inputs}


def erasure_spec(project: ProjectConfig) -> ErasureSpec:
    """The erasure spec of a project."""
    contact_columns = {
        name: {
            kind: source.fields[kind].column for kind in ("email", "phone") if kind in source.fields
        }
        for name, source in project.sources.items()
    }
    rebuild = RebuildSpec(
        clustering=project.clustering_spec(),
        survivorship_rules=project.survivorship_rules(),
        source_priority=tuple(project.mastering.source_priority),
        households=project.household_spec(),
    )
    mlflow_folder = _local_folder(project.mlflow.artifact_location)
    folders = tuple(f for f in (project.artifacts, mlflow_folder) if f is not None)
    record_files = _record_files(project)
    inputs = _inputs(project) | {f.path.resolve() for f in record_files}
    inputs.add(project.config_path.resolve())
    beside = project.warehouse.parent
    warehouse_files = tuple(
        sorted(p for p in beside.glob("*") if p.is_file() and p.resolve() not in inputs)
    )
    return ErasureSpec(
        warehouse=project.warehouse,
        sources=tuple(project.sources),
        contact_columns=contact_columns,
        rebuild=rebuild,
        folders=folders,
        warehouse_files=warehouse_files,
        record_files=tuple(record_files),
        inputs=frozenset(inputs),
        ledger_head=project.artifacts / LEDGER_HEAD_FILE,
    )
