"""Group scored pairs into customers, respecting steward decisions.

Clustering is a union-find over links in a fixed order: steward must-links first,
then the model's links (pairs at or above the match threshold without a
``link_veto``) from the most to the least probable, ties broken by the records'
``unique_id``. A union is refused when it would put a cannot-link pair in one
customer, so a cannot-link cuts the weakest link between the two records, even when
the model links them through others.

Two methods (:data:`CLUSTERING_METHODS`) decide which unions are taken:

- ``connected_components`` (:func:`constrained_union_find`): every link joins. Without
  cannot-links the result is exactly the connected components of the links. It
  chains: two people who share a name are joined by one sparse record (a support
  ticket with just the name) that links to both, and a household by the records
  that share its e-mail and address; the more records, the more such bridges.
- ``best_links`` (:func:`best_links`): links are still taken strongest first, so each
  record first joins the customer of its best link; after that a link joins two
  customers of several records each only when at least ``min_cohesion`` (a quarter)
  of the record pairs across them are links, so a lone weak bridge between two
  well-linked people is refused.

The algorithms work on integer node numbers and know nothing of DuckDB;
:func:`cluster_records` reads the warehouse, calls an algorithm with the
:data:`ClusteringAlgorithm` signature, and writes ``customer_clusters`` and
``refused_links``. :func:`customer_graph_metrics` describes each customer's link
graph (size, links, density, weakest link, bridges) in ``customer_graph_metrics`` and
warns about customers larger than a limit.

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
        method="best_links",
    )
    summary.links_refused, summary.links_refused_as_weak, summary.must_links_applied
    metrics = customer_graph_metrics(
        con,
        clusters_table="customer_clusters",
        pairs_table="pairwise_matches",
        threshold=0.95,
        warn_cluster_size=50,
    )
    metrics.oversized
    ```
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa

from linkage.ingest.identifiers import INVALID_HASH_TOKEN
from linkage.tables import CUSTOMER_GRAPH_METRICS, REFUSED_LINKS
from linkage.warehouse import quote, table_columns

logger = logging.getLogger(__name__)

CUSTOMER_ID_PREFIX = "cus_"
REFUSED_BY_CANNOT_LINK = "cannot_link"
"""``refused_links.reason`` of a model link that would join a cannot-link pair."""
MUST_LINK_CONFLICT = "must_link_conflict"
"""``refused_links.reason`` of a must-link that would join a cannot-link pair."""
REFUSED_AS_WEAK_BRIDGE = "weak_bridge"
"""``refused_links.reason`` of a model link between two customers of several records
that too few links support (``best_links`` only)."""

CONNECTED_COMPONENTS = "connected_components"
BEST_LINKS = "best_links"
ClusteringMethod = Literal["connected_components", "best_links"]
"""The names :func:`cluster_records` accepts as ``method``."""

DEFAULT_MIN_COHESION = 0.25
"""Share of the record pairs across two customers of several records each that must
be links for ``best_links`` to join them.

Measured on the demo data (seed 42), joins of two multi-record customers that are
false have a median of one link in eight pairs across (0.13); of the true ones, three
in four have nine in ten pairs or more linked (median 1.0). Cluster F1 is flat, within
0.001, from 0.2 to 0.3 at both 10,000 and 300,000 persons, and falls on either side,
so a quarter sits in the middle of that plateau. It is a property of the clustering,
not of a data set: it is not meant to be tuned per project."""

_NODES = "__meld_cluster_nodes"
_LABELS = "__meld_cluster_labels"
_REFUSED = "__meld_cluster_refused"
_IDS = "__meld_cluster_constraint_ids"
_MEMBERS = "__meld_graph_members"
_BRIDGES = "__meld_graph_bridges"

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

VETO_EXEMPTIONS: dict[str, str] = {
    "national_id": "national_id_l = national_id_r AND national_id_l <> $invalid_id",
}
"""Evidence that lifts every veto: the same (hashed, valid) national id is one person,
whose first name and date of birth were both mistyped. Loyalty cards, device ids and
customer numbers do not lift a veto: families share them."""


def apply_link_vetoes(con: duckdb.DuckDBPyConnection, pairs_table: str) -> dict[str, int]:
    """Fill ``link_veto`` in ``pairs_table`` for pairs a veto forbids.

    A pair with the same valid national id (:data:`VETO_EXEMPTIONS`) is never vetoed.

    Returns:
        Number of pairs each veto applies to.
    """
    columns = set(table_columns(con, pairs_table))
    con.execute(f"ALTER TABLE {quote(pairs_table)} ADD COLUMN IF NOT EXISTS link_veto VARCHAR")
    con.execute(f"UPDATE {quote(pairs_table)} SET link_veto = NULL")
    exempt = [
        f"coalesce({condition}, false)"
        for column, condition in VETO_EXEMPTIONS.items()
        if f"{column}_l" in columns and f"{column}_r" in columns
    ]
    unless = "".join(f" AND NOT {condition}" for condition in exempt)
    counts = {}
    for name, (needed, condition) in LINK_VETOES.items():
        if not all(f"{c}_l" in columns and f"{c}_r" in columns for c in needed):
            continue
        con.execute(
            f"UPDATE {quote(pairs_table)} SET link_veto = $name "
            f"WHERE link_veto IS NULL AND ({condition}){unless}",
            {"name": name, "invalid_id": INVALID_HASH_TOKEN} if exempt else {"name": name},
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
        method: The clustering method (``custom`` for an ``algorithm=`` passed in).
        links_refused_as_weak: Model links refused as weak bridges between two
            customers (``best_links``).
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
    method: str = CONNECTED_COMPONENTS
    links_refused_as_weak: int = 0


@dataclass(frozen=True)
class Refusal:
    """A link the clustering refused, by node numbers.

    Attributes:
        left: One record of the refused link.
        right: The other record.
        probability: The link's match probability; None for a must-link.
        reason: :data:`REFUSED_BY_CANNOT_LINK`, :data:`MUST_LINK_CONFLICT` or
            :data:`REFUSED_AS_WEAK_BRIDGE`.
        conflict_left: The cannot-link pair the union would have joined: a record on
            ``left``'s side ... (None for a weak bridge)
        conflict_right: ... and one on ``right``'s side.
        cohesion: For a weak bridge, the share of record pairs across the two
            customers that are links.
    """

    left: int
    right: int
    probability: float | None
    reason: str
    conflict_left: int | None
    conflict_right: int | None
    cohesion: float | None = None


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


class _Barriers:
    """For each cluster root, the nodes its members must never share a cluster with,
    and which member forbids each (the pairs are symmetric, so both sides hold them)."""

    def __init__(self, pairs: Sequence[tuple[int, int]]) -> None:
        self.by_root: dict[int, dict[int, int]] = {}
        for a, b in pairs:
            if a != b:
                self.by_root.setdefault(a, {})[b] = a
                self.by_root.setdefault(b, {})[a] = b

    def conflict(self, ra: int, rb: int, find: Callable[[int], int]) -> tuple[int, int] | None:
        """A forbidden pair (member of ``ra``, member of ``rb``) a union would join."""
        mine, theirs = self.by_root.get(ra), self.by_root.get(rb)
        if not mine or not theirs:  # symmetric pairs: a conflict is on both sides
            return None
        if len(theirs) < len(mine):
            for node, member in theirs.items():
                if find(node) == ra:
                    return node, member
            return None
        for node, member in mine.items():
            if find(node) == rb:
                return member, node
        return None

    def merge(self, kept: int, gone: int) -> None:
        """Root ``gone`` was joined under root ``kept``."""
        moved = self.by_root.pop(gone, None)
        if not moved:
            return
        mine = self.by_root.get(kept)
        if mine is None:
            self.by_root[kept] = moved
        elif len(mine) >= len(moved):
            mine.update(moved)
        else:
            moved.update(mine)
            self.by_root[kept] = moved


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
    cannot = _Barriers(cannot_link)
    barred = cannot.by_root

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = x = parent[parent[x]]  # path halving
        return x

    def join(ra: int, rb: int) -> None:
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        cannot.merge(ra, rb)

    refused: list[Refusal] = []
    for a, b in must_link:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        pair = cannot.conflict(ra, rb, find) if barred else None
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
            pair = cannot.conflict(ra, rb, find)
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


def _adjacency(
    n: int, links: Sequence[tuple[int, int, float]], must_link: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of each node over links and must-links, each pair once (CSR arrays:
    the neighbours of ``x`` are ``indices[indptr[x]:indptr[x + 1]]``)."""
    left = np.fromiter((a for a, _, _ in links), np.int64, len(links))
    right = np.fromiter((b for _, b, _ in links), np.int64, len(links))
    if must_link:
        left = np.concatenate([left, np.asarray([a for a, _ in must_link], np.int64)])
        right = np.concatenate([right, np.asarray([b for _, b in must_link], np.int64)])
    keep = left != right
    low, high = np.minimum(left, right)[keep], np.maximum(left, right)[keep]
    pairs = np.sort(low * n + high)
    if len(pairs):
        pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    low, high = pairs // n, pairs % n
    source = np.concatenate([low, high])
    target = np.concatenate([high, low])
    order = np.argsort(source, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(source, minlength=n), out=indptr[1:])
    return indptr, target[order]


def best_links(
    n: int,
    links: Sequence[tuple[int, int, float]],
    *,
    must_link: Sequence[tuple[int, int]] = (),
    cannot_link: Sequence[tuple[int, int]] = (),
    min_cohesion: float = DEFAULT_MIN_COHESION,
) -> Clustering:
    """Union-find that does not chain: strongest links first, and a link joins two
    customers of several records each only when enough links support it.

    Must-links and cannot-links work exactly as in :func:`constrained_union_find`
    (must-links first, a union that would join a cannot-link pair is refused and the
    cannot-link wins over a must-link). Then each link, from the most to the least
    probable, is refused when the union would

    1. put a cannot-link pair in one cluster (:data:`REFUSED_BY_CANNOT_LINK`), or
    2. join two clusters of two or more records each while fewer than
       ``min_cohesion`` of the record pairs across them are links or must-links
       (:data:`REFUSED_AS_WEAK_BRIDGE`): average linkage over the links, checked
       at each union.

    Because links come strongest first, a record joins the customer of its best link
    and its weaker links can then only bring in single records or customers that are
    well linked to it as a whole. A lone name-only link between two people with the
    same name, each well linked within, is a weak bridge: one link among many pairs.
    A single record joining a customer is never a weak bridge: a sparse record (a
    ticket with only an e-mail) has no links of its own that could speak against its
    best customer. Steward must-links are never refused as weak bridges.

    Vetoed pairs are no links here either, but they do not bar a union: on FEBRL 3,
    where duplicates of one person get their first name and date of birth corrupted
    independently, barring them split true customers (cluster F1 0.988 to 0.976) for
    a gain of 0.0006 on the demo data.

    The result depends only on the inputs (their order included): no randomness.
    Time is near-linear in the links (one sort builds the neighbour lists; the
    cohesion check walks the neighbours of the smaller cluster only): about 3 s for a
    million records and 1.5 million links.

    Args:
        n: Number of nodes, numbered ``0 .. n-1``.
        links: ``(node, node, probability)`` in priority order (most probable first).
        must_link: Node pairs to join before any link, in priority order.
        cannot_link: Node pairs that must end in different clusters.
        min_cohesion: Share of the record pairs across two multi-record clusters that
            must be links for a link to join them; 0 turns the check off.

    Returns:
        Labels (the root node of each node's cluster), refused links in the order they
        were met and must-links applied.

    Examples:
        Two people with the same name (records 0-1 and 2-3-4), and one weak link 1-2
        between them, one link among the six pairs across:

        >>> strong = [(0, 1, 0.999), (2, 3, 0.999), (2, 4, 0.999), (3, 4, 0.999)]
        >>> links = [*strong, (1, 2, 0.96)]
        >>> labels = best_links(5, links).labels
        >>> labels[0] == labels[1] != labels[2] == labels[3] == labels[4]
        True
        >>> refusal = best_links(5, links).refused[0]
        >>> (refusal.left, refusal.right, refusal.reason, round(refusal.cohesion, 3))
        (1, 2, 'weak_bridge', 0.167)
        >>> len(set(constrained_union_find(5, links).labels))  # connected components
        1
    """
    parent = list(range(n))
    size = [1] * n
    ring = list(range(n))  # each cluster's nodes as a circular list: x -> ring[x] -> ...
    cannot = _Barriers(cannot_link)
    cannot_roots = cannot.by_root
    indptr, indices = _adjacency(n, links, must_link)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = x = parent[parent[x]]  # path halving
        return x

    def join(ra: int, rb: int) -> None:
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        ring[ra], ring[rb] = ring[rb], ring[ra]  # splices the two circles into one
        if cannot_roots:
            cannot.merge(ra, rb)

    def cross_links(ra: int, rb: int) -> int:
        """Links (and must-links) between the members of two clusters."""
        if size[ra] > size[rb]:
            ra, rb = rb, ra
        count = 0
        x = ra
        while True:
            for y in indices[indptr[x] : indptr[x + 1]].tolist():
                while parent[y] != y:
                    parent[y] = y = parent[parent[y]]
                count += y == rb
            x = ring[x]
            if x == ra:
                return count

    refused: list[Refusal] = []
    for a, b in must_link:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        pair = cannot.conflict(ra, rb, find)
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
        if ra in cannot_roots and rb in cannot_roots:
            pair = cannot.conflict(ra, rb, find)
            if pair is not None:
                refused.append(Refusal(a, b, probability, REFUSED_BY_CANNOT_LINK, *pair))
                continue
        if min_cohesion > 0 and size[ra] > 1 and size[rb] > 1:
            cohesion = cross_links(ra, rb) / (size[ra] * size[rb])
            if cohesion < min_cohesion:
                refused.append(
                    Refusal(a, b, probability, REFUSED_AS_WEAK_BRIDGE, None, None, cohesion)
                )
                continue
        join(ra, rb)
    labels = [find(x) for x in range(n)]
    applied = sum(labels[a] == labels[b] for a, b in must_link)
    return Clustering(labels=labels, refused=refused, must_links_applied=applied)


CLUSTERING_METHODS: dict[str, ClusteringAlgorithm] = {
    CONNECTED_COMPONENTS: constrained_union_find,
    BEST_LINKS: best_links,
}
"""The algorithm behind each ``method`` of :func:`cluster_records`."""


def cluster_records(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str,
    must_link: Sequence[tuple[str, str]] = (),
    cannot_link: Sequence[tuple[str, str]] = (),
    refused_table: str = REFUSED_LINKS,
    method: ClusteringMethod = CONNECTED_COMPONENTS,
    algorithm: ClusteringAlgorithm | None = None,
) -> ClusterSummary:
    """Cluster records into customers: one row per record in ``out_table``.

    Links are pairs at or above ``threshold`` without a ``link_veto`` (see
    :data:`LINK_VETOES`). Steward decisions come as ``unique_id`` pairs: must-links are
    applied first, and no customer ever holds both records of a cannot-link (cannot-links
    win over must-links that contradict them). ``method`` chooses how links join
    customers: ``connected_components`` takes every link, ``best_links`` refuses links
    that would chain different people (see :func:`best_links`). Every refused link and
    must-link is written to ``refused_table`` (recreated on every run, empty when
    nothing was refused) with the reason and, for a cannot-link, the pair that
    forbade it. Decisions naming a record that is not in ``records_table`` are
    ignored and counted.

    Every record of ``records_table`` gets a ``customer_id``, singletons included.
    The id is derived from the smallest ``unique_id`` in the customer, so it is opaque
    and reproducible for the same clustering.

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id``, ``source_system``, ``source_record_id``.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``, ``match_probability``
            and optionally ``link_veto``.
        threshold: Match probability at or above which two records are one customer.
        out_table: Table to (re)create: ``source_system``, ``source_record_id``,
            ``unique_id``, ``customer_id``, ``customer_record_count``.
        must_link: Record pairs to put in one customer, highest priority first.
        cannot_link: Record pairs that must be in different customers.
        refused_table: Table to (re)create with the refused links: ``unique_id_l``,
            ``unique_id_r``, ``match_probability`` (NULL for a must-link), ``reason``
            (see :class:`Refusal`), ``cannot_link_l``, ``cannot_link_r`` (the forbidden
            pair, NULL for a weak bridge) and ``cohesion`` (weak bridges only).
        method: ``connected_components`` or ``best_links`` (see :data:`CLUSTERING_METHODS`).
        algorithm: A clustering over node numbers to use instead of ``method``; see
            :data:`ClusteringAlgorithm`.

    Returns:
        Counts of records, customers, the largest customer and singletons, links
        considered and refused (by cannot-links and as weak bridges), must-links
        applied and refused.

    Raises:
        ValueError: ``method`` is not one of :data:`CLUSTERING_METHODS`.

    Examples:
        ```py
        summary = cluster_records(
            con,
            records_table="customer_records",
            pairs_table="pairwise_matches",
            threshold=0.95,
            out_table="customer_clusters",
            cannot_link=[("crm:1", "shop:9")],
            method="best_links",
        )
        ```
    """
    if algorithm is None:
        if method not in CLUSTERING_METHODS:
            raise ValueError(
                f"clustering method {method!r} is unknown; expected one of "
                f"{sorted(CLUSTERING_METHODS)}"
            )
        algorithm = CLUSTERING_METHODS[method]
        method_name = method
    else:
        method_name = "custom"
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
    reasons: dict[str, int] = {}
    for refusal in result.refused:
        reasons[refusal.reason] = reasons.get(refusal.reason, 0) + 1
    summary = ClusterSummary(
        records=int(row[0]),
        customers=int(row[1]),
        largest_customer=int(row[2]),
        singletons=int(row[3]),
        links=len(links),
        links_refused=reasons.get(REFUSED_BY_CANNOT_LINK, 0),
        must_links_applied=result.must_links_applied,
        must_links_refused=reasons.get(MUST_LINK_CONFLICT, 0),
        constraints_ignored=ignored,
        method=method_name,
        links_refused_as_weak=reasons.get(REFUSED_AS_WEAK_BRIDGE, 0),
    )
    logger.info(
        "clustered %d records into %d customers with %s (%d links; refused: %d by "
        "cannot-links, %d as weak bridges; %d must-links applied, %d refused)",
        summary.records,
        summary.customers,
        summary.method,
        summary.links,
        summary.links_refused,
        summary.links_refused_as_weak,
        summary.must_links_applied,
        summary.must_links_refused,
    )
    return summary


@dataclass(frozen=True)
class GraphMetricsSummary:
    """What :func:`customer_graph_metrics` found.

    Attributes:
        customers: Customers described (one row each in the metrics table).
        largest_customer: Records in the largest customer.
        warn_cluster_size: Customers with more records than this are oversized.
        oversized: ``(customer_id, records)`` of each oversized customer, largest first.
        customers_with_bridges: Customers that one link holds together somewhere (a
            link whose removal would split them).
        customers_held_by_must_links: Customers whose links alone do not connect them.
    """

    customers: int
    largest_customer: int
    warn_cluster_size: int
    oversized: tuple[tuple[str, int], ...]
    customers_with_bridges: int
    customers_held_by_must_links: int


def customer_graph_metrics(
    con: duckdb.DuckDBPyConnection,
    *,
    clusters_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str = CUSTOMER_GRAPH_METRICS,
    warn_cluster_size: int = 50,
) -> GraphMetricsSummary:
    """Describe each customer's link graph in ``out_table`` and warn about big customers.

    A customer's links are its pairs at or above ``threshold`` without a ``link_veto``.
    One row per customer of ``clusters_table``:

    - ``records``, ``links`` and ``density`` (links over record pairs; NULL for one
      record): a big customer of low density is a chain, not a person;
    - ``min_link_probability`` and ``mean_link_probability`` (NULL without links);
    - ``bridges``: links whose removal would split the customer, each a single point
      where two groups of records hang together;
    - ``link_components``: pieces the links alone make (1, or more where steward
      must-links join what the model does not link);
    - ``vetoed_pairs``: vetoed pairs inside the customer (put there by must-links, or
      by connected components through other records);
    - ``oversized``: more than ``warn_cluster_size`` records; each is also logged as a
      warning.

    Splink's ``linker.clustering.compute_graph_metrics`` computes similar node, edge and
    cluster tables, but it needs a ``Linker`` over the records, the optional ``igraph``
    package for bridges, and it counts every pair above the threshold as an edge,
    vetoed ones included; this works on the warehouse tables alone, with the same links
    the clustering used, and takes seconds for a million records.

    Args:
        con: Warehouse connection.
        clusters_table: One row per record with ``unique_id`` and ``customer_id``.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``,
            ``match_probability`` and optionally ``link_veto``.
        threshold: Match probability at or above which a pair is a link.
        out_table: Table to (re)create.
        warn_cluster_size: Customers with more records than this are oversized.

    Returns:
        Counts, and the oversized customers largest first.

    Examples:
        ```py
        metrics = customer_graph_metrics(
            con,
            clusters_table="customer_clusters",
            pairs_table="pairwise_matches",
            threshold=0.95,
            warn_cluster_size=50,
        )
        for customer_id, records in metrics.oversized:
            ...
        ```
    """
    has_veto = "link_veto" in table_columns(con, pairs_table)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_NODES} AS "
        "SELECT unique_id, customer_id, "
        "(row_number() OVER (ORDER BY unique_id) - 1)::BIGINT AS node "
        f"FROM {quote(clusters_table)}"
    )
    pairs_in_customer = (
        f"FROM {quote(pairs_table)} AS p "
        f"JOIN {_NODES} AS l ON l.unique_id = p.unique_id_l "
        f"JOIN {_NODES} AS r ON r.unique_id = p.unique_id_r "
        "WHERE l.customer_id = r.customer_id AND l.node <> r.node "
    )
    try:
        n = int(con.execute(f"SELECT count(*) FROM {_NODES}").fetchall()[0][0])
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_MEMBERS} AS "
            "SELECT l.customer_id, least(l.node, r.node) AS node_l, "
            "greatest(l.node, r.node) AS node_r, max(p.match_probability) AS probability "
            + pairs_in_customer
            + "AND p.match_probability >= $threshold "
            + ("AND p.link_veto IS NULL " if has_veto else "")
            + "GROUP BY ALL",
            {"threshold": threshold},
        )
        edges = con.execute(f"SELECT node_l, node_r FROM {_MEMBERS} ORDER BY 1, 2").fetchall()
        bridges, components = bridges_and_components(n, edges)
        con.register(
            _BRIDGES,
            pa.table(
                {
                    "node": pa.array(np.arange(n, dtype=np.int64)),
                    "component": pa.array(np.asarray(components, dtype=np.int64)),
                    "bridge_ends": pa.array(
                        np.bincount(
                            np.asarray([a for a, _ in bridges], dtype=np.int64), minlength=n
                        )
                    ),
                }
            ),
        )
        vetoed = (
            "(SELECT l.customer_id, count(DISTINCT (least(l.node, r.node), "
            "greatest(l.node, r.node))) AS vetoed_pairs "
            + pairs_in_customer
            + "AND p.link_veto IS NOT NULL GROUP BY 1)"
            if has_veto
            else "(SELECT NULL::VARCHAR AS customer_id, 0 AS vetoed_pairs WHERE false)"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(out_table)} AS "
            "WITH nodes AS ("
            "  SELECT n.customer_id, count(*) AS records, "
            "  count(DISTINCT b.component) AS link_components, sum(b.bridge_ends) AS bridges "
            f"  FROM {_NODES} AS n JOIN {_BRIDGES} AS b USING (node) GROUP BY 1"
            "), links AS ("
            "  SELECT customer_id, count(*) AS links, min(probability) AS min_p, "
            f"  avg(probability) AS mean_p FROM {_MEMBERS} GROUP BY 1"
            ") "
            "SELECT n.customer_id, n.records::BIGINT AS records, "
            "coalesce(k.links, 0)::BIGINT AS links, "
            "CASE WHEN n.records > 1 THEN coalesce(k.links, 0) / (n.records * (n.records - 1) / 2) "
            "END AS density, k.min_p AS min_link_probability, k.mean_p AS mean_link_probability, "
            "n.bridges::BIGINT AS bridges, n.link_components::BIGINT AS link_components, "
            "coalesce(v.vetoed_pairs, 0)::BIGINT AS vetoed_pairs, "
            "n.records > $warn AS oversized "
            "FROM nodes AS n LEFT JOIN links AS k USING (customer_id) "
            f"LEFT JOIN {vetoed} AS v USING (customer_id) "
            "ORDER BY n.records DESC, n.customer_id",
            {"warn": warn_cluster_size},
        )
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(_BRIDGES)
        con.execute(f"DROP TABLE IF EXISTS {_MEMBERS}")
        con.execute(f"DROP TABLE IF EXISTS {_NODES}")
    row = con.execute(
        "SELECT count(*), coalesce(max(records), 0), count(*) FILTER (WHERE bridges > 0), "
        f"count(*) FILTER (WHERE link_components > 1) FROM {quote(out_table)}"
    ).fetchall()[0]
    oversized = tuple(
        (str(customer_id), int(records))
        for customer_id, records in con.execute(
            f"SELECT customer_id, records FROM {quote(out_table)} WHERE oversized "
            "ORDER BY records DESC, customer_id"
        ).fetchall()
    )
    summary = GraphMetricsSummary(
        customers=int(row[0]),
        largest_customer=int(row[1]),
        warn_cluster_size=warn_cluster_size,
        oversized=oversized,
        customers_with_bridges=int(row[2]),
        customers_held_by_must_links=int(row[3]),
    )
    if oversized:
        logger.warning(
            "%d customer(s) have more than %d records (clustering.warn_cluster_size), "
            "largest first: %s; see %s",
            len(oversized),
            warn_cluster_size,
            ", ".join(f"{customer_id} ({records})" for customer_id, records in oversized[:10]),
            out_table,
        )
    return summary


def bridges_and_components(
    n: int, edges: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, int]], list[int]]:
    """Bridges of an undirected simple graph (Tarjan's low-link, without recursion) and
    a component label per node.

    Examples:
        >>> bridges_and_components(5, [(0, 1), (1, 2), (0, 2), (2, 3)])
        ([(2, 3)], [0, 0, 0, 0, 4])
    """
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    order = [-1] * n  # discovery time
    low = [0] * n
    component = list(range(n))
    bridges: list[tuple[int, int]] = []
    clock = 0
    for start in range(n):
        if order[start] != -1 or not neighbours[start]:
            continue
        order[start] = low[start] = clock
        clock += 1
        stack = [(start, -1, iter(neighbours[start]))]
        while stack:
            node, parent, todo = stack[-1]
            for other in todo:
                if other == parent:
                    continue
                if order[other] == -1:
                    order[other] = low[other] = clock
                    clock += 1
                    component[other] = start
                    stack.append((other, node, iter(neighbours[other])))
                    break
                if order[other] < low[node]:
                    low[node] = order[other]
            else:
                stack.pop()
                if parent != -1:
                    if low[node] < low[parent]:
                        low[parent] = low[node]
                    if low[node] > order[parent]:
                        bridges.append((min(parent, node), max(parent, node)))
    return sorted(bridges), component


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
                "cohesion": pa.array([r.cohesion for r in refused], type=pa.float64()),
            }
        ),
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(refused_table)} AS "
            "SELECT l.unique_id AS unique_id_l, r.unique_id AS unique_id_r, "
            "f.match_probability, f.reason, "
            "cl.unique_id AS cannot_link_l, cr.unique_id AS cannot_link_r, f.cohesion "
            f"FROM {_REFUSED} AS f "
            f"JOIN {_NODES} AS l ON l.node = f.left_node "
            f"JOIN {_NODES} AS r ON r.node = f.right_node "
            f"LEFT JOIN {_NODES} AS cl ON cl.node = f.conflict_left "
            f"LEFT JOIN {_NODES} AS cr ON cr.node = f.conflict_right "
            "ORDER BY f.position"
        )
    finally:
        con.unregister(_REFUSED)
