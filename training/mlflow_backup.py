"""The MLflow part of a restore: move the store's absolute artifact paths to a new folder.

MLflow's sqlite store records where each experiment, run, logged model and model
version keeps its artifacts as absolute paths (``experiments.artifact_location``,
``runs.artifact_uri``, ``logged_models.artifact_location``,
``model_versions.source`` and ``storage_location``, and a trace tag). A backup restored
into another folder has its artifacts elsewhere, so :func:`relocate_store` rewrites
every such value under the old artifact folder to the same place under the new one, in
a staged copy of the store before it is swapped in. :func:`check_store` then opens the
restored store with MLflow and checks each model version's files are where MLflow looks.

Paths MLflow keeps outside the artifact folder (the ``Default`` experiment's
``mlruns/0``, for instance) are not part of the backup and are left as they are.

Examples:
    ```py
    relocate_store(Path("mlflow.db.restoring"), "/old/project/mlartifacts",
                   "/new/project/mlartifacts")      # values rewritten
    check_store("sqlite:////new/project/mlflow.db", experiment="meld",
                artifact_root="/new/project/mlartifacts")   # [] when all is well
    ```
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

PATH_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("experiments", "artifact_location", None),
    ("runs", "artifact_uri", None),
    ("logged_models", "artifact_location", None),
    ("model_versions", "source", None),
    ("model_versions", "storage_location", None),
    ("trace_tags", "value", "mlflow.artifactLocation"),
)
"""(table, column, tag key or None) of every value that names an artifact folder."""

FILE_SCHEME = "file://"
PROBLEMS_SHOWN = 5


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _has_column(con: sqlite3.Connection, table: str, column: str) -> bool:
    rows = con.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
    return any(row[1] == column for row in rows)


def _rewrite(
    con: sqlite3.Connection, table: str, column: str, key: str | None, old: str, new: str
) -> int:
    col = _quote(column)
    sql = (
        f"UPDATE {_quote(table)} SET {col} = ? || substr({col}, ?) "
        f"WHERE ({col} = ? OR substr({col}, 1, ?) = ?)" + (" AND key = ?" if key else "")
    )
    changed = 0
    for before, after in ((old, new), (FILE_SCHEME + old, FILE_SCHEME + new)):
        size = len(before) + 1
        params = [after, size, before, size, before + "/", *([key] if key else [])]
        changed += con.execute(sql, params).rowcount
    return changed


def relocate_store(store: Path, old_root: str, new_root: str) -> int:
    """Rewrite artifact paths under ``old_root`` to the same place under ``new_root``.

    Plain paths and ``file://`` URIs are both rewritten; tables or columns an older
    MLflow schema lacks are skipped. One transaction.

    Args:
        store: The sqlite file of the (staged) MLflow store.
        old_root: The MLflow artifact folder the backup was taken from.
        new_root: The MLflow artifact folder of the project restored into.

    Returns:
        How many values were rewritten.
    """
    old, new = old_root.rstrip("/"), new_root.rstrip("/")
    if old == new:
        return 0
    changed = 0
    con = sqlite3.connect(store)
    try:
        with con:  # one transaction: committed at the end, rolled back on an error
            for table, column, key in PATH_COLUMNS:
                if _has_column(con, table, column):
                    changed += _rewrite(con, table, column, key, old, new)
    finally:
        con.close()
    logger.info("MLflow store %s: %d artifact paths moved to %s", store, changed, new)
    return changed


OWNED_PATHS: tuple[tuple[str, str], ...] = (
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)
"""Where runs, logged models and model versions keep their files (experiments only give
defaults, so the ``Default`` experiment's folder elsewhere is no loss)."""


def artifacts_outside(store: Path, root: str) -> list[str]:
    """Artifact folders the store names outside ``root``: files a backup of ``root``
    does not hold (a run logged before ``mlflow.artifact_location`` changed, say).

    Returns:
        One sentence per kind of owner (runs, logged models, model versions), with the
        count and one example; empty when everything lies under ``root``.
    """
    folder = Path(root)
    found = []
    with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as con:
        for table, column in OWNED_PATHS:
            if not _has_column(con, table, column):
                continue
            rows = con.execute(f"SELECT {_quote(column)} FROM {_quote(table)}").fetchall()
            paths = [p for (value,) in rows if value and (p := _local_path(value)) is not None]
            outside = [p for p in paths if p != folder and folder not in p.parents]
            if outside:
                found.append(
                    f"{len(outside)} of {len(paths)} {table.replace('_', ' ')} keep files "
                    f"outside {root} "
                    f"(for example {outside[0]}): they are not in the backup"
                )
    return found


def _local_path(uri: str) -> Path | None:
    if uri.startswith("/"):
        return Path(uri)
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else None


def check_store(tracking_uri: str, *, experiment: str, artifact_root: str) -> list[str]:
    """Open a restored store with MLflow and check it points at the restored artifacts.

    Args:
        tracking_uri: The store.
        experiment: The project's experiment.
        artifact_root: The project's MLflow artifact folder.

    Returns:
        One sentence per problem: the experiment writing elsewhere, or model versions
        whose files are missing. Empty when all is well.
    """
    from mlflow.tracking import MlflowClient  # loads MLflow: only for the check

    client = MlflowClient(tracking_uri)
    problems: list[str] = []
    found = client.get_experiment_by_name(experiment)
    location = _local_path(found.artifact_location) if found is not None else None
    root = Path(artifact_root)
    if location is not None and location != root and root not in location.parents:
        problems.append(
            f"experiment {experiment!r} keeps its artifacts in {found.artifact_location}, "
            f"not under {artifact_root}"
        )
    missing = []
    for version in client.search_model_versions():
        uri = client.get_model_version_download_uri(version.name, version.version)
        path = _local_path(uri)
        if path is not None and not path.exists():
            missing.append(f"{version.name} version {version.version} ({path})")
    if missing:
        shown = ", ".join(missing[:PROBLEMS_SHOWN])
        problems.append(f"{len(missing)} model version(s) without their files: {shown}")
    return problems
