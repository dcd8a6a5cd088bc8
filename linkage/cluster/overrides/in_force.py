"""The steward decisions in force, and unmerges resolved into cannot-links.

Per unordered pair of records the latest decision (by ``decided_at``, then
``recorded_at``) wins; a ``revoke`` as latest leaves the pair without a decision. The
unmerges of a record are in force until a later ``revoke A``. An ``unmerge X`` is
resolved once into cannot-links between X and the other records of its customer, kept
in ``steward_unmerge_resolutions`` (see :mod:`linkage.cluster.overrides.clustering` for why).

Examples:
    ```py
    resolve_unmerges(con, clusters_table="customer_clusters")
    overrides = effective_overrides(con, records_table="customer_records")
    overrides.must_link, overrides.cannot_link, overrides.for_pair("crm:1", "shop:9")
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from linkage.cluster.overrides.decisions import (
    CANNOT_LINK,
    MUST_LINK,
    REVOKE,
    UNMERGE,
    Override,
    ensure_override_tables,
    list_overrides,
    unknown_records,
    utc_now,
)
from linkage.tables import CUSTOMER_CLUSTERS, STEWARD_UNMERGE_RESOLUTIONS
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

_PENDING = "__meld_pending_unmerges"


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
    """The steward decisions in force, ready for :func:`linkage.cluster.clustering.cluster_records`.

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


def _pair_key(record_a: str, record_b: str) -> tuple[str, str]:
    return (record_a, record_b) if record_a <= record_b else (record_b, record_a)


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
