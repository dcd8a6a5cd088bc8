"""What a clustering run changed, and the pairwise evidence behind each merge.

The id events (``new``, ``merged``, ``split``, ``retired``) and record moves of a run
are in ``customer_id_history`` and ``customer_record_moves`` (see
:mod:`linkage.cluster.stable_ids.assign`). This module adds ``merge_evidence``: for each customer id
merged into another in a run, the strongest links between the records that came from
the merged customer and the rest of the surviving customer, each a scored pair at or
above the threshold (``evidence = 'model_link'``) or a steward must-link
(``'steward_must_link'``). :func:`run_changes` reads all of it back for one run.

Examples:
    ```py
    record_merge_evidence(con, run_id=rid, pairs_table="pairwise_matches", threshold=0.9)
    changes = run_changes(con, rid)
    changes.counts["merged"], changes.merges[0].evidence
    ```
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from linkage.cluster.overrides.in_force import effective_overrides
from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES
from linkage.tables import CUSTOMER_CLUSTERS, MERGE_EVIDENCE
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

EVIDENCE_PER_MERGE = 3
_COLUMNS = {
    "run_id": "VARCHAR",
    "survivor_id": "VARCHAR",
    "merged_id": "VARCHAR",
    "rank": "INTEGER",
    "unique_id_l": "VARCHAR",
    "unique_id_r": "VARCHAR",
    "match_weight": "DOUBLE",
    "match_probability": "DOUBLE",
    "evidence": "VARCHAR",
}


@dataclass(frozen=True)
class MergeEvidence:
    """One link that explains why a customer was merged into another."""

    survivor_id: str
    merged_id: str
    rank: int
    unique_id_l: str
    unique_id_r: str
    match_weight: float | None
    match_probability: float | None
    evidence: str


@dataclass(frozen=True)
class IdEvent:
    """One row of ``customer_id_history``."""

    event: str
    customer_id: str
    related_id: str | None
    records: int


@dataclass(frozen=True)
class RecordMove:
    """A record that changed customer in the run."""

    unique_id: str
    from_id: str | None
    to_id: str


@dataclass
class RunChanges:
    """Everything one clustering run changed.

    Attributes:
        run_id: The clustering run.
        counts: Events per kind (``created``, ``merged``, ``split``, ``retired``) and
            ``records_moved``.
        events: The id events.
        moves: The records that changed customer.
        merges: Evidence for each merge, strongest link first.
    """

    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    events: list[IdEvent] = field(default_factory=list)
    moves: list[RecordMove] = field(default_factory=list)
    merges: list[MergeEvidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f"{quote(name)} {kind}" for name, kind in _COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {quote(MERGE_EVIDENCE)} ({columns})")


def record_merge_evidence(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    pairs_table: str,
    threshold: float,
    clusters_table: str = CUSTOMER_CLUSTERS,
    per_merge: int = EVIDENCE_PER_MERGE,
) -> int:
    """Append to ``merge_evidence`` the links behind each merge of ``run_id``.

    For each ``merged`` event the records that moved from the merged id to the
    survivor are one side; the survivor's other records are the other. The
    ``per_merge`` strongest scored pairs at or above ``threshold`` across the two
    sides are kept; when there is none, the steward must-links across them are.

    Args:
        con: Warehouse connection, after :func:`linkage.cluster.stable_ids.assign_stable_ids`.
        run_id: The run whose merges to explain.
        pairs_table: The run's scored pairs.
        threshold: Match probability at which a pair links.
        clusters_table: Records and their (stable) customer ids.
        per_merge: Links kept per merge.

    Returns:
        Rows appended.
    """
    _ensure_table(con)
    history, moves = CUSTOMER_ID_TABLES.history, CUSTOMER_ID_TABLES.moves
    if not table_exists(con, history) or not table_exists(con, moves):
        return 0
    merges = con.execute(
        f"SELECT id, related_id FROM {quote(history)} "
        "WHERE run_id = ? AND event = 'merged' ORDER BY id",
        [run_id],
    ).fetchall()
    if not merges:
        return 0
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __meld_merge_sides AS "
        "SELECT h.id AS merged_id, h.related_id AS survivor_id, c.unique_id, "
        "(m.member IS NOT NULL) AS from_merged "
        f"FROM {quote(history)} AS h JOIN {quote(clusters_table)} AS c "
        "ON c.customer_id = h.related_id "
        f"LEFT JOIN {quote(moves)} AS m ON m.run_id = h.run_id AND m.member = c.unique_id "
        "AND m.from_id = h.id "
        "WHERE h.run_id = $run_id AND h.event = 'merged'",
        {"run_id": run_id},
    )
    before = con.execute(f"SELECT count(*) FROM {quote(MERGE_EVIDENCE)}").fetchall()[0][0]
    con.execute(
        f"INSERT INTO {quote(MERGE_EVIDENCE)} "
        "SELECT $run_id, survivor_id, merged_id, rank, unique_id_l, unique_id_r, "
        "match_weight, match_probability, 'model_link' FROM ("
        "  SELECT a.survivor_id, a.merged_id, p.unique_id_l, p.unique_id_r, "
        "  p.match_weight, p.match_probability, row_number() OVER ("
        "    PARTITION BY a.merged_id ORDER BY p.match_weight DESC, p.unique_id_l, "
        "    p.unique_id_r) AS rank "
        "  FROM __meld_merge_sides AS a JOIN __meld_merge_sides AS b "
        "  ON a.merged_id = b.merged_id AND a.from_merged AND NOT b.from_merged "
        f"  JOIN {quote(pairs_table)} AS p ON p.match_probability >= $threshold "
        "  AND ((p.unique_id_l = a.unique_id AND p.unique_id_r = b.unique_id) "
        "    OR (p.unique_id_r = a.unique_id AND p.unique_id_l = b.unique_id))"
        ") WHERE rank <= $per_merge ORDER BY merged_id, rank",
        {"run_id": run_id, "threshold": threshold, "per_merge": per_merge},
    )
    unexplained = con.execute(
        "SELECT DISTINCT merged_id FROM __meld_merge_sides "
        f"ANTI JOIN {quote(MERGE_EVIDENCE)} AS e "
        "ON e.run_id = $run_id AND e.merged_id = __meld_merge_sides.merged_id",
        {"run_id": run_id},
    ).fetchall()
    if unexplained:
        _append_must_links(con, run_id, {row[0] for row in unexplained}, per_merge)
    con.execute("DROP TABLE IF EXISTS __meld_merge_sides")
    after = con.execute(f"SELECT count(*) FROM {quote(MERGE_EVIDENCE)}").fetchall()[0][0]
    return int(after - before)


def _append_must_links(
    con: duckdb.DuckDBPyConnection, run_id: str, merged_ids: set[str], per_merge: int
) -> None:
    sides = con.execute(
        "SELECT merged_id, survivor_id, unique_id, from_merged FROM __meld_merge_sides"
    ).fetchall()
    overrides = effective_overrides(con)
    members: dict[str, tuple[str, set[str], set[str]]] = {}
    for merged_id, survivor_id, unique_id, from_merged in sides:
        if merged_id not in merged_ids:
            continue
        _, moved, rest = members.setdefault(merged_id, (survivor_id, set(), set()))
        (moved if from_merged else rest).add(unique_id)
    rows = []
    for merged_id, (survivor_id, moved, rest) in sorted(members.items()):
        links = sorted(
            (a, b)
            for a, b in overrides.must_link
            if (a in moved and b in rest) or (b in moved and a in rest)
        )
        for rank, (a, b) in enumerate(links[:per_merge], start=1):
            rows.append(
                [run_id, survivor_id, merged_id, rank, a, b, None, None, "steward_must_link"]
            )
    if rows:
        con.executemany(
            f"INSERT INTO {quote(MERGE_EVIDENCE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )


def run_changes(
    con: duckdb.DuckDBPyConnection, run_id: str, *, limit: int | None = None
) -> RunChanges:
    """The id events, record moves and merge evidence of one clustering run.

    Args:
        con: Warehouse connection (read-only is enough).
        run_id: The clustering run.
        limit: Most events and moves returned (counts are always complete).
    """
    changes = RunChanges(run_id=run_id)
    history, moves = CUSTOMER_ID_TABLES.history, CUSTOMER_ID_TABLES.moves
    counts = {"created": 0, "merged": 0, "split": 0, "retired": 0, "records_moved": 0}
    cap = {"limit": limit if limit is not None else 2**62}
    if table_exists(con, history):
        for event, n in con.execute(
            f"SELECT event, count(*) FROM {quote(history)} WHERE run_id = ? GROUP BY 1",
            [run_id],
        ).fetchall():
            counts["created" if event == "new" else str(event)] = int(n)
        changes.events = [
            IdEvent(event=r[0], customer_id=r[1], related_id=r[2], records=int(r[3] or 0))
            for r in con.execute(
                f"SELECT event, id, related_id, members FROM {quote(history)} "
                "WHERE run_id = $run_id ORDER BY event, id LIMIT $limit",
                {"run_id": run_id, **cap},
            ).fetchall()
        ]
    if table_exists(con, moves):
        counts["records_moved"] = int(
            con.execute(
                f"SELECT count(*) FROM {quote(moves)} WHERE run_id = ?", [run_id]
            ).fetchall()[0][0]
        )
        changes.moves = [
            RecordMove(unique_id=r[0], from_id=r[1], to_id=r[2])
            for r in con.execute(
                f"SELECT member, from_id, to_id FROM {quote(moves)} "
                "WHERE run_id = $run_id ORDER BY member LIMIT $limit",
                {"run_id": run_id, **cap},
            ).fetchall()
        ]
    if table_exists(con, MERGE_EVIDENCE):
        changes.merges = [
            MergeEvidence(*r)
            for r in con.execute(
                "SELECT survivor_id, merged_id, rank, unique_id_l, unique_id_r, match_weight, "
                f"match_probability, evidence FROM {quote(MERGE_EVIDENCE)} "
                "WHERE run_id = ? ORDER BY merged_id, rank",
                [run_id],
            ).fetchall()
        ]
    changes.counts = counts
    return changes
