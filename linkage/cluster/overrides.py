"""Steward overrides: must-link, cannot-link and unmerge decisions, kept with history.

Data stewards correct the model with decisions between source records (``unique_id``
``<source>:<id>``), each with who decided and why:

- ``must_link A B``: A and B are one customer, whatever the model says.
- ``cannot_link A B``: A and B are never one customer; clustering refuses the weakest
  link that would join them, even when the model links them through other records.
- ``unmerge A``: take A out of the customer it is in (see *Unmerge* below).
- ``revoke A B`` cancels the decision in force between A and B; ``revoke A`` (no B)
  cancels the unmerges of A.

Decisions come from a CSV (``overrides.path`` in the project config; columns
``record_a, record_b, decision, steward, reason, decided_at``) or from ``meld override``.
Both append to the warehouse table ``steward_overrides``, which is never updated or
deleted from: it is the history. A decision's ``override_id`` is a hash of its content
(decision, the two records as an unordered pair, steward, reason, decided_at), so
loading the same CSV again, or under another name, adds nothing.

**What is in force.** Per unordered pair of records the latest decision (by
``decided_at``, then ``recorded_at``) wins; a ``revoke`` as latest leaves the pair
without a decision. The unmerges of a record are in force until a later ``revoke A``.

**Unmerge.** ``unmerge X`` means cannot-link between X and every other record of the
customer X was in *when the decision was first resolved*, and it is resolved once:
against ``customer_clusters`` as it stands (the customers the steward was looking at:
``meld override unmerge`` resolves at once, a CSV decision at the next clustering run),
or, for a record not in that table yet, against the first clustering that places it.
The resulting pairs are kept in ``steward_unmerge_resolutions`` and take part in the
"latest decision per pair wins" rule with the unmerge's ``decided_at``: a later
``must_link X Y`` brings Y back, a later ``revoke X Y`` lifts that one pair. Resolving
once matters: re-resolving against each run's customers would find X already alone
after the first run and let the model merge it back. Records that arrive later and
match X are free to join it. An unmerge of a record that was alone cuts nothing.

Examples:
    ```py
    record_decision(con, make_decision("cannot_link", "crm:1", "shop:9",
                                       steward="anna", reason="twins"))
    load_overrides_csv(con, Path("config/overrides.csv"))
    result = cluster_with_overrides(
        con,
        records_table="customer_records",
        pairs_table="pairwise_matches",
        threshold=0.95,
        out_table="customer_clusters",
    )
    result.summary.links_refused, result.overrides.for_pair("crm:1", "shop:9")
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.cluster.clustering import (
    CONNECTED_COMPONENTS,
    ClusteringMethod,
    ClusterSummary,
    cluster_records,
)
from linkage.errors import MeldError
from linkage.ingest.readers import SUPPORTED_SUFFIXES, SourceError, read_file
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    REFUSED_LINKS,
    STEWARD_OVERRIDES,
    STEWARD_UNMERGE_RESOLUTIONS,
)
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

MUST_LINK = "must_link"
CANNOT_LINK = "cannot_link"
UNMERGE = "unmerge"
REVOKE = "revoke"
DECISIONS: tuple[str, ...] = (MUST_LINK, CANNOT_LINK, UNMERGE, REVOKE)
CSV_COLUMNS: tuple[str, ...] = (
    "record_a",
    "record_b",
    "decision",
    "steward",
    "reason",
    "decided_at",
)
CLI_ORIGIN = "cli"
RECORD_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}:\S.{0,199}$")
MAX_STEWARD_CHARS = 200
MAX_REASON_CHARS = 2000
MAX_ERRORS_SHOWN = 20

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
_PENDING = "__meld_pending_unmerges"
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


@dataclass(frozen=True)
class PairDecision:
    """The decision in force between two records.

    Attributes:
        records: The two ``unique_id`` values, smaller first.
        decision: ``must_link`` or ``cannot_link``.
        override: The steward decision it comes from: a pair decision, or the
            ``unmerge`` that cut the pair.
    """

    records: tuple[str, str]
    decision: str
    override: Override


@dataclass(frozen=True)
class EffectiveOverrides:
    """The steward decisions in force, ready for :func:`linkage.clustering.cluster_records`.

    Attributes:
        must_link: Record pairs to join, latest decision first.
        cannot_link: Record pairs to keep apart (explicit, and cut by unmerges).
        pairs: The decision in force for each pair, keyed by the sorted pair.
        unmerges: Unmerge decisions in force.
        pending_unmerges: Records whose unmerge is not resolved yet (the record was
            in no customer when last tried).
        unknown_records: Records named by decisions in force that are not in the
            records table; their decisions are left out.
    """

    must_link: tuple[tuple[str, str], ...] = ()
    cannot_link: tuple[tuple[str, str], ...] = ()
    pairs: dict[tuple[str, str], PairDecision] = field(default_factory=dict)
    unmerges: tuple[Override, ...] = ()
    pending_unmerges: tuple[str, ...] = ()
    unknown_records: tuple[str, ...] = ()

    def for_pair(self, record_a: str, record_b: str) -> PairDecision | None:
        """The decision in force between two records, if any.

        Examples:
            >>> EffectiveOverrides().for_pair("crm:1", "shop:2") is None
            True
        """
        return self.pairs.get(_pair_key(record_a, record_b))

    @property
    def in_force_ids(self) -> frozenset[str]:
        """Ids of the stored decisions that shape the clustering."""
        return frozenset(
            [p.override.override_id for p in self.pairs.values()]
            + [u.override_id for u in self.unmerges]
        )

    @property
    def warnings(self) -> list[str]:
        """What a steward should know: unknown records, unresolved unmerges."""
        lines = [
            f"steward override names record {r} that is not in customer_records; "
            "its decisions are not applied"
            for r in self.unknown_records
        ]
        lines += [
            f"unmerge of {r} waits for the record to be in a customer"
            for r in self.pending_unmerges
        ]
        return lines


@dataclass(frozen=True)
class CsvLoad:
    """What loading a CSV of decisions did.

    Attributes:
        path: The file.
        rows: Decisions read.
        added: Decisions new to ``steward_overrides``.
    """

    path: Path
    rows: int
    added: int

    @property
    def already_recorded(self) -> int:
        """Decisions that were in the history already."""
        return self.rows - self.added


@dataclass(frozen=True)
class UnmergeResolution:
    """What :func:`resolve_unmerges` did.

    Attributes:
        resolved: Unmerges resolved now.
        pairs: Cannot-link pairs they produced.
        pending: Records whose unmerge is still unresolved (not in the clusters table).
    """

    resolved: int
    pairs: int
    pending: tuple[str, ...]


@dataclass(frozen=True)
class OverriddenClustering:
    """What :func:`cluster_with_overrides` did.

    Attributes:
        summary: The clustering.
        overrides: The decisions in force it applied.
        csv: The CSV load, when a file was given.
    """

    summary: ClusterSummary
    overrides: EffectiveOverrides
    csv: CsvLoad | None


def _pair_key(record_a: str, record_b: str) -> tuple[str, str]:
    return (record_a, record_b) if record_a <= record_b else (record_b, record_a)


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


def _append(
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
    added = bool(_append(con, [decision], origin))
    row = con.execute(
        f"SELECT {_COLUMNS} FROM {quote(STEWARD_OVERRIDES)} WHERE override_id = ?",
        [decision.override_id],
    ).fetchall()[0]
    stored = Override(*row)
    logger.info("%s steward decision %s", "recorded" if added else "already had", stored.describe())
    return stored, added


def _csv_delimiter(path: Path) -> str | None:
    """The delimiter that splits the header into the expected columns, if one does."""
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    for delimiter in (",", ";", "\t", "|"):
        if set(CSV_COLUMNS) <= {name.strip() for name in header.split(delimiter)}:
            return delimiter
    return None


def read_overrides_csv(path: Path) -> list[tuple[int, Decision]]:
    """Read and validate a file of decisions (CSV, or any file type Meld reads).

    Columns: :data:`CSV_COLUMNS` (others are ignored). Every row must be a valid
    decision: nothing is read from a file with a bad row.

    Returns:
        ``(line, decision)`` for each row, in file order (the row number for files
        without lines, such as Parquet).

    Raises:
        OverrideError: The file is missing, lacks a column, or has bad rows; the message
            names the file, and the line and column of each bad row (up to 20).
    """
    if not path.is_file():
        raise OverrideError(f"steward overrides file '{path}': not found")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise OverrideError(
            f"steward overrides file '{path}': unsupported file type '{path.suffix}'; "
            f"expected one of {list(SUPPORTED_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        return []
    delimiter = _csv_delimiter(path) if path.suffix.lower() != ".parquet" else None
    try:
        delivery = read_file(path, source_system=STEWARD_OVERRIDES, delimiter=delimiter)
    except SourceError as exc:
        raise OverrideError(f"steward overrides file '{path}': {exc}") from exc
    columns = {name.strip(): name for name in delivery.table.column_names}
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise OverrideError(
            f"steward overrides file '{path}', line 1: missing column(s) {missing}; "
            f"expected {list(CSV_COLUMNS)}, found {delivery.table.column_names}"
        )
    values = {c: delivery.table.column(columns[c]).to_pylist() for c in CSV_COLUMNS}
    decisions: list[tuple[int, Decision]] = []
    errors: list[str] = []
    for i in range(delivery.table.num_rows):
        line = delivery.lines[i]
        where = f"line {line}" if line is not None else f"row {delivery.row_numbers[i]}"
        if delivery.problems[i] is not None:
            column = (
                f", column '{delivery.problem_fields[i]}'" if delivery.problem_fields[i] else ""
            )
            errors.append(f"{where}{column}: {delivery.problems[i]}: {delivery.problem_details[i]}")
            continue
        try:
            decision = make_decision(
                values["decision"][i] or "",
                values["record_a"][i],
                values["record_b"][i],
                steward=values["steward"][i],
                reason=values["reason"][i],
                decided_at=values["decided_at"][i] or "",
            )
        except OverrideError as exc:
            detail = str(exc).removeprefix(f"{exc.column}: ")
            errors.append(f"{where}, column '{exc.column}': {detail}")
            continue
        decisions.append((line or delivery.row_numbers[i], decision))
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        raise OverrideError(
            f"steward overrides file '{path}': {len(errors)} bad row(s), nothing loaded:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return decisions


def load_overrides_csv(con: duckdb.DuckDBPyConnection, path: Path) -> CsvLoad:
    """Append a file's decisions to ``steward_overrides``; the same rows add nothing.

    Args:
        con: Warehouse connection.
        path: The file (see :func:`read_overrides_csv`).

    Returns:
        Rows read and decisions added.

    Raises:
        OverrideError: The file is missing or malformed (nothing is loaded).

    Examples:
        ```py
        load = load_overrides_csv(con, project.resolve(project.overrides.path))
        load.added, load.already_recorded
        ```
    """
    decisions = [d for _, d in read_overrides_csv(path)]
    added = _append(con, decisions, f"csv:{path.name}")
    load = CsvLoad(path=path, rows=len(decisions), added=len(added))
    logger.info("steward overrides file %s: %d decisions, %d new", path, load.rows, load.added)
    return load


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


def _unmerges_in_force(history: Sequence[Override]) -> list[Override]:
    """Unmerges not followed by a ``revoke`` of the same record, oldest first."""
    by_record: dict[str, list[Override]] = {}
    for override in history:  # oldest first
        if override.record_b is not None:
            continue
        if override.decision == UNMERGE:
            by_record.setdefault(override.record_a, []).append(override)
        elif override.decision == REVOKE:
            by_record.pop(override.record_a, None)
    return sorted((u for kept in by_record.values() for u in kept), key=lambda o: o.order)


def _resolved(con: duckdb.DuckDBPyConnection) -> dict[str, list[str | None]]:
    """Resolved unmerges: override id -> the records cut from it (None: it was alone)."""
    if not table_exists(con, STEWARD_UNMERGE_RESOLUTIONS):
        return {}
    result: dict[str, list[str | None]] = {}
    for override_id, record_b in con.execute(
        f"SELECT override_id, record_b FROM {quote(STEWARD_UNMERGE_RESOLUTIONS)} "
        "ORDER BY override_id, record_b"
    ).fetchall():
        result.setdefault(override_id, []).append(record_b)
    return result


def resolve_unmerges(
    con: duckdb.DuckDBPyConnection, *, clusters_table: str = CUSTOMER_CLUSTERS
) -> UnmergeResolution:
    """Turn each unresolved unmerge in force into cannot-links, once and for all.

    ``unmerge X`` becomes a cannot-link between X and every other record of X's
    customer in ``clusters_table`` (``unique_id``, ``customer_id``), written to
    ``steward_unmerge_resolutions``. An unmerge whose record is not in the table (or
    when there is no table) stays pending.

    Args:
        con: Warehouse connection.
        clusters_table: The customers to resolve against, usually the
            ``customer_clusters`` of the previous run.

    Returns:
        Unmerges resolved, pairs produced and records still pending.

    Examples:
        ```py
        resolve_unmerges(con, clusters_table="customer_clusters").pending
        ```
    """
    history = list_overrides(con)
    resolved = _resolved(con)
    todo = [u for u in _unmerges_in_force(history) if u.override_id not in resolved]
    if not todo:
        return UnmergeResolution(0, 0, ())
    if not table_exists(con, clusters_table):
        return UnmergeResolution(0, 0, tuple(sorted({u.record_a for u in todo})))
    ensure_override_tables(con)
    con.register(
        _PENDING,
        pa.table(
            {
                "override_id": pa.array([u.override_id for u in todo], pa.string()),
                "record_a": pa.array([u.record_a for u in todo], pa.string()),
            }
        ),
    )
    try:
        con.execute(
            f"INSERT INTO {quote(STEWARD_UNMERGE_RESOLUTIONS)} "
            "SELECT u.override_id, u.record_a, o.unique_id, c.customer_id, $now "
            f"FROM {_PENDING} AS u JOIN {quote(clusters_table)} AS c ON c.unique_id = u.record_a "
            f"LEFT JOIN {quote(clusters_table)} AS o "
            "ON o.customer_id = c.customer_id AND o.unique_id <> c.unique_id",
            {"now": utc_now()},
        )
    finally:
        con.unregister(_PENDING)
    now_resolved = _resolved(con)
    done = [u for u in todo if u.override_id in now_resolved]
    pairs = sum(sum(r is not None for r in now_resolved[u.override_id]) for u in done)
    pending = tuple(sorted({u.record_a for u in todo if u.override_id not in now_resolved}))
    for u in done:
        if not any(now_resolved[u.override_id]):
            logger.warning(
                "unmerge of %s cuts nothing: it was alone in its customer (%s)",
                u.record_a,
                u.override_id,
            )
    logger.info("resolved %d unmerge(s) into %d cannot-link pair(s)", len(done), pairs)
    return UnmergeResolution(len(done), pairs, pending)


def effective_overrides(
    con: duckdb.DuckDBPyConnection, *, records_table: str | None = None
) -> EffectiveOverrides:
    """The decisions in force: latest per unordered pair wins, ``revoke`` cancels, and
    resolved unmerges count as cannot-links with the unmerge's time. Reads only.

    Args:
        con: Warehouse connection (read-only is enough).
        records_table: When given (and present), decisions naming records not in it
            are left out and those records listed in ``unknown_records``.

    Returns:
        Must-links (latest first), cannot-links, the decision per pair, unmerges in
        force, pending unmerges and unknown records.

    Examples:
        ```py
        overrides = effective_overrides(con, records_table="customer_records")
        cluster_records(con, ..., must_link=overrides.must_link,
                        cannot_link=overrides.cannot_link)
        ```
    """
    history = list_overrides(con)
    unmerges = _unmerges_in_force(history)
    resolved = _resolved(con)
    events: list[tuple[tuple[datetime, datetime, str], tuple[str, str], str, Override]] = []
    for override in history:
        if override.record_b is not None:
            key = _pair_key(override.record_a, override.record_b)
            events.append((override.order, key, override.decision, override))
    for unmerge in unmerges:
        for other in resolved.get(unmerge.override_id, []):
            if other is not None:
                key = _pair_key(unmerge.record_a, other)
                events.append((unmerge.order, key, CANNOT_LINK, unmerge))
    events.sort(key=lambda event: event[0])
    latest: dict[tuple[str, str], tuple[str, Override]] = {}
    for _, key, decision, override in events:
        latest[key] = (decision, override)
    pairs = {
        key: PairDecision(key, decision, override)
        for key, (decision, override) in latest.items()
        if decision != REVOKE
    }
    pending = sorted({u.record_a for u in unmerges if u.override_id not in resolved})
    unknown: list[str] = []
    if records_table is not None and table_exists(con, records_table):
        named = {r for key in pairs for r in key} | {u.record_a for u in unmerges}
        unknown = unknown_records(con, named, records_table)
        if unknown:
            gone = set(unknown)
            pairs = {k: p for k, p in pairs.items() if not gone & set(k)}
            unmerges = [u for u in unmerges if u.record_a not in gone]
            pending = [r for r in pending if r not in gone]
            logger.warning(
                "steward overrides name %d record(s) not in %s, left out: %s",
                len(unknown),
                records_table,
                ", ".join(unknown[:10]),
            )
    by_recency = sorted(pairs.values(), key=lambda p: p.override.order, reverse=True)
    return EffectiveOverrides(
        must_link=tuple(p.records for p in by_recency if p.decision == MUST_LINK),
        cannot_link=tuple(sorted(k for k, p in pairs.items() if p.decision == CANNOT_LINK)),
        pairs=pairs,
        unmerges=tuple(unmerges),
        pending_unmerges=tuple(pending),
        unknown_records=tuple(unknown),
    )


def cluster_with_overrides(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str,
    csv_path: Path | None = None,
    refused_table: str = REFUSED_LINKS,
    published_clusters: str | None = None,
    method: ClusteringMethod = CONNECTED_COMPONENTS,
) -> OverriddenClustering:
    """Load the steward CSV, resolve unmerges, and cluster with the decisions in force.

    Unmerges are resolved against the customers stewards see, ``published_clusters``
    (default ``out_table``) as it stands before this run replaces it. An unmerge of a
    record that is in no customer there is resolved against this run's clustering,
    which is then run once more.

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id``, ``source_system``, ``source_record_id``.
        pairs_table: Scored pairs (see :func:`linkage.clustering.cluster_records`).
        threshold: Match probability at or above which two records are one customer.
        out_table: The customers table to replace (``customer_clusters``).
        csv_path: The steward decisions file (``overrides.path``), if configured.
        refused_table: Where refused links go.
        published_clusters: The customers stewards see (``customer_clusters``), when
            ``out_table`` is an intermediate table that is turned into it afterwards.
        method: ``connected_components`` or ``best_links`` (``clustering.method``); see
            :func:`linkage.clustering.cluster_records`.

    Returns:
        The clustering summary, the decisions applied and the CSV load.

    Raises:
        OverrideError: The CSV is missing or malformed.

    Examples:
        ```py
        result = cluster_with_overrides(
            con,
            records_table="customer_records",
            pairs_table="pairwise_matches",
            threshold=stored.match_threshold,
            out_table="customer_clusters",
            csv_path=project.resolve(project.overrides.path) if project.overrides.path else None,
            method=project.clustering.method,
        )
        ```
    """
    csv = load_overrides_csv(con, csv_path) if csv_path is not None else None
    resolve_unmerges(con, clusters_table=published_clusters or out_table)
    overrides = effective_overrides(con, records_table=records_table)

    def run() -> ClusterSummary:
        return cluster_records(
            con,
            records_table=records_table,
            pairs_table=pairs_table,
            threshold=threshold,
            out_table=out_table,
            must_link=overrides.must_link,
            cannot_link=overrides.cannot_link,
            refused_table=refused_table,
            method=method,
        )

    summary = run()
    if overrides.pending_unmerges and resolve_unmerges(con, clusters_table=out_table).resolved:
        overrides = effective_overrides(con, records_table=records_table)
        summary = run()
    for line in overrides.warnings:
        logger.warning(line)
    return OverriddenClustering(summary=summary, overrides=overrides, csv=csv)
