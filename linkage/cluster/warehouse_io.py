"""The clustering's side of the warehouse: records as node numbers, links read from
the scored pairs, customers and refused links written back.

The algorithms (:mod:`linkage.cluster.algorithms`) work on node numbers ``0 .. n-1``;
:func:`numbered_records` numbers the records in ``unique_id`` order in a temporary
nodes table that the other functions here read while it exists.

Examples:
    ```py
    with numbered_records(con, "customer_records") as n:
        links = read_links(con, "pairwise_matches", 0.95, skip_vetoed=True)
        result = best_links(n, links)
        write_clusters(con, result.labels, "customer_clusters")
        write_refused(con, result.refused, "refused_links")
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa

from linkage.cluster.algorithms import Refusal
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

CUSTOMER_ID_PREFIX = "cus_"

_NODES = "__meld_cluster_nodes"
_LABELS = "__meld_cluster_labels"
_REFUSED = "__meld_cluster_refused"
_IDS = "__meld_cluster_constraint_ids"


@contextmanager
def numbered_records(con: duckdb.DuckDBPyConnection, records_table: str) -> Iterator[int]:
    """Number the records of ``records_table`` in ``unique_id`` order, for the block.

    Yields:
        The number of records ``n``; the nodes are ``0 .. n-1``. The nodes table is
        dropped when the block ends.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_NODES} AS "
        "SELECT unique_id, source_system, source_record_id, "
        "(row_number() OVER (ORDER BY unique_id) - 1)::BIGINT AS node "
        f"FROM {quote(records_table)}"
    )
    try:
        yield int(con.execute(f"SELECT count(*) FROM {_NODES}").fetchall()[0][0])
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_NODES}")


def read_links(
    con: duckdb.DuckDBPyConnection, pairs_table: str, threshold: float, *, skip_vetoed: bool
) -> list[tuple[int, int, float]]:
    """The links between numbered records: ``(node, node, probability)``, most probable
    first, ties by node numbers.

    Args:
        con: Warehouse connection, inside :func:`numbered_records`.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``,
            ``match_probability`` and optionally ``link_veto``.
        threshold: Match probability at or above which a pair is a link.
        skip_vetoed: Leave out pairs with a ``link_veto`` (the table must have the column).
    """
    veto = "AND p.link_veto IS NULL" if skip_vetoed else ""
    return con.execute(
        "SELECT least(l.node, r.node), greatest(l.node, r.node), p.match_probability "
        f"FROM {quote(pairs_table)} AS p "
        f"JOIN {_NODES} AS l ON l.unique_id = p.unique_id_l "
        f"JOIN {_NODES} AS r ON r.unique_id = p.unique_id_r "
        f"WHERE p.match_probability >= $threshold AND l.node <> r.node {veto} "
        "ORDER BY p.match_probability DESC, 1, 2",
        {"threshold": threshold},
    ).fetchall()


def constraint_nodes(
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


def write_clusters(con: duckdb.DuckDBPyConnection, labels: list[int], out_table: str) -> None:
    """(Re)create ``out_table``: one row per numbered record with its ``customer_id``.

    The id is ``cus_`` and a hash of the smallest ``unique_id`` of the customer, so it
    is opaque and reproducible for the same clustering.

    Args:
        con: Warehouse connection, inside :func:`numbered_records`.
        labels: A cluster label per node (only equality matters).
        out_table: Table to (re)create: ``source_system``, ``source_record_id``,
            ``unique_id``, ``customer_id``, ``customer_record_count``.
    """
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


def write_refused(
    con: duckdb.DuckDBPyConnection, refused: list[Refusal], refused_table: str
) -> None:
    """(Re)create ``refused_table`` with the refused links by ``unique_id``, in order.

    Args:
        con: Warehouse connection, inside :func:`numbered_records`.
        refused: The refusals of a clustering, by node numbers.
        refused_table: Table to (re)create (see
            :func:`linkage.cluster.clustering.cluster_records`).
    """
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
