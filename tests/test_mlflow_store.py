"""The MLflow store is created whole or not at all, and checked before use, on real sqlite
files. A half-created store is made the way a kill makes one: MLflow's own migrations
stopped right after one of their ``CREATE TABLE`` statements."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient
from sqlalchemy import event

from training.mlflow_store import (
    BROKEN_SUFFIX,
    CREATING_SUFFIX,
    MlflowStoreError,
    MlflowTarget,
    ensure_experiment,
    prepare_store,
)


class _Stopped(Exception):
    """Stands in for the kill: raised right after the n-th CREATE TABLE ran."""


@contextmanager
def _stop_after_create_table(count: int) -> Iterator[None]:
    seen = [0]

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            seen[0] += 1
            if seen[0] == count:
                raise _Stopped(f"stopped after CREATE TABLE #{count}")

    event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(sqlalchemy.engine.Engine, "after_cursor_execute", after)


def _uri(path: Path) -> str:
    return f"sqlite:///{path}"


def _forget_open_engines(uri: str) -> None:
    """Drop the connections MLflow keeps per store URI, as a new process starts without
    them (they would still read the file moved aside)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    for store in (Tracking, Registry):
        engine = store._engine_map.pop(uri, None)
        if engine is not None:
            engine.dispose()


@pytest.fixture(scope="module")
def complete_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store prepare_store created, with nothing in it."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    prepare_store(_uri(path))
    return path


def test_a_new_store_appears_only_complete(complete_store: Path) -> None:
    folder = complete_store.parent
    assert not list(folder.glob(f"*{CREATING_SUFFIX}*")), "the scratch copy is gone"
    experiments = MlflowClient(_uri(complete_store)).search_experiments()
    assert [e.name for e in experiments] == ["Default"]


def test_a_half_created_store_breaks_mlflow_and_is_recreated_when_it_holds_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "mlflow.db"
    with _stop_after_create_table(55), pytest.raises(_Stopped):
        MlflowClient(_uri(path)).search_experiments()
    with pytest.raises(sqlalchemy.exc.OperationalError, match="already exists"):
        MlflowClient(_uri(path)).search_experiments()  # what every later run got
    _forget_open_engines(_uri(path))  # the next run is a new process

    target = MlflowTarget(_uri(path), "kills", str(tmp_path / "artifacts"), "meld-kills")
    with caplog.at_level(logging.WARNING, logger="training.mlflow_store"):
        experiment_id = ensure_experiment(target)
    assert MlflowClient(target.tracking_uri).get_experiment(experiment_id).name == "kills"
    aside = list(tmp_path.glob(f"mlflow.db{BROKEN_SUFFIX}*"))
    assert len(aside) == 1
    assert str(path) in caplog.text and str(aside[0]) in caplog.text


def test_a_broken_store_that_holds_models_is_refused_with_the_fix(
    complete_store: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mlflow.db"
    shutil.copy(complete_store, path)
    MlflowClient(_uri(path)).create_registered_model("meld-kept")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'bf29a5ff90ea'")
    with pytest.raises(MlflowStoreError) as raised:
        prepare_store(_uri(path))
    message = str(raised.value)
    assert str(path) in message and "bf29a5ff90ea" in message
    assert f"mv {path} {path}.broken" in message and "mlflow db upgrade" in message
    assert "Traceback" not in message


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"not a database at all, just bytes " * 100)
    with pytest.raises(MlflowStoreError, match="not a readable sqlite database"):
        prepare_store(_uri(path))
    assert path.read_bytes().startswith(b"not a database"), "left as it was"


def test_a_creation_abandoned_by_a_killed_process_is_cleared(
    complete_store: Path, tmp_path: Path
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    path = tmp_path / "mlflow.db"
    shutil.copy(complete_store, path)
    abandoned = tmp_path / f"mlflow.db{CREATING_SUFFIX}{gone.stdout.strip()}"
    abandoned.write_bytes(b"half")
    prepare_store(_uri(path))
    assert not abandoned.exists()
