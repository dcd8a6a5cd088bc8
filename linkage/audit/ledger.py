"""The run ledger ``linkage_runs``: one row per linkage run, append-only, hash-chained.

Each row holds the run's facts as a JSON document (``entry``: inputs, model, config,
counts, metrics, times, status and error) and two hashes: ``prev_hash``, the previous
row's ``row_hash`` (64 zeros for the first row), and ``row_hash``, the SHA-256 of the
row's sequence number, run id, status, time, entry text and ``prev_hash``. Editing,
deleting or reordering a row breaks the chain at that row, which
:func:`verify_ledger` reports. Truncating the newest rows leaves a valid chain, so
every append also writes the new head (sequence number and hash) to a plain text file
outside the warehouse (``head_file``, :mod:`linkage.audit.ledger_head`), which
:func:`verify_ledger` compares with the table. The head is written after the row is
committed, atomically; a head left behind by a kill or an unwritable folder is reported
as such (a note, and repaired on request or by the next append), not as tampering.

No function here updates or deletes a row: :func:`append_run` is the only writer.

Examples:
    ```py
    row = append_run(con, run_id="1f2e...", status="succeeded", entry={"counts": {...}})
    verify_ledger(con).ok            # True
    find_run(con, "1f2e").entry      # a unique prefix of the run id is enough
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from linkage.audit.ledger_head import read_ledger_head, write_ledger_head
from linkage.errors import MeldError
from linkage.tables import LINKAGE_RUNS
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
STATUSES = ("succeeded", "failed", "erased", "erasure_revoked")
"""Run outcomes, and the two events `meld erase` records (no personal data: keyed hashes)."""

_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(LINKAGE_RUNS)} ("
    "seq BIGINT NOT NULL PRIMARY KEY, "
    "run_id VARCHAR NOT NULL, "
    "status VARCHAR NOT NULL, "
    "recorded_at TIMESTAMP NOT NULL, "
    "entry VARCHAR NOT NULL, "
    "prev_hash VARCHAR NOT NULL, "
    "row_hash VARCHAR NOT NULL)"
)
_COLUMNS = "seq, run_id, status, recorded_at, entry, prev_hash, row_hash"


class LedgerError(MeldError, LookupError):
    """A run that is not in the ledger, or a prefix that names several runs."""


@dataclass(frozen=True)
class LedgerRow:
    """One row of ``linkage_runs``."""

    seq: int
    run_id: str
    status: str
    recorded_at: datetime
    entry_text: str
    prev_hash: str
    row_hash: str

    @property
    def entry(self) -> dict[str, Any]:
        """The run's facts as a dict."""
        return json.loads(self.entry_text)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-able data, entry included."""
        return {
            "seq": self.seq,
            "run_id": self.run_id,
            "status": self.status,
            "recorded_at": self.recorded_at.isoformat(),
            "prev_hash": self.prev_hash,
            "row_hash": self.row_hash,
            "entry": self.entry,
        }


@dataclass(frozen=True)
class LedgerVerification:
    """What :func:`verify_ledger` found.

    Attributes:
        rows: Rows checked.
        problems: One sentence per broken link, naming the row; empty when intact.
        head_seq: Sequence number of the newest row (0 for an empty ledger).
        notes: What is worth knowing but is no tampering: a head file behind the table
            after a missed write (and whether it was repaired), or no head recorded.
    """

    rows: int
    head_seq: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return not self.problems


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text.

    Examples:
        >>> canonical_json({"b": 1, "a": [1, 2]})
        '{"a":[1,2],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(
    *, seq: int, run_id: str, status: str, recorded_at: datetime, entry_text: str, prev_hash: str
) -> str:
    """The SHA-256 a ledger row carries, over its content and the previous row's hash."""
    material = "\n".join([str(seq), run_id, status, recorded_at.isoformat(), entry_text, prev_hash])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``linkage_runs`` when it does not exist yet."""
    con.execute(_DDL)


def append_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    status: str,
    entry: Mapping[str, Any],
    head_file: Path | None = None,
    recorded_at: datetime | None = None,
) -> LedgerRow:
    """Append one run to the ledger, chained to the newest row.

    Args:
        con: Warehouse connection.
        run_id: The orchestrator's run id.
        status: One of :data:`STATUSES` (a run's outcome, or an erasure event).
        entry: The run's facts; stored as canonical JSON.
        head_file: Text file that gets the new head (``<seq> <row_hash>``), replaced
            atomically (:func:`write_ledger_head`) once the row is committed. When it
            cannot be written the row stays and a warning says so: the head is then
            behind the table, which :func:`verify_ledger` tells apart from tampering.
        recorded_at: When the row is written (default now, UTC).

    Returns:
        The row as written.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
    ensure_ledger(con)
    entry_text = canonical_json(dict(entry))
    when = (recorded_at or datetime.now(timezone.utc)).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        last = con.execute(
            f"SELECT seq, row_hash FROM {quote(LINKAGE_RUNS)} ORDER BY seq DESC LIMIT 1"
        ).fetchall()
        seq, prev = (int(last[0][0]) + 1, last[0][1]) if last else (1, GENESIS_HASH)
        digest = row_hash(
            seq=seq,
            run_id=run_id,
            status=status,
            recorded_at=when,
            entry_text=entry_text,
            prev_hash=prev,
        )
        con.execute(
            f"INSERT INTO {quote(LINKAGE_RUNS)} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [seq, run_id, status, when, entry_text, prev, digest],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if head_file is not None:
        _write_head_after_commit(head_file, seq, digest)
    logger.info("ledger: run %s recorded as %s (row %d)", run_id, status, seq)
    return LedgerRow(seq, run_id, status, when, entry_text, prev, digest)


def ledger_rows(con: duckdb.DuckDBPyConnection) -> list[LedgerRow]:
    """Every ledger row, oldest first (empty when there is no ledger yet)."""
    if not table_exists(con, LINKAGE_RUNS):
        return []
    rows = con.execute(f"SELECT {_COLUMNS} FROM {quote(LINKAGE_RUNS)} ORDER BY seq").fetchall()
    return [LedgerRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def has_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str | None = None) -> bool:
    """Whether the ledger holds a row for ``run_id`` (with ``status``, when given)."""
    if not table_exists(con, LINKAGE_RUNS):
        return False
    found = con.execute(
        f"SELECT count(*) FROM {quote(LINKAGE_RUNS)} WHERE run_id = $run_id "
        "AND ($status IS NULL OR status = $status)",
        {"run_id": run_id, "status": status},
    ).fetchall()
    return found[0][0] > 0


def find_run(con: duckdb.DuckDBPyConnection, reference: str) -> LedgerRow:
    """The newest row of a run, by its full id, a unique prefix of it, or ``#<seq>``.

    Raises:
        LedgerError: No run matches, or a prefix matches several runs.
    """
    rows = ledger_rows(con)
    if reference.startswith("#") and reference[1:].isdigit():
        seq = int(reference[1:])
        for row in rows:
            if row.seq == seq:
                return row
        raise LedgerError(f"no ledger row #{seq} (the ledger has {len(rows)} rows)")
    matches = [row for row in rows if row.run_id.startswith(reference)] if reference else []
    run_ids = {row.run_id for row in matches}
    if not run_ids:
        raise LedgerError(f"no run {reference!r} in the ledger: `meld runs` lists them")
    if len(run_ids) > 1:
        raise LedgerError(
            f"{reference!r} names {len(run_ids)} runs ({', '.join(sorted(run_ids))}): "
            "give more of the run id"
        )
    return matches[-1]


def previous_success(con: duckdb.DuckDBPyConnection, before_seq: int) -> LedgerRow | None:
    """The newest succeeded row before row ``before_seq``, if any."""
    earlier = [r for r in ledger_rows(con) if r.seq < before_seq and r.status == "succeeded"]
    return earlier[-1] if earlier else None


def _write_head_after_commit(head_file: Path, seq: int, digest: str) -> None:
    """Write the head of a committed row; a failure is a warning, not a failed run: the
    row is in the ledger, and the head left behind is told apart from tampering."""
    try:
        write_ledger_head(head_file, seq, digest)
    except OSError as exc:
        logger.warning(
            "ledger: row %d is committed but its head could not be written to %s (%s); "
            "`meld verify-ledger` reports the head as behind, and the next run that can "
            "write there repairs it",
            seq,
            head_file,
            exc.strerror or type(exc).__name__,
        )


def _check_head(
    rows: list[LedgerRow], head_file: Path, problems: list[str], notes: list[str], repair: bool
) -> None:
    """Compare the table's newest row with the head file: equal; behind by rows that
    chain from the head (a missed head write: a note, repaired when asked); or
    anything else (rows removed or rewritten: a problem)."""
    try:
        head = read_ledger_head(head_file)
    except OSError as exc:
        notes.append(f"the head file {head_file} cannot be read ({exc.strerror}): not checked")
        return
    tip = rows[-1] if rows else None
    if head is None:
        if tip is not None:
            notes.append(
                f"no head recorded in {head_file}: the newest rows are not checked against "
                "it; the next run writes it"
            )
        return
    seq, digest = head
    if tip is not None and tip.seq == seq and tip.row_hash == digest:
        return
    anchor = next((row for row in rows if row.seq == seq), None)
    if tip is None or anchor is None or anchor.row_hash != digest:
        problems.append(
            f"the newest row is #{tip.seq if tip else 0} but {head_file} last recorded row "
            f"#{seq} with hash {digest[:12]}...: rows were removed or rewritten"
        )
        return
    if problems:  # the rows after the head do not chain: no missed write explains that
        return
    notes.append(
        f"{head_file} records row #{seq}, {tip.seq - seq} row(s) behind the table; rows "
        f"#{seq + 1} to #{tip.seq} chain correctly from it: a head write was missed (a run "
        "killed, or the folder not writable, after its row was committed), not tampering"
    )
    if repair:
        write_ledger_head(head_file, tip.seq, tip.row_hash)
        notes.append(f"head repaired: {head_file} now records row #{tip.seq}")
    else:
        notes.append("the next run repairs the head, or `meld verify-ledger --repair-head` now")


def verify_ledger(
    con: duckdb.DuckDBPyConnection, head_file: Path | None = None, *, repair_head: bool = False
) -> LedgerVerification:
    """Recompute every row's hash and check each row points at the one before.

    Args:
        con: Warehouse connection (read-only is enough).
        head_file: The head file :func:`append_run` writes; when it records a head, the
            newest row must be that head (catches deleted newest rows), or come after it
            with every row since chaining from it (a head write was missed: a note, not a
            problem).
        repair_head: Rewrite a head left behind by a missed write to the newest row.

    Returns:
        The rows checked, a sentence per problem found and notes on the head file.
    """
    rows = ledger_rows(con)
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    for position, row in enumerate(rows, start=1):
        if row.seq != position:
            problems.append(
                f"row #{row.seq} (run {row.run_id}): expected sequence number {position}; "
                "a row was deleted or inserted"
            )
        if row.prev_hash != expected_prev:
            problems.append(
                f"row #{row.seq} (run {row.run_id}): prev_hash does not match the hash of "
                "the row before it"
            )
        recomputed = row_hash(
            seq=row.seq,
            run_id=row.run_id,
            status=row.status,
            recorded_at=row.recorded_at,
            entry_text=row.entry_text,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.row_hash:
            problems.append(
                f"row #{row.seq} (run {row.run_id}): content does not match its row_hash; "
                "the row was edited"
            )
        expected_prev = row.row_hash
    notes: list[str] = []
    if head_file is not None:
        _check_head(rows, head_file, problems, notes, repair_head)
    head_seq = rows[-1].seq if rows else 0
    return LedgerVerification(rows=len(rows), head_seq=head_seq, problems=problems, notes=notes)
