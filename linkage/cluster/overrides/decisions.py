"""Steward decisions: the decision model, its validation and its recording.

Data stewards correct the model with decisions between source records (``unique_id``
``<source>:<id>``), each with who decided and why: ``must_link A B``, ``cannot_link A
B``, ``unmerge A``, and ``revoke A B`` / ``revoke A`` to cancel (see
:mod:`linkage.cluster.overrides.clustering` for what each means and what is in force).

Every decision is appended to the warehouse table ``steward_overrides``, which is never
updated or deleted from: it is the history. A decision's ``override_id`` is a hash of its
content (decision, the two records as an unordered pair, steward, reason, decided_at),
so recording the same decision again adds nothing.

Examples:
    ```py
    record_decision(con, make_decision("cannot_link", "crm:1", "shop:9",
                                       steward="anna", reason="twins"))
    [o.describe() for o in list_overrides(con)]
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from linkage.errors import MeldError
from linkage.tables import CUSTOMER_RECORDS, STEWARD_OVERRIDES, STEWARD_UNMERGE_RESOLUTIONS
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

MUST_LINK = "must_link"
CANNOT_LINK = "cannot_link"
UNMERGE = "unmerge"
REVOKE = "revoke"
DECISIONS: tuple[str, ...] = (MUST_LINK, CANNOT_LINK, UNMERGE, REVOKE)
CLI_ORIGIN = "cli"
RECORD_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}:\S.{0,199}$")
MAX_STEWARD_CHARS = 200
MAX_REASON_CHARS = 2000

_OVERRIDES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(STEWARD_OVERRIDES)} ("
    "override_id VARCHAR PRIMARY KEY, "
    "record_a VARCHAR NOT NULL, "
    "record_b VARCHAR, "
    "decision VARCHAR NOT NULL "
    "CHECK (decision IN ('must_link', 'cannot_link', 'unmerge', 'revoke')), "
    "steward VARCHAR NOT NULL, "
    "reason VARCHAR NOT NULL, "
    "decided_at TIMESTAMP NOT NULL, "
    "origin VARCHAR NOT NULL, "
    "recorded_at TIMESTAMP NOT NULL)"
)
_RESOLUTIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(STEWARD_UNMERGE_RESOLUTIONS)} ("
    "override_id VARCHAR NOT NULL, "
    "record_a VARCHAR NOT NULL, "
    "record_b VARCHAR, "
    "customer_id VARCHAR NOT NULL, "
    "resolved_at TIMESTAMP NOT NULL)"
)
_COLUMNS = (
    "override_id, record_a, record_b, decision, steward, reason, decided_at, origin, recorded_at"
)
_NEW = "__meld_new_overrides"
_IDS = "__meld_override_record_ids"


class OverrideError(MeldError, ValueError):
    """A steward decision is malformed or cannot be applied; the message says where."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Decision:
    """One steward decision, validated (see :func:`make_decision`).

    Attributes:
        decision: One of :data:`DECISIONS`.
        record_a: A ``unique_id`` (``<source>:<id>``).
        record_b: The other record; None for ``unmerge`` and for ``revoke`` of an unmerge.
        steward: Who decided.
        reason: Why.
        decided_at: When, as a naive UTC timestamp.
    """

    decision: str
    record_a: str
    record_b: str | None
    steward: str
    reason: str
    decided_at: datetime

    @property
    def override_id(self) -> str:
        """``ovr_`` and a hash of the content; the same decision always has the same id.

        Examples:
            >>> d = make_decision("must_link", "crm:1", "shop:2", steward="anna",
            ...                   reason="same passport", decided_at="2025-03-01")
            >>> e = make_decision("must_link", "shop:2", "crm:1", steward="anna",
            ...                   reason="same passport", decided_at="2025-03-01T00:00:00Z")
            >>> d.override_id == e.override_id
            True
        """
        pair = sorted(r for r in (self.record_a, self.record_b) if r is not None)
        content = [self.decision, *pair, self.steward, self.reason, self.decided_at.isoformat()]
        digest = hashlib.sha256(json.dumps(content).encode("utf-8")).hexdigest()
        return f"ovr_{digest[:20]}"


@dataclass(frozen=True)
class Override:
    """A decision as stored in ``steward_overrides`` (one row of the history).

    Attributes:
        override_id: ``ovr_`` and the hash of the content (see :class:`Decision`).
        record_a: A ``unique_id``.
        record_b: The other record; None for ``unmerge`` and ``revoke`` of an unmerge.
        decision: One of :data:`DECISIONS`.
        steward: Who decided.
        reason: Why.
        decided_at: When it was decided (naive UTC).
        origin: ``cli`` or ``csv:<file name>``.
        recorded_at: When it was written to the warehouse (naive UTC).
    """

    override_id: str
    record_a: str
    record_b: str | None
    decision: str
    steward: str
    reason: str
    decided_at: datetime
    origin: str
    recorded_at: datetime

    def describe(self) -> str:
        """One line for messages and ``meld explain``.

        Examples:
            >>> o = Override("ovr_1", "crm:1", "crm:2", "cannot_link", "anna", "twins",
            ...              datetime(2025, 3, 1), "cli", datetime(2025, 3, 1))
            >>> o.describe()
            'cannot_link crm:1 crm:2 by anna on 2025-03-01 00:00:00 (ovr_1): twins'
        """
        records = self.record_a if self.record_b is None else f"{self.record_a} {self.record_b}"
        return (
            f"{self.decision} {records} by {self.steward} on {self.decided_at} "
            f"({self.override_id}): {self.reason}"
        )

    def to_json(self) -> dict[str, str | None]:
        """The stored row as JSON-ready values (timestamps in ISO 8601, UTC)."""
        return {
            "override_id": self.override_id,
            "decision": self.decision,
            "record_a": self.record_a,
            "record_b": self.record_b,
            "steward": self.steward,
            "reason": self.reason,
            "decided_at": self.decided_at.isoformat(),
            "origin": self.origin,
            "recorded_at": self.recorded_at.isoformat(),
        }

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Sort key: later decisions win."""
        return (self.decided_at, self.recorded_at, self.override_id)


def utc_now() -> datetime:
    """The current time as a naive UTC timestamp (how the warehouse stores times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_timestamp(text: str) -> datetime:
    """Read an ISO 8601 date or date-time; with an offset it is converted to UTC.

    Raises:
        ValueError: Not an ISO 8601 date or date-time.

    Examples:
        >>> parse_timestamp("2025-03-01")
        datetime.datetime(2025, 3, 1, 0, 0)
        >>> parse_timestamp("2025-03-01T10:30:00+02:00")
        datetime.datetime(2025, 3, 1, 8, 30)
        >>> parse_timestamp("2025-03-01 10:30Z")
        datetime.datetime(2025, 3, 1, 10, 30)
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _record(value: str | None, column: str, required: bool) -> str | None:
    value = (value or "").strip() or None
    if value is None:
        if required:
            raise OverrideError(f"{column}: a record id is required", column)
        return None
    if not RECORD_ID_PATTERN.match(value):
        raise OverrideError(
            f"{column}: expected a record id '<source>:<id>' (e.g. crm_contacts:1042), "
            f"found {value[:80]!r}",
            column,
        )
    return value


def make_decision(
    decision: str,
    record_a: str | None,
    record_b: str | None = None,
    *,
    steward: str | None,
    reason: str | None,
    decided_at: datetime | str | None = None,
) -> Decision:
    """Validate and normalise one decision.

    ``must-link``, ``Must Link`` and ``must_link`` are the same decision. Pair decisions
    need two different records; ``unmerge`` takes one; ``revoke`` takes two (cancel a
    pair decision) or one (cancel the unmerges of that record).

    Args:
        decision: One of :data:`DECISIONS`.
        record_a: A ``unique_id``.
        record_b: The other ``unique_id``, or None.
        steward: Who decided (required).
        reason: Why (required).
        decided_at: When (ISO 8601 text or a datetime; with an offset it is converted to
            UTC); default now.

    Raises:
        OverrideError: A value is missing or malformed; ``column`` names it.

    Examples:
        >>> make_decision("Cannot-Link", "crm:1", "crm:2", steward="anna", reason="twins",
        ...               decided_at="2025-03-01").decision
        'cannot_link'
        >>> make_decision("unmerge", "crm:1", "crm:2", steward="anna", reason="x")
        Traceback (most recent call last):
        ...
        linkage.overrides.OverrideError: record_b: an unmerge names one record; leave record_b empty
    """
    kind = re.sub(r"[\s-]+", "_", (decision or "").strip().lower())
    if kind not in DECISIONS:
        raise OverrideError(
            f"decision: expected one of {list(DECISIONS)}, found {(decision or '')[:80]!r}",
            "decision",
        )
    a = _record(record_a, "record_a", required=True)
    b = _record(record_b, "record_b", required=kind in (MUST_LINK, CANNOT_LINK))
    if kind == UNMERGE and b is not None:
        raise OverrideError(
            "record_b: an unmerge names one record; leave record_b empty", "record_b"
        )
    if a == b:
        raise OverrideError(f"record_b: the same record as record_a ({a})", "record_b")
    who = (steward or "").strip()
    if not who or len(who) > MAX_STEWARD_CHARS:
        raise OverrideError(
            f"steward: who decided is required (1 to {MAX_STEWARD_CHARS} characters)", "steward"
        )
    why = (reason or "").strip()
    if not why or len(why) > MAX_REASON_CHARS:
        raise OverrideError(
            f"reason: why is required (1 to {MAX_REASON_CHARS} characters)", "reason"
        )
    if decided_at is None:
        when = utc_now()
    elif isinstance(decided_at, str) and not decided_at.strip():
        raise OverrideError("decided_at: when it was decided is required", "decided_at")
    elif isinstance(decided_at, datetime):
        when = decided_at
        if when.tzinfo is not None:
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
    else:
        try:
            when = parse_timestamp(decided_at)
        except ValueError:
            raise OverrideError(
                "decided_at: expected an ISO 8601 date or date-time (2025-03-01 or "
                f"2025-03-01T14:05:00+01:00), found {decided_at[:80]!r}",
                "decided_at",
            ) from None
    assert a is not None  # required above
    return Decision(kind, a, b, who, why, when)


def ensure_override_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``steward_overrides`` and ``steward_unmerge_resolutions`` when missing."""
    con.execute(_OVERRIDES_DDL)
    con.execute(_RESOLUTIONS_DDL)


def append_decisions(
    con: duckdb.DuckDBPyConnection, decisions: Sequence[Decision], origin: str
) -> list[str]:
    """Append decisions not in the history yet; returns the ids added."""
    ensure_override_tables(con)
    unique = {d.override_id: d for d in decisions}
    if not unique:
        return []
    recorded_at = utc_now()
    frame = pa.table(
        {
            "override_id": pa.array(list(unique), pa.string()),
            "record_a": pa.array([d.record_a for d in unique.values()], pa.string()),
            "record_b": pa.array([d.record_b for d in unique.values()], pa.string()),
            "decision": pa.array([d.decision for d in unique.values()], pa.string()),
            "steward": pa.array([d.steward for d in unique.values()], pa.string()),
            "reason": pa.array([d.reason for d in unique.values()], pa.string()),
            "decided_at": pa.array([d.decided_at for d in unique.values()], pa.timestamp("us")),
        }
    )
    con.register(_NEW, frame)
    try:
        added = [
            row[0]
            for row in con.execute(
                f"SELECT n.override_id FROM {_NEW} AS n ANTI JOIN {quote(STEWARD_OVERRIDES)} AS o "
                "USING (override_id) ORDER BY n.override_id"
            ).fetchall()
        ]
        con.execute(
            f"INSERT INTO {quote(STEWARD_OVERRIDES)} ({_COLUMNS}) "
            "SELECT n.override_id, n.record_a, n.record_b, n.decision, n.steward, n.reason, "
            "n.decided_at, $origin, $recorded_at "
            f"FROM {_NEW} AS n ANTI JOIN {quote(STEWARD_OVERRIDES)} AS o USING (override_id)",
            {"origin": origin, "recorded_at": recorded_at},
        )
    finally:
        con.unregister(_NEW)
    return added


def record_decision(
    con: duckdb.DuckDBPyConnection, decision: Decision, *, origin: str = CLI_ORIGIN
) -> tuple[Override, bool]:
    """Append one decision to ``steward_overrides`` unless the same one is there.

    Args:
        con: Warehouse connection.
        decision: From :func:`make_decision`.
        origin: ``cli`` or ``csv:<file>``.

    Returns:
        The stored decision and whether it was added now.

    Examples:
        ```py
        override, added = record_decision(
            con, make_decision("must_link", "crm:1", "shop:9", steward="anna", reason="t-812")
        )
        ```
    """
    added = bool(append_decisions(con, [decision], origin))
    row = con.execute(
        f"SELECT {_COLUMNS} FROM {quote(STEWARD_OVERRIDES)} WHERE override_id = ?",
        [decision.override_id],
    ).fetchall()[0]
    stored = Override(*row)
    logger.info("%s steward decision %s", "recorded" if added else "already had", stored.describe())
    return stored, added


def list_overrides(con: duckdb.DuckDBPyConnection) -> list[Override]:
    """Every recorded decision, oldest first (by ``decided_at``, then ``recorded_at``)."""
    if not table_exists(con, STEWARD_OVERRIDES):
        return []
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM {quote(STEWARD_OVERRIDES)} "
        "ORDER BY decided_at, recorded_at, override_id"
    ).fetchall()
    return [Override(*row) for row in rows]


def unknown_records(
    con: duckdb.DuckDBPyConnection,
    records: Iterable[str],
    records_table: str = CUSTOMER_RECORDS,
) -> list[str]:
    """The records (``unique_id``) that are not in ``records_table``, sorted.

    Raises:
        OverrideError: ``records_table`` does not exist.
    """
    ids = sorted(set(records))
    if not ids:
        return []
    if not table_exists(con, records_table):
        raise OverrideError(
            f"cannot check the records: no table {records_table} in the warehouse yet "
            "(run the pipeline first)"
        )
    con.register(_IDS, pa.table({"unique_id": pa.array(ids, pa.string())}))
    try:
        rows = con.execute(
            f"SELECT i.unique_id FROM {_IDS} AS i ANTI JOIN {quote(records_table)} AS r "
            "USING (unique_id) ORDER BY 1"
        ).fetchall()
    finally:
        con.unregister(_IDS)
    return [row[0] for row in rows]
