"""Matching this run's groups to the previous ids, set-based in DuckDB.

The steps of :func:`linkage.cluster.stable_ids.assign_stable_ids`, each filling a
temporary table: previous ids (``old``), groups and their members, the overlap of each
group with each previous id (``pairs``), the ids kept (``kept``, greedy over contested
pairs), fresh ids (``fresh``), ids merged or retired (``gone``) and every member's id
(``out``); then the state tables are updated. The rules are in
:mod:`linkage.cluster.stable_ids.assign`.

Examples:
    ```py
    ensure_id_tables(con, CUSTOMER_ID_TABLES, "VARCHAR")
    counts = match_ids(con, "clusters", "unique_id", "cluster_id", "assigned",
                       CUSTOMER_ID_TABLES, "run-1", now)
    drop_temp_tables(con)
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from linkage.cluster.stable_ids.tables import IdTables
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

ID_HEX_DIGITS = 16
"""Hex digits of SHA-256 after the prefix: 64 bits, opaque and collision-checked."""

_TEMP = "__meld_ids_"


@dataclass(frozen=True)
class IdAssignment:
    """What one assignment run did.

    Attributes:
        new: Fresh ids for groups whose members had no id (``new`` events).
        kept: Groups that kept a previous id.
        merged: Previous ids retired into a survivor (``merged`` events).
        split: Fresh ids for parts split off a kept id (``split`` events).
        retired: Previous ids whose members are all gone (``retired`` events).
        moved_members: Members whose id changed (rows added to the moves table).
    """

    new: int
    kept: int
    merged: int
    split: int
    retired: int
    moved_members: int

    @property
    def events(self) -> int:
        """Rows added to the history table."""
        return self.new + self.merged + self.split + self.retired


def match_ids(
    con: duckdb.DuckDBPyConnection,
    groups_table: str,
    member_column: str,
    group_column: str,
    out_table: str,
    tables: IdTables,
    run_id: str,
    now: datetime,
) -> IdAssignment:
    """Assign the ids (the steps in the module docstring) inside the open transaction."""
    _load_previous_ids(con, tables)
    _load_groups(con, groups_table, member_column, group_column, tables)
    _overlap_pairs(con)
    _resolve_contested(con)
    _issue_fresh_ids(con, tables)
    _unkept_ids(con)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TEMP}out AS "
        "SELECT n.member, n.old_id, a.id FROM ("
        f"  SELECT g, id FROM {_TEMP}kept UNION ALL SELECT g, id FROM {_TEMP}fresh"
        f") AS a JOIN {_TEMP}members AS n USING (g)"
    )
    moved = _write_state(con, tables, out_table, member_column, run_id, now)
    return _counts(con, moved)


def _load_previous_ids(con: duckdb.DuckDBPyConnection, tables: IdTables) -> None:
    """Fill ``old``: previous ids with their size and age; checks that the state was not
    edited by hand."""
    registry, membership = quote(tables.registry), quote(tables.membership)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TEMP}old AS "
        "SELECT d.old_id, d.old_size, r.created_seq, r.status FROM ("
        f"  SELECT id AS old_id, count(*) AS old_size FROM {membership} GROUP BY id"
        f") AS d LEFT JOIN {registry} AS r ON r.id = d.old_id"
    )
    _check_state(con, tables)


def _load_groups(
    con: duckdb.DuckDBPyConnection,
    groups_table: str,
    member_column: str,
    group_column: str,
    tables: IdTables,
) -> None:
    """Fill ``groups`` (numbered by their smallest member: the provisional keys play no
    further role) and ``members`` (each member's group and previous id)."""
    membership = quote(tables.membership)
    member, group = quote(member_column), quote(group_column)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TEMP}groups AS "
        "SELECT key, anchor, size, row_number() OVER (ORDER BY anchor) AS g FROM ("
        f"  SELECT {group} AS key, min({member}) AS anchor, count(*) AS size "
        f"  FROM {quote(groups_table)} GROUP BY {group})"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TEMP}members AS "
        f"SELECT s.{member} AS member, grp.g, p.id AS old_id FROM {quote(groups_table)} AS s "
        f"JOIN {_TEMP}groups AS grp ON grp.key = s.{group} "
        f"LEFT JOIN {membership} AS p ON p.member = s.{member}"
    )


def _overlap_pairs(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``pairs``: each (group, previous id) sharing members, with the overlap, the
    id's size and age, and how contested each side is."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TEMP}pairs AS "
        "WITH overlap AS ("
        f"  SELECT g, old_id, count(*) AS overlap FROM {_TEMP}members "
        "  WHERE old_id IS NOT NULL GROUP BY g, old_id"
        "), ids_per_group AS ("
        "  SELECT g, count(*) AS ids_touched FROM overlap GROUP BY g"
        "), groups_per_id AS ("
        "  SELECT old_id, count(*) AS groups_touched FROM overlap GROUP BY old_id"
        ") "
        "SELECT o.g, o.old_id, o.overlap, d.old_size, d.created_seq, "
        "i.ids_touched, n.groups_touched "
        "FROM overlap AS o JOIN ids_per_group AS i USING (g) "
        "JOIN groups_per_id AS n USING (old_id) "
        f"JOIN {_TEMP}old AS d USING (old_id)"
    )


def _unkept_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``gone``: previous ids no group kept, merged into the group holding most of
    their members, or retired when none of their members is left."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TEMP}gone AS "
        "WITH unkept AS ("
        f"  SELECT d.old_id, d.old_size FROM {_TEMP}old AS d ANTI JOIN {_TEMP}kept AS k "
        "  ON k.id = d.old_id"
        "), survivors AS ("
        "  SELECT p.old_id, "
        "  arg_min(k.id, (-p.overlap, s.created_seq, k.id)) AS survivor, "
        "  arg_min(p.overlap, (-p.overlap, s.created_seq, k.id)) AS members "
        f"  FROM {_TEMP}pairs AS p SEMI JOIN unkept AS u ON u.old_id = p.old_id "
        f"  JOIN {_TEMP}kept AS k ON k.g = p.g JOIN {_TEMP}old AS s ON s.old_id = k.id "
        "  GROUP BY p.old_id"
        ") "
        "SELECT u.old_id, s.survivor, coalesce(s.members, u.old_size) AS members, "
        "CASE WHEN s.survivor IS NULL THEN 'retired' ELSE 'merged' END AS event "
        "FROM unkept AS u LEFT JOIN survivors AS s USING (old_id)"
    )


def _write_state(
    con: duckdb.DuckDBPyConnection,
    tables: IdTables,
    out_table: str,
    member_column: str,
    run_id: str,
    now: datetime,
) -> int:
    """Append moves and history, update the registry, replace the membership and write
    ``out_table``; returns the members moved."""
    registry, membership = quote(tables.registry), quote(tables.membership)
    moved = con.execute(
        f"INSERT INTO {quote(tables.moves)} "
        f"SELECT $run_id, $now, member, old_id, id FROM {_TEMP}out "
        "WHERE old_id <> id ORDER BY member",
        {"run_id": run_id, "now": now},
    ).fetchall()[0][0]
    con.execute(
        f"INSERT INTO {quote(tables.history)} "
        "SELECT $run_id, $now, id, event, related_id, members FROM ("
        "  SELECT id, CASE WHEN split_from IS NULL THEN 'new' ELSE 'split' END AS event, "
        f"  split_from AS related_id, size AS members, seq AS rank FROM {_TEMP}fresh "
        "  UNION ALL "
        f"  SELECT old_id, event, survivor, members, NULL FROM {_TEMP}gone"
        ") ORDER BY rank, id",
        {"run_id": run_id, "now": now},
    )
    con.execute(
        f"INSERT INTO {registry} "
        "SELECT id, $run_id, $now, seq, 'active', NULL, NULL, split_from, anchor::VARCHAR "
        f"FROM {_TEMP}fresh ORDER BY seq",
        {"run_id": run_id, "now": now},
    )
    con.execute(
        f"UPDATE {registry} SET status = 'retired', retired_run_id = $run_id, "
        f"merged_into = gone.survivor FROM {_TEMP}gone AS gone WHERE {registry}.id = gone.old_id",
        {"run_id": run_id},
    )
    con.execute(f"CREATE OR REPLACE TABLE {membership} AS SELECT member, id FROM {_TEMP}out")
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(out_table)} AS "
        f"SELECT member AS {quote(member_column)}, id AS {quote(tables.id_column)} FROM {_TEMP}out"
    )
    return moved


def _counts(con: duckdb.DuckDBPyConnection, moved: int) -> IdAssignment:
    """The counts of the run from the temporary tables."""
    fresh = dict(
        con.execute(
            f"SELECT split_from IS NULL, count(*) FROM {_TEMP}fresh GROUP BY ALL"
        ).fetchall()
    )
    gone = dict(con.execute(f"SELECT event, count(*) FROM {_TEMP}gone GROUP BY ALL").fetchall())
    kept = con.execute(f"SELECT count(*) FROM {_TEMP}kept").fetchall()[0][0]
    return IdAssignment(
        new=int(fresh.get(True, 0)),
        kept=int(kept),
        merged=int(gone.get("merged", 0)),
        split=int(fresh.get(False, 0)),
        retired=int(gone.get("retired", 0)),
        moved_members=int(moved),
    )


def _check_state(con: duckdb.DuckDBPyConnection, tables: IdTables) -> None:
    rows = con.execute(
        f"SELECT old_id, status FROM {_TEMP}old WHERE status IS DISTINCT FROM 'active' "
        "ORDER BY old_id LIMIT 5"
    ).fetchall()
    if rows:
        found = ", ".join(f"{i} ({status or 'not in registry'})" for i, status in rows)
        raise RuntimeError(
            f"'{tables.membership}' names ids that '{tables.registry}' does not list as "
            f"active: {found}"
        )


def _resolve_contested(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``kept`` (group -> previous id it keeps) by the greedy rule.

    A pair whose group touches one previous id that touches no other group is taken
    whatever the order, so only the other pairs go through the loop.
    """
    contested = con.execute(
        f"SELECT g, old_id FROM {_TEMP}pairs WHERE ids_touched > 1 OR groups_touched > 1 "
        "ORDER BY overlap DESC, old_size DESC, created_seq, old_id, g"
    ).fetchall()
    taken_groups: set[int] = set()
    taken_ids: set[str] = set()
    kept_groups: list[int] = []
    kept_ids: list[str] = []
    for g, old_id in contested:
        if g in taken_groups or old_id in taken_ids:
            continue
        taken_groups.add(g)
        taken_ids.add(old_id)
        kept_groups.append(g)
        kept_ids.append(old_id)
    greedy = pa.table(
        {"g": pa.array(kept_groups, pa.int64()), "id": pa.array(kept_ids, pa.string())}
    )
    con.register(f"{_TEMP}greedy_frame", greedy)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_TEMP}kept AS "
            f"SELECT g, old_id AS id FROM {_TEMP}pairs "
            "WHERE ids_touched = 1 AND groups_touched = 1 "
            f"UNION ALL SELECT g, id FROM {_TEMP}greedy_frame"
        )
    finally:
        con.unregister(f"{_TEMP}greedy_frame")


def _issue_fresh_ids(con: duckdb.DuckDBPyConnection, tables: IdTables) -> None:
    """Fill ``fresh``: a new id for every group that kept none, never one issued before."""
    registry = quote(tables.registry)
    fresh = f"{_TEMP}fresh"
    digest = "$prefix || left(sha256(anchor::VARCHAR || '#' || salt::VARCHAR), $digits)"
    naming = {"prefix": tables.prefix, "digits": ID_HEX_DIGITS}
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {fresh} AS "
        "WITH unkept AS ("
        f"  SELECT grp.g, grp.anchor, grp.size FROM {_TEMP}groups AS grp "
        f"  ANTI JOIN {_TEMP}kept AS k ON k.g = grp.g"
        "), sources AS ("
        "  SELECT g, arg_min(old_id, (-overlap, -old_size, created_seq, old_id)) AS split_from "
        f"  FROM {_TEMP}pairs AS p SEMI JOIN unkept AS u ON u.g = p.g GROUP BY g"
        "), base AS ("
        f"  SELECT coalesce(max(created_seq), 0) AS last FROM {registry}"
        ") "
        "SELECT u.g, u.anchor, u.size, s.split_from, 0 AS salt, "
        f"{digest.replace('salt', '0')} AS id, "
        "base.last + row_number() OVER (ORDER BY u.g) AS seq "
        "FROM unkept AS u LEFT JOIN sources AS s USING (g) CROSS JOIN base",
        naming,
    )
    # An id ever issued (even retired) or given to another group in this run is salted
    # again, so ids are never reused; with 64 bits this almost never happens.
    while True:
        clashes = con.execute(
            f"SELECT g FROM {fresh} SEMI JOIN {registry} AS r ON r.id = {fresh}.id "
            "UNION "
            f"SELECT g FROM {fresh} QUALIFY row_number() OVER (PARTITION BY id ORDER BY g) > 1"
        ).fetchall()
        if not clashes:
            break
        logger.debug("%d fresh %s ids clashed, salting again", len(clashes), tables.prefix)
        con.execute(
            f"UPDATE {fresh} SET salt = salt + 1 WHERE list_contains($groups, g)",
            {"groups": [g for (g,) in clashes]},
        )
        con.execute(
            f"UPDATE {fresh} SET id = {digest} WHERE list_contains($groups, g)",
            {**naming, "groups": [g for (g,) in clashes]},
        )


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables :func:`match_ids` leaves behind (also after a failure)."""
    for name in ("old", "groups", "members", "pairs", "kept", "fresh", "gone", "out"):
        con.execute(f"DROP TABLE IF EXISTS temp.main.{quote(_TEMP + name)}")
