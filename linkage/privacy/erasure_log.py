"""``erasure_log``: one row per erasure and per revoke, with no personal data.

A row holds the erasure id, the event (``erased`` or ``revoked``), the kind of subject
and its keyed hash, who asked and why, the rows removed per table (as JSON), the files
removed or rewritten (counts), the deny-list entries added or lifted, and the ledger row
that records it (``ledger_seq``). The log is what ``meld erasures`` lists and what a
revoke looks up; the hash-chained ledger (``linkage_runs``) holds the same facts, so
the log needs no chain of its own.

Examples:
    ```py
    log_event(con, ErasureEvent(erasure_id="era_1f2e", event="erased", ...))
    [e.erasure_id for e in erasure_events(con)]
    ```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from linkage.errors import MeldError
from linkage.tables import ERASURE_LOG
from linkage.warehouse import quote, table_exists

ERASED, REVOKED = "erased", "revoked"

_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(ERASURE_LOG)} ("
    "erasure_id VARCHAR NOT NULL, event VARCHAR NOT NULL, subject_kind VARCHAR, "
    "subject_hash VARCHAR, requested_by VARCHAR NOT NULL, reason VARCHAR NOT NULL, "
    "recorded_at TIMESTAMP NOT NULL, counts VARCHAR NOT NULL, files BIGINT NOT NULL, "
    "deny_entries BIGINT NOT NULL, ledger_seq BIGINT)"
)
_COLUMNS = (
    "erasure_id, event, subject_kind, subject_hash, requested_by, reason, recorded_at, "
    "counts, files, deny_entries, ledger_seq"
)


class ErasureLogError(MeldError, LookupError):
    """An erasure id that is not in the log, or an erasure revoked already."""


@dataclass(frozen=True)
class ErasureEvent:
    """One row of ``erasure_log``."""

    erasure_id: str
    event: str
    subject_kind: str | None
    subject_hash: str | None
    requested_by: str
    reason: str
    recorded_at: datetime
    counts: dict[str, int] = field(default_factory=dict)
    files: int = 0
    deny_entries: int = 0
    ledger_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-able data."""
        return {
            "erasure_id": self.erasure_id,
            "event": self.event,
            "subject_kind": self.subject_kind,
            "subject_hash": self.subject_hash,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "recorded_at": self.recorded_at.isoformat(),
            "counts": self.counts,
            "rows": sum(self.counts.values()),
            "files": self.files,
            "deny_entries": self.deny_entries,
            "ledger_seq": self.ledger_seq,
        }


def log_event(con: duckdb.DuckDBPyConnection, event: ErasureEvent) -> None:
    """Append one event (inside the caller's transaction, if any)."""
    con.execute(_DDL)
    con.execute(
        f"INSERT INTO {quote(ERASURE_LOG)} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            event.erasure_id,
            event.event,
            event.subject_kind,
            event.subject_hash,
            event.requested_by,
            event.reason,
            event.recorded_at,
            json.dumps(event.counts, sort_keys=True),
            event.files,
            event.deny_entries,
            event.ledger_seq,
        ],
    )


def set_ledger_seq(con: duckdb.DuckDBPyConnection, erasure_id: str, event: str, seq: int) -> None:
    """Note the ledger row that records an event."""
    con.execute(
        f"UPDATE {quote(ERASURE_LOG)} SET ledger_seq = ? WHERE erasure_id = ? AND event = ?",
        [seq, erasure_id, event],
    )


def set_files(con: duckdb.DuckDBPyConnection, erasure_id: str, files: int) -> None:
    """Note how many files an erasure removed or rewrote (known after the warehouse)."""
    con.execute(
        f"UPDATE {quote(ERASURE_LOG)} SET files = ? WHERE erasure_id = ? AND event = ?",
        [files, erasure_id, ERASED],
    )


def erasure_events(con: duckdb.DuckDBPyConnection) -> list[ErasureEvent]:
    """Every event, oldest first (empty when nothing was ever erased)."""
    if not table_exists(con, ERASURE_LOG):
        return []
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM {quote(ERASURE_LOG)} ORDER BY recorded_at, erasure_id, event"
    ).fetchall()
    return [
        ErasureEvent(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), int(r[8]), int(r[9]), r[10]
        )
        for r in rows
    ]


def active_erasure(con: duckdb.DuckDBPyConnection, erasure_id: str) -> ErasureEvent:
    """The ``erased`` event of an erasure that has not been revoked.

    Raises:
        ErasureLogError: No such erasure, or it was revoked already.
    """
    events = [e for e in erasure_events(con) if e.erasure_id == erasure_id]
    erased = [e for e in events if e.event == ERASED]
    if not erased:
        raise ErasureLogError(f"no erasure {erasure_id!r}: `meld erasures` lists them")
    if any(e.event == REVOKED for e in events):
        raise ErasureLogError(f"erasure {erasure_id} was revoked already")
    return erased[0]
