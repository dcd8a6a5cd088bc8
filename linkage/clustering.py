"""Group scored pairs into customers, respecting steward decisions.

Clustering is a union-find over links in a fixed order: steward must-links first,
then the model's links (pairs at or above the match threshold without a
``link_veto``) from the most to the least probable, ties broken by the records'
``unique_id``. A union is refused when it would put a cannot-link pair in one
customer, so a cannot-link cuts the weakest link between the two records, even when
the model links them through others. Without cannot-links the result is exactly the
connected components of the links.

The algorithm itself, :func:`constrained_union_find`, works on integer node numbers
and knows nothing of DuckDB; :func:`cluster_records` reads the warehouse, calls an
algorithm with that signature (see :data:`ClusteringAlgorithm`), and writes
``customer_clusters`` and ``refused_links``. Another algorithm (one that does not
chain, say) can be passed as ``algorithm=``.

Examples:
    ```py
    summary = cluster_records(
        con,
        records_table="customer_records",
        pairs_table="pairwise_matches",
        threshold=0.95,
        out_table="customer_clusters",
        must_link=[("crm:17", "shop:4")],
        cannot_link=[("crm:17", "crm:18")],
    )
    summary.links_refused, summary.must_links_applied
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from linkage.warehouse import quote, table_columns

logger = logging.getLogger(__name__)

CUSTOMER_ID_PREFIX = "cus_"
REFUSED_LINKS_TABLE = "refused_links"
REFUSED_BY_CANNOT_LINK = "cannot_link"
"""``refused_links.reason`` of a model link that would join a cannot-link pair."""
MUST_LINK_CONFLICT = "must_link_conflict"
"""``refused_links.reason`` of a must-link that would join a cannot-link pair."""

_NODES = "__meld_cluster_nodes"
_LABELS = "__meld_cluster_labels"
_REFUSED = "__meld_cluster_refused"
_IDS = "__meld_cluster_constraint_ids"

_FIRST_NAMES_CONFLICT = "jaro_winkler_similarity(first_name_l, first_name_r) < 0.7"
_NAMES_NOT_SWAPPED = (
    "coalesce(jaro_winkler_similarity(first_name_l, last_name_r), 0) < 0.7 "
    "AND coalesce(jaro_winkler_similarity(last_name_l, first_name_r), 0) < 0.7"
)
_BIRTH_DATES_CONFLICT = (
    "date_of_birth_l <> date_of_birth_r "
    "AND strftime(date_of_birth_l, '%Y-%d-%m') <> strftime(date_of_birth_r, '%Y-%m-%d')"
)

LINK_VETOES: dict[str, tuple[tuple[str, ...], str]] = {
    "first_name_and_date_of_birth_conflict": (
        ("first_name", "last_name", "date_of_birth"),
        f"{_FIRST_NAMES_CONFLICT} AND {_NAMES_NOT_SWAPPED} AND {_BIRTH_DATES_CONFLICT}",
    ),
}
"""Evidence no score can outweigh: two records whose first names have nothing in common
(and are not simply swapped with the last names) *and* whose dates of birth are both
known and differ (not merely day and month swapped) are two people, whatever else they
share. A family sharing a mailbox and an address is the typical case; nicknames (Olek
and Aleksander) keep their link through the date of birth. Vetoed pairs stay in
``pairwise_matches`` with the veto's name in ``link_veto``."""


def apply_link_vetoes(con: duckdb.DuckDBPyConnection, pairs_table: str) -> dict[str, int]:
    """Fill ``link_veto`` in ``pairs_table`` for pairs a veto forbids.

    Returns:
        Number of pairs each veto applies to.
    """
    columns = set(table_columns(con, pairs_table))
    con.execute(f"ALTER TABLE {quote(pairs_table)} ADD COLUMN IF NOT EXISTS link_veto VARCHAR")
    con.execute(f"UPDATE {quote(pairs_table)} SET link_veto = NULL")
    counts = {}
    for name, (needed, condition) in LINK_VETOES.items():
        if not all(f"{c}_l" in columns and f"{c}_r" in columns for c in needed):
            continue
        con.execute(
            f"UPDATE {quote(pairs_table)} SET link_veto = $name "
            f"WHERE link_veto IS NULL AND ({condition})",
            {"name": name},
        )
        counts[name] = int(
            con.execute(
                f"SELECT count(*) FROM {quote(pairs_table)} WHERE link_veto = ?", [name]
            ).fetchall()[0][0]
        )
    return counts


@dataclass(frozen=True)
class ClusterSummary:
    """Sizes of the clustering result and what steward decisions changed.

    Attributes:
        records: Records clustered (every record of the records table).
        customers: Customers formed, singletons included.
        largest_customer: Records in the largest customer.
        singletons: Customers of one record.
        links: Model links considered (at or above the threshold, not vetoed).
        links_refused: Model links refused because they would join a cannot-link pair.
        must_links_applied: Must-links whose two records ended up in one customer.
        must_links_refused: Must-links refused because they contradict cannot-links.
        constraints_ignored: Must- and cannot-links naming a record not in the records
            table (they cannot apply).
    """

    records: int
    customers: int
    largest_customer: int
    singletons: int
    links: int = 0
    links_refused: int = 0
    must_links_applied: int = 0
    must_links_refused: int = 0
    constraints_ignored: int = 0


@dataclass(frozen=True)
class Refusal:
    """A link the clustering refused, by node numbers.

    Attributes:
        left: One record of the refused link.
        right: The other record.
        probability: The link's match probability; None for a must-link.
        reason: :data:`REFUSED_BY_CANNOT_LINK` or :data:`MUST_LINK_CONFLICT`.
        conflict_left: The cannot-link pair the union would have joined: a record on
            ``left``'s side ...
        conflict_right: ... and one on ``right``'s side.
    """

    left: int
    right: int
    probability: float | None
    reason: str
    conflict_left: int
    conflict_right: int


@dataclass(frozen=True)
class Clustering:
    """What a clustering algorithm returns.

    Attributes:
        labels: For each node ``0 .. n-1``, a label shared by exactly the nodes of its
            cluster (any integer; only equality matters).
        refused: Links the algorithm refused, in the order it met them.
        must_links_applied: Must-links whose nodes share a cluster in the result.
    """

    labels: list[int]
    refused: list[Refusal]
    must_links_applied: int


ClusteringAlgorithm = Callable[..., Clustering]
"""``algorithm(n, links, *, must_link, cannot_link) -> Clustering``: ``n`` nodes numbered
``0 .. n-1`` (in ``unique_id`` order), ``links`` as ``(node, node, probability)`` from
the most to the least probable (ties by node numbers), ``must_link`` and
``cannot_link`` as node pairs."""


def constrained_union_find(
    n: int,
    links: Sequence[tuple[int, int, float]],
    *,
    must_link: Sequence[tuple[int, int]] = (),
    cannot_link: Sequence[tuple[int, int]] = (),
) -> Clustering:
    """Union-find over must-links, then links in the given order, refusing any union
    that would put a cannot-link pair in one cluster.

    Each cluster root keeps the records its members must not be joined with (and which
    member forbids each), so a union is checked by looking only at the smaller of the
    two clusters' lists; clusters untouched by cannot-links are joined without a check.
    With no cannot-links this is plain connected components.

    Args:
        n: Number of nodes, numbered ``0 .. n-1``.
        links: ``(node, node, probability)`` in priority order (most probable first).
        must_link: Node pairs to join before any link, in priority order.
        cannot_link: Node pairs that must end in different clusters.

    Returns:
        Labels (the root node of each node's cluster), refused links and must-links
        applied.

    Examples:
        >>> result = constrained_union_find(
        ...     3, [(0, 1, 0.99), (1, 2, 0.97)], cannot_link=[(0, 2)]
        ... )
        >>> result.labels[0] == result.labels[1] != result.labels[2]
        True
        >>> (result.refused[0].left, result.refused[0].right, result.refused[0].reason)
        (1, 2, 'cannot_link')
    """
    parent = list(range(n))
    size = [1] * n
    barred: dict[int, dict[int, int]] = {}
    for a, b in cannot_link:
        if a != b:
            barred.setdefault(a, {})[b] = a
            barred.setdefault(b, {})[a] = b

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = x = parent[parent[x]]  # path halving
        return x

    def conflict(ra: int, rb: int) -> tuple[int, int] | None:
        """A cannot-link pair (member of ra, member of rb) the union would join."""
        mine, theirs = barred.get(ra, {}), barred.get(rb, {})
        if len(theirs) < len(mine):
            for node, member in theirs.items():
                if find(node) == ra:
                    return node, member
            return None
        for node, member in mine.items():
            if find(node) == rb:
                return member, node
        return None

    def join(ra: int, rb: int) -> None:
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        moved = barred.pop(rb, None)
        if moved:
            kept = barred.get(ra)
            if kept is None:
                barred[ra] = moved
            elif len(kept) >= len(moved):
                kept.update(moved)
            else:
                moved.update(kept)
                barred[ra] = moved

    refused: list[Refusal] = []
    for a, b in must_link:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        pair = conflict(ra, rb) if barred else None
        if pair is None:
            join(ra, rb)
        else:
            refused.append(Refusal(a, b, None, MUST_LINK_CONFLICT, *pair))
    for a, b, probability in links:
        # find() inlined: this loop runs once per link, a million times on large data
        ra = a
        while parent[ra] != ra:
            parent[ra] = ra = parent[parent[ra]]
        rb = b
        while parent[rb] != rb:
            parent[rb] = rb = parent[parent[rb]]
        if ra == rb:
            continue
        if barred and (ra in barred or rb in barred):
            pair = conflict(ra, rb)
            if pair is not None:
                refused.append(Refusal(a, b, probability, REFUSED_BY_CANNOT_LINK, *pair))
                continue
            join(ra, rb)
        elif size[ra] < size[rb]:
            parent[ra] = rb
            size[rb] += size[ra]
        else:
            parent[rb] = ra
            size[ra] += size[rb]
    for x in range(n):  # point every node at its root: parent becomes the labels
        root = parent[x]
        while parent[root] != root:
            root = parent[root]
        parent[x] = root
    applied = sum(parent[a] == parent[b] for a, b in must_link)
    return Clustering(labels=parent, refused=refused, must_links_applied=applied)


def cluster_records(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str,
    must_link: Sequence[tuple[str, str]] = (),
    cannot_link: Sequence[tuple[str, str]] = (),
    refused_table: str = REFUSED_LINKS_TABLE,
    algorithm: ClusteringAlgorithm = constrained_union_find,
) -> ClusterSummary:
    """Cluster records into customers: one row per record in ``out_table``.

    Links are pairs at or above ``threshold`` without a ``link_veto`` (see
    :data:`LINK_VETOES`). Steward decisions come as ``unique_id`` pairs: must-links are
    applied first, and no customer ever holds both records of a cannot-link (cannot-links
    win over must-links that contradict them). Links and must-links refused for a
    cannot-link are written to ``refused_table`` (recreated on every run, empty when
    nothing was refused) with the cannot-link pair that forbade them. Decisions naming a
    record that is not in ``records_table`` are ignored and counted.

    Every record of ``records_table`` gets a ``customer_id``, singletons included.
    The id is derived from the smallest ``unique_id`` in the customer, so it is opaque
    and reproducible for the same clustering.

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id``, ``source_system``, ``source_record_id``.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``, ``match_probability``.
        threshold: Match probability at or above which two records are one customer.
        out_table: Table to (re)create: ``source_system``, ``source_record_id``,
            ``unique_id``, ``customer_id``, ``customer_record_count``.
        must_link: Record pairs to put in one customer, highest priority first.
        cannot_link: Record pairs that must be in different customers.
        refused_table: Table to (re)create with the refused links: ``unique_id_l``,
            ``unique_id_r``, ``match_probability`` (NULL for a must-link), ``reason``,
            ``cannot_link_l``, ``cannot_link_r``.
        algorithm: The clustering over node numbers; see :data:`ClusteringAlgorithm`.

    Returns:
        Counts of records, customers, the largest customer and singletons, links
        considered and refused, must-links applied and refused.

    Examples:
        ```py
        summary = cluster_records(
            con,
            records_table="customer_records",
            pairs_table="pairwise_matches",
            threshold=0.95,
            out_table="customer_clusters",
            cannot_link=[("crm:1", "shop:9")],
        )
        ```
    """
    veto = "AND p.link_veto IS NULL" if "link_veto" in table_columns(con, pairs_table) else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_NODES} AS "
        "SELECT unique_id, source_system, source_record_id, "
        "(row_number() OVER (ORDER BY unique_id) - 1)::BIGINT AS node "
        f"FROM {quote(records_table)}"
    )
    try:
        n = int(con.execute(f"SELECT count(*) FROM {_NODES}").fetchall()[0][0])
        links = con.execute(
            "SELECT least(l.node, r.node), greatest(l.node, r.node), p.match_probability "
            f"FROM {quote(pairs_table)} AS p "
            f"JOIN {_NODES} AS l ON l.unique_id = p.unique_id_l "
            f"JOIN {_NODES} AS r ON r.unique_id = p.unique_id_r "
            f"WHERE p.match_probability >= $threshold AND l.node <> r.node {veto} "
            "ORDER BY p.match_probability DESC, 1, 2",
            {"threshold": threshold},
        ).fetchall()
        nodes = _constraint_nodes(con, [*must_link, *cannot_link])
        must = [(nodes[a], nodes[b]) for a, b in must_link if a in nodes and b in nodes]
        cannot = [(nodes[a], nodes[b]) for a, b in cannot_link if a in nodes and b in nodes]
        ignored = len(must_link) + len(cannot_link) - len(must) - len(cannot)
        if ignored:
            logger.warning("%d steward decision(s) name records not in %s", ignored, records_table)
        result = algorithm(n, links, must_link=must, cannot_link=cannot)
        _write_clusters(con, result.labels, out_table)
        _write_refused(con, result.refused, refused_table)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_NODES}")
    row = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), coalesce(max(customer_record_count), 0), "
        "count(*) FILTER (WHERE customer_record_count = 1) "
        f"FROM {quote(out_table)}"
    ).fetchall()[0]
    must_refused = sum(r.reason == MUST_LINK_CONFLICT for r in result.refused)
    summary = ClusterSummary(
        records=int(row[0]),
        customers=int(row[1]),
        largest_customer=int(row[2]),
        singletons=int(row[3]),
        links=len(links),
        links_refused=len(result.refused) - must_refused,
        must_links_applied=result.must_links_applied,
        must_links_refused=must_refused,
        constraints_ignored=ignored,
    )
    logger.info(
        "clustered %d records into %d customers (%d links; %d refused by cannot-links; "
        "%d must-links applied, %d refused)",
        summary.records,
        summary.customers,
        summary.links,
        summary.links_refused,
        summary.must_links_applied,
        summary.must_links_refused,
    )
    return summary


def _constraint_nodes(
    con: duckdb.DuckDBPyConnection, pairs: Sequence[tuple[str, str]]
) -> dict[str, int]:
    """Node number of each record named in ``pairs`` that is in the nodes table."""
    ids = sorted({record for pair in pairs for record in pair})
    if not ids:
        return {}
    con.register(_IDS, pa.table({"unique_id": pa.array(ids, type=pa.string())}))
    try:
        rows = con.execute(
            f"SELECT n.unique_id, n.node FROM {_NODES} AS n JOIN {_IDS} AS i USING (unique_id)"
        ).fetchall()
    finally:
        con.unregister(_IDS)
    return {unique_id: int(node) for unique_id, node in rows}


def _write_clusters(con: duckdb.DuckDBPyConnection, labels: list[int], out_table: str) -> None:
    con.register(
        _LABELS,
        pa.table(
            {
                "node": pa.array(np.arange(len(labels), dtype=np.int64)),
                "label": pa.array(np.asarray(labels, dtype=np.int64)),
            }
        ),
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(out_table)} AS "
            "WITH named AS ("
            "  SELECT n.source_system, n.source_record_id, n.unique_id, "
            "  min(n.unique_id) OVER (PARTITION BY c.label) AS anchor, "
            "  count(*) OVER (PARTITION BY c.label) AS customer_record_count "
            f"  FROM {_NODES} AS n JOIN {_LABELS} AS c USING (node)"
            ") "
            "SELECT source_system, source_record_id, unique_id, "
            "$prefix || substr(md5(anchor), 1, 16) AS customer_id, customer_record_count "
            "FROM named ORDER BY customer_id, unique_id",
            {"prefix": CUSTOMER_ID_PREFIX},
        )
    finally:
        con.unregister(_LABELS)


def _write_refused(
    con: duckdb.DuckDBPyConnection, refused: list[Refusal], refused_table: str
) -> None:
    con.register(
        _REFUSED,
        pa.table(
            {
                "position": pa.array(range(len(refused)), type=pa.int64()),
                "left_node": pa.array([r.left for r in refused], type=pa.int64()),
                "right_node": pa.array([r.right for r in refused], type=pa.int64()),
                "match_probability": pa.array([r.probability for r in refused], pa.float64()),
                "reason": pa.array([r.reason for r in refused], type=pa.string()),
                "conflict_left": pa.array([r.conflict_left for r in refused], type=pa.int64()),
                "conflict_right": pa.array([r.conflict_right for r in refused], type=pa.int64()),
            }
        ),
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(refused_table)} AS "
            "SELECT l.unique_id AS unique_id_l, r.unique_id AS unique_id_r, "
            "f.match_probability, f.reason, "
            "cl.unique_id AS cannot_link_l, cr.unique_id AS cannot_link_r "
            f"FROM {_REFUSED} AS f "
            f"JOIN {_NODES} AS l ON l.node = f.left_node "
            f"JOIN {_NODES} AS r ON r.node = f.right_node "
            f"JOIN {_NODES} AS cl ON cl.node = f.conflict_left "
            f"JOIN {_NODES} AS cr ON cr.node = f.conflict_right "
            "ORDER BY f.position"
        )
    finally:
        con.unregister(_REFUSED)
