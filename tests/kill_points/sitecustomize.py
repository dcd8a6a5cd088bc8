"""Kill points for tests/test_kills.py: imported by every Python process started with
this folder on ``PYTHONPATH``; does nothing unless ``MELD_TEST_KILL_AT`` names a point.

At the point the process writes ``MELD_TEST_KILL_MARKER`` (the point's name) and waits;
the test then sends SIGKILL to its whole process group, as an operator or the kernel's
OOM killer would. The hooks wrap Meld and MLflow functions from outside, so no test code
ships in Meld itself. Points:

- ``mlflow_store``: right after the n-th ``CREATE TABLE`` MLflow runs on a sqlite file
  named ``mlflow.db*`` (n from ``MELD_TEST_KILL_COUNT``, default 55), mid-migration;
- ``ledger_head``: right after a ``succeeded`` ledger row is committed, before its head
  is written.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_POINT = os.environ.get("MELD_TEST_KILL_AT")
_WAIT_SECONDS = 300.0


def _reached(point: str) -> None:
    marker = Path(os.environ["MELD_TEST_KILL_MARKER"])
    marker.write_text(point, encoding="utf-8")
    time.sleep(_WAIT_SECONDS)  # the test kills the process group meanwhile
    os._exit(97)  # never carry on past a kill point


def _install_mlflow_store() -> None:
    import sqlalchemy
    from sqlalchemy import event

    limit = int(os.environ.get("MELD_TEST_KILL_COUNT", "55"))
    seen = [0]

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        database = str(conn.engine.url.database or "")
        if "mlflow.db" in database and statement.lstrip().upper().startswith("CREATE TABLE"):
            seen[0] += 1
            if seen[0] == limit:
                _reached("mlflow_store")

    event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", after)


def _install_ledger_head() -> None:
    import linkage.audit.ledger as ledger

    append = ledger.append_run

    def append_then_stop(con, **kwargs):
        if kwargs.get("status") != "succeeded":
            return append(con, **kwargs)
        row = append(con, **{**kwargs, "head_file": None})  # the row, committed
        _reached("ledger_head")
        return row

    ledger.append_run = append_then_stop
    import training.steps.audit as audit  # imported its own reference to append_run

    audit.append_run = append_then_stop


_INSTALL = {
    "mlflow_store": _install_mlflow_store,
    "ledger_head": _install_ledger_head,
}

if _POINT:
    _INSTALL[_POINT]()
