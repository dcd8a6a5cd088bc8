"""Where Meld tracks in MLflow: the store, the experiment, the artifact folder and the
registered model, as plain data for the domain code (no Dagster); and the store made
safe to create and checked before use.

MLflow creates a sqlite store the first time a client touches it, running some sixty
schema migrations on the file in place; sqlite does not make them one transaction, so a
process killed part-way leaves a half-migrated file on which every later run fails
("table assessments already exists"). :func:`prepare_store` creates the store in a
temporary file next to the target and links it into place only once complete, and
checks an existing store before anyone writes to it: a half-created store that holds
nothing is moved aside and created again; any other broken store is a
:class:`MlflowStoreError` naming the file and the fix, not a SQLAlchemy traceback.
Stores that are not sqlite files (a server, another database) are left to MLflow.

Examples:
    ```py
    target = MlflowTarget("sqlite:///mlflow.db", "meld", "mlartifacts", "meld-linkage")
    prepare_store(target.tracking_uri)      # creates mlflow.db safely, or checks it
    client = tracking_client(target)        # a client on the prepared store
    ensure_experiment(target)               # the experiment id, created if needed
    ```
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from linkage.durable import fsync_path
from linkage.errors import MeldError

logger = logging.getLogger(__name__)

CREATING_SUFFIX = ".creating-"
"""A store being created is ``<store>.creating-<pid>`` until it is complete."""
BROKEN_SUFFIX = ".broken-"
"""A half-created, empty store moved aside is ``<store>.broken-<UTC time>``."""
_DATA_TABLES = ("runs", "registered_models", "model_versions")
_ready: set[tuple[str, int, int]] = set()
"""Stores checked by this process: (path, device, inode)."""


class MlflowStoreError(MeldError, RuntimeError):
    """The MLflow tracking store cannot be used as it is; the message says the fix."""


@dataclass(frozen=True)
class MlflowTarget:
    """Where to track: store, experiment, artifact folder and registered model name."""

    tracking_uri: str
    experiment: str
    artifact_location: str
    registered_model: str


def sqlite_store_path(tracking_uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI; None for any other store.

    Examples:
        >>> sqlite_store_path("sqlite:////tmp/meld/mlflow.db")
        PosixPath('/tmp/meld/mlflow.db')
        >>> sqlite_store_path("sqlite:///mlflow.db?timeout=20")
        PosixPath('mlflow.db')
        >>> sqlite_store_path("http://mlflow:5000") is None
        True
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    location = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location)


def prepare_store(tracking_uri: str) -> None:
    """Make the store at ``tracking_uri`` ready before anything is tracked in it.

    A missing sqlite store is created whole, out of place, then linked in; an existing
    one is checked once per process. A half-created store holding no runs or models
    (left by a kill while MLflow created it) is moved aside, with a warning, and created
    again. Other stores are left to MLflow.

    Raises:
        MlflowStoreError: The file is not an MLflow store of this MLflow's schema and
            holds runs or models; the message names the file and the fix.
    """
    path = sqlite_store_path(tracking_uri)
    if path is None:
        return
    path = path.absolute()
    _remove_abandoned(path)
    if path.exists() and _checked(path):
        return
    if path.exists():
        problem = _schema_problem(path)
        if problem is None:
            _ready.add(_identity(path))
            return
        _set_aside_or_refuse(path, problem)
    _create_store(path)
    _ready.add(_identity(path))


def tracking_client(target: MlflowTarget) -> MlflowClient:
    """An MLflow client on the target's store, prepared (:func:`prepare_store`) first."""
    prepare_store(target.tracking_uri)
    return MlflowClient(target.tracking_uri)


def ensure_experiment(target: MlflowTarget) -> str:
    """Point MLflow at the target and return the experiment id, creating it if needed."""
    prepare_store(target.tracking_uri)
    mlflow.set_tracking_uri(target.tracking_uri)
    client = MlflowClient(target.tracking_uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(target.experiment, artifact_location=target.artifact_location)


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_dev, stat.st_ino)


def _checked(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return _identity(path) in _ready
    return False


def _latest_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _expected_tables() -> set[str]:
    from mlflow.store.db.base_sql_model import Base
    from mlflow.store.model_registry.dbmodels import models as _registry  # noqa: F401
    from mlflow.store.tracking.dbmodels import models as _tracking  # noqa: F401

    return set(Base.metadata.tables)


def _schema_problem(path: Path) -> str | None:
    """What is wrong with the store's schema, or None when it is complete and current.

    Opened read-write on purpose: sqlite then rolls back a transaction a killed writer
    left behind (a hot journal) instead of refusing to read."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            revision = (
                db.execute("SELECT version_num FROM alembic_version").fetchone()
                if "alembic_version" in tables
                else None
            )
    except sqlite3.DatabaseError as exc:
        return f"it is not a readable sqlite database ({exc})"
    if not tables:
        return "it is an empty file"
    latest = _latest_revision()
    if revision is None or revision[0] != latest:
        found = revision[0] if revision else "none"
        return f"its schema is at revision {found}, not {latest}"
    missing = sorted(_expected_tables() - tables)
    if missing:
        return f"it lacks {len(missing)} of MLflow's tables ({', '.join(missing[:3])}, ...)"
    return None


def _holds_data(path: Path) -> bool:
    """Whether a store holds any run, registered model or model version (a store that
    cannot be read is assumed to)."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            return any(
                db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                for table in _DATA_TABLES
                if table in tables
            )
    except sqlite3.DatabaseError:
        return True


def _set_aside_or_refuse(path: Path, problem: str) -> None:
    """Move an unusable store that holds nothing aside; refuse one that holds runs."""
    if _holds_data(path):
        raise MlflowStoreError(
            f"the MLflow store {path} cannot be used: {problem}. If a run was killed "
            f"while the store was created, move it aside (mv {path} {path}.broken) and "
            "run again: Meld creates a new, empty store. If it is an older MLflow's "
            f"store whose runs you need, upgrade it: mlflow db upgrade sqlite:///{path}"
        )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}{BROKEN_SUFFIX}{stamp}")
    os.replace(path, aside)
    for leftover in (path.with_name(path.name + "-journal"),):
        leftover.unlink(missing_ok=True)
    logger.warning(
        "the MLflow store %s was half-created and held no runs or models (%s): moved "
        "to %s; creating a new store",
        path,
        problem,
        aside,
    )


def _create_store(path: Path) -> None:
    """Create the store whole in ``<store>.creating-<pid>``, then link it into place; a
    store another process completed meanwhile wins, and ours is dropped."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    path.parent.mkdir(parents=True, exist_ok=True)
    creating = path.with_name(f"{path.name}{CREATING_SUFFIX}{os.getpid()}")
    creating.unlink(missing_ok=True)
    logger.info("creating the MLflow store %s (schema migrations take a few seconds)", path)
    engine = sqlalchemy.create_engine(f"sqlite:///{creating}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    try:
        os.link(creating, path)  # unlike a rename, never replaces a store made meanwhile
    except FileExistsError:
        logger.info("another process created the MLflow store %s first; using it", path)
    finally:
        creating.unlink(missing_ok=True)
    fsync_path(path.parent)


def _remove_abandoned(path: Path) -> None:
    """Delete ``<store>.creating-<pid>`` files whose process is gone (killed mid-way)."""
    for leftover in path.parent.glob(f"{path.name}{CREATING_SUFFIX}*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            leftover.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                leftover.with_name(leftover.name + "-journal").unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
