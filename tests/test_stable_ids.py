"""Stable ids: kept, new, merged, split and retired over runs, on hand-made groups."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from linkage.cluster.stable_ids.assign import assign_stable_ids
from linkage.cluster.stable_ids.matching import IdAssignment
from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES, HOUSEHOLD_ID_TABLES, IdTables

Ids = dict[str, str]


@dataclass(frozen=True)
class Case:
    """Groups per run (members separated by spaces) and what the last run must write.

    In expectations, ``old:x`` is the id member ``x`` had after the run before the last,
    ``new:x`` the id it has after the last run.
    """

    runs: list[list[str]]
    counts: IdAssignment
    events: set[tuple[str, str, str | None, int]] = field(default_factory=set)
    moves: set[tuple[str, str, str]] = field(default_factory=set)
    same: list[tuple[str, str]] = field(default_factory=list)


CASES: dict[str, Case] = {
    "first_run_all_new": Case(
        runs=[["a b", "c"]],
        counts=IdAssignment(new=2, kept=0, merged=0, split=0, retired=0, moved_members=0),
        events={("new", "new:a", None, 2), ("new", "new:c", None, 1)},
    ),
    "added_records_join_their_customer": Case(
        runs=[["a b", "c"], ["a b d", "c e"]],
        counts=IdAssignment(new=0, kept=2, merged=0, split=0, retired=0, moved_members=0),
        same=[("new:a", "old:a"), ("new:c", "old:c"), ("new:d", "old:a")],
    ),
    "new_singleton_gets_new_id": Case(
        runs=[["a b"], ["a b", "z"]],
        counts=IdAssignment(new=1, kept=1, merged=0, split=0, retired=0, moved_members=0),
        events={("new", "new:z", None, 1)},
        same=[("new:a", "old:a")],
    ),
    "merge_keeps_id_with_most_records": Case(
        runs=[["a b", "c d e"], ["a b c d e"]],
        counts=IdAssignment(new=0, kept=1, merged=1, split=0, retired=0, moved_members=2),
        events={("merged", "old:a", "old:c", 2)},
        moves={("a", "old:a", "old:c"), ("b", "old:a", "old:c")},
        same=[("new:a", "old:c")],
    ),
    "merge_tie_keeps_older_id": Case(
        runs=[["x y"], ["x y", "a b"], ["a b x y"]],
        counts=IdAssignment(new=0, kept=1, merged=1, split=0, retired=0, moved_members=2),
        events={("merged", "old:a", "old:x", 2)},
        moves={("a", "old:a", "old:x"), ("b", "old:a", "old:x")},
        same=[("new:a", "old:x")],
    ),
    "merge_tie_keeps_older_id_reversed": Case(
        runs=[["a b"], ["a b", "x y"], ["a b x y"]],
        counts=IdAssignment(new=0, kept=1, merged=1, split=0, retired=0, moved_members=2),
        events={("merged", "old:x", "old:a", 2)},
        moves={("x", "old:x", "old:a"), ("y", "old:x", "old:a")},
        same=[("new:x", "old:a")],
    ),
    "merge_of_three_retires_two": Case(
        runs=[["a", "b c", "d e f"], ["a b c d e f"]],
        counts=IdAssignment(new=0, kept=1, merged=2, split=0, retired=0, moved_members=3),
        events={("merged", "old:a", "old:d", 1), ("merged", "old:b", "old:d", 2)},
        moves={("a", "old:a", "old:d"), ("b", "old:b", "old:d"), ("c", "old:b", "old:d")},
    ),
    "split_largest_part_keeps_id": Case(
        runs=[["a b c d e"], ["a b", "c d e"]],
        counts=IdAssignment(new=0, kept=1, merged=0, split=1, retired=0, moved_members=2),
        events={("split", "new:a", "old:a", 2)},
        moves={("a", "old:a", "new:a"), ("b", "old:a", "new:a")},
        same=[("new:c", "old:c")],
    ),
    "split_into_three": Case(
        runs=[["a b c d e f"], ["a", "b c", "d e f"]],
        counts=IdAssignment(new=0, kept=1, merged=0, split=2, retired=0, moved_members=3),
        events={("split", "new:a", "old:d", 1), ("split", "new:b", "old:d", 2)},
        moves={("a", "old:a", "new:a"), ("b", "old:a", "new:b"), ("c", "old:a", "new:b")},
        same=[("new:d", "old:d")],
    ),
    "split_part_with_brand_new_members": Case(
        runs=[["a b c d"], ["a b c", "d z"]],
        counts=IdAssignment(new=0, kept=1, merged=0, split=1, retired=0, moved_members=1),
        events={("split", "new:d", "old:a", 2)},
        moves={("d", "old:a", "new:d")},
    ),
    "merge_and_split_in_one_run": Case(
        runs=[["a b c", "d e"], ["a b d e", "c"]],
        counts=IdAssignment(new=0, kept=1, merged=1, split=1, retired=0, moved_members=3),
        events={("merged", "old:d", "old:a", 2), ("split", "new:c", "old:a", 1)},
        moves={("d", "old:d", "old:a"), ("e", "old:d", "old:a"), ("c", "old:a", "new:c")},
        same=[("new:a", "old:a")],
    ),
    "part_joining_another_customer_is_a_move": Case(
        runs=[["a b c d", "e f g"], ["a b e f g", "c d"]],
        counts=IdAssignment(new=0, kept=2, merged=0, split=0, retired=0, moved_members=2),
        moves={("a", "old:a", "old:e"), ("b", "old:a", "old:e")},
        same=[("new:c", "old:c"), ("new:e", "old:e")],
    ),
    "customers_swapping_parts_keep_ids": Case(
        runs=[["a b c", "d e f"], ["a b f", "c d e"]],
        counts=IdAssignment(new=0, kept=2, merged=0, split=0, retired=0, moved_members=2),
        moves={("c", "old:a", "old:d"), ("f", "old:d", "old:a")},
        same=[("new:a", "old:a"), ("new:d", "old:d")],
    ),
    "customer_whose_records_all_disappear_is_retired": Case(
        runs=[["a b", "c d"], ["a b"]],
        counts=IdAssignment(new=0, kept=1, merged=0, split=0, retired=1, moved_members=0),
        events={("retired", "old:c", None, 2)},
    ),
    "customer_losing_some_records_keeps_id": Case(
        runs=[["a b c"], ["b c"]],
        counts=IdAssignment(new=0, kept=1, merged=0, split=0, retired=0, moved_members=0),
        same=[("new:b", "old:a")],
    ),
    "replaced_records_keep_id_of_survivors": Case(
        runs=[["a b c"], ["c x y"]],
        counts=IdAssignment(new=0, kept=1, merged=0, split=0, retired=0, moved_members=0),
        same=[("new:x", "old:c")],
    ),
    "everything_disappears": Case(
        runs=[["a b", "c"], []],
        counts=IdAssignment(new=0, kept=0, merged=0, split=0, retired=2, moved_members=0),
        events={("retired", "old:a", None, 2), ("retired", "old:c", None, 1)},
    ),
}


def _write_groups(con: duckdb.DuckDBPyConnection, groups: list[str], keys: list[str]) -> None:
    con.execute("CREATE OR REPLACE TABLE groups (unique_id VARCHAR, cluster_id VARCHAR)")
    rows = [(m, key) for key, group in zip(keys, groups, strict=True) for m in group.split()]
    if rows:
        con.executemany("INSERT INTO groups VALUES (?, ?)", rows)


def _assign(
    con: duckdb.DuckDBPyConnection,
    groups: list[str],
    run_id: str,
    *,
    keys: list[str] | None = None,
) -> tuple[IdAssignment, Ids]:
    _write_groups(con, groups, keys or [f"k{i}" for i in range(len(groups))])
    result = assign_stable_ids(
        con,
        groups_table="groups",
        member_column="unique_id",
        group_column="cluster_id",
        out_table="assigned",
        tables=CUSTOMER_ID_TABLES,
        run_id=run_id,
    )
    return result, dict(con.execute("SELECT unique_id, customer_id FROM assigned").fetchall())


def _run_case(con: duckdb.DuckDBPyConnection, case: Case) -> list[tuple[IdAssignment, Ids]]:
    return [_assign(con, groups, f"run-{i}") for i, groups in enumerate(case.runs)]


def _resolver(runs: list[tuple[IdAssignment, Ids]]):
    old = runs[-2][1] if len(runs) > 1 else {}
    new = runs[-1][1]

    def resolve(ref: str | None) -> str | None:
        if ref is None:
            return None
        when, member = ref.split(":")
        return (old if when == "old" else new)[member]

    return resolve


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield connection
    connection.close()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_last_run_writes_expected_counts_events_and_moves(con, case: Case) -> None:
    runs = _run_case(con, case)
    resolve = _resolver(runs)
    last_run = f"run-{len(case.runs) - 1}"

    assert runs[-1][0] == case.counts
    events = con.execute(
        "SELECT event, id, related_id, members FROM customer_id_history WHERE run_id = ?",
        [last_run],
    ).fetchall()
    assert set(events) == {
        (event, resolve(ref), resolve(related), members)
        for event, ref, related, members in case.events
    }
    assert len(events) == runs[-1][0].events
    moves = con.execute(
        "SELECT member, from_id, to_id FROM customer_record_moves WHERE run_id = ?", [last_run]
    ).fetchall()
    assert set(moves) == {(m, resolve(a), resolve(b)) for m, a, b in case.moves}
    assert len(moves) == runs[-1][0].moved_members
    for left, right in case.same:
        assert resolve(left) == resolve(right), (left, right)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_state_tables_agree_with_output_after_every_run(con, case: Case) -> None:
    previous: Ids = {}
    for i, groups in enumerate(case.runs):
        _, ids = _assign(con, groups, f"run-{i}")
        membership = dict(con.execute("SELECT member, id FROM customer_membership").fetchall())
        assert membership == ids
        active = {
            row[0]
            for row in con.execute("SELECT id FROM customer_ids WHERE status = 'active'").fetchall()
        }
        assert active == set(ids.values())
        # Members that belong together now share one id and no two groups share one.
        assert len(set(ids.values())) == len(groups)
        for group in groups:
            assert len({ids[m] for m in group.split()}) == 1
        moves = con.execute(
            "SELECT member, from_id, to_id FROM customer_record_moves WHERE run_id = ?",
            [f"run-{i}"],
        ).fetchall()
        assert sorted(moves) == sorted(
            (m, previous[m], ids[m]) for m in ids if m in previous and previous[m] != ids[m]
        )
        previous = ids

    registry = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT id, status, merged_into, split_from, retired_run_id FROM customer_ids"
        ).fetchall()
    }
    for run_id, id_, event, related in con.execute(
        "SELECT run_id, id, event, related_id FROM customer_id_history"
    ).fetchall():
        status, merged_into, split_from, retired_run = registry[id_]
        if event == "merged":
            assert (status, merged_into, retired_run) == ("retired", related, run_id)
        elif event == "retired":
            assert (status, merged_into, retired_run) == ("retired", None, run_id)
        elif event == "split":
            assert split_from == related
        else:
            assert (event, split_from, related) == ("new", None, None)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_running_again_with_same_groups_changes_nothing(con, case: Case) -> None:
    runs = _run_case(con, case)
    result, ids = _assign(con, case.runs[-1], "again")

    assert result == IdAssignment(
        new=0, kept=len(case.runs[-1]), merged=0, split=0, retired=0, moved_members=0
    )
    assert ids == runs[-1][1]
    for table in ("customer_id_history", "customer_record_moves"):
        rows = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = 'again'").fetchall()
        assert rows == [(0,)]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_same_groups_in_fresh_warehouse_get_same_ids_whatever_the_group_keys(
    tmp_path: Path, case: Case
) -> None:
    results = []
    for name, reorder in (("one", False), ("two", True)):
        with duckdb.connect(str(tmp_path / f"{name}.duckdb")) as con:
            runs = []
            for i, groups in enumerate(case.runs):
                ordered = list(reversed(groups)) if reorder else groups
                keys = [f"other-{len(ordered) - j}" for j in range(len(ordered))]
                runs.append(_assign(con, ordered, f"run-{i}", keys=keys if reorder else None))
            history = con.execute(
                "SELECT run_id, id, event, related_id, members FROM customer_id_history "
                "ORDER BY ALL"
            ).fetchall()
            registry = con.execute(
                "SELECT id, created_run_id, created_seq, status, retired_run_id, merged_into, "
                "split_from, first_member FROM customer_ids ORDER BY ALL"
            ).fetchall()
        results.append(([ids for _, ids in runs], history, registry))

    assert results[0] == results[1]


def test_ids_are_prefixed_hex_derived_from_smallest_member(con) -> None:
    _, ids = _assign(con, ["b a", "c"], "run-0")

    expected = "cus_" + hashlib.sha256(b"a#0").hexdigest()[:16]
    assert ids == {"a": expected, "b": expected, "c": ids["c"]}
    assert re.fullmatch(r"cus_[0-9a-f]{16}", ids["c"])
    rows = con.execute(
        "SELECT first_member, created_seq, created_run_id, status FROM customer_ids ORDER BY 2"
    ).fetchall()
    assert rows == [("a", 1, "run-0", "active"), ("c", 2, "run-0", "active")]


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param([["a", "b"], ["a"], ["a", "b"]], id="after_retired"),
        pytest.param([["a", "b"], ["a b"], ["a", "b"]], id="after_merged"),
        pytest.param([["a", "b"], ["a"], ["a", "b"], ["a"], ["a", "b"]], id="after_two_lives"),
    ],
)
def test_retired_ids_are_never_reissued(con, runs: list[list[str]]) -> None:
    ids = [_assign(con, groups, f"run-{i}")[1] for i, groups in enumerate(runs)]

    earlier_b = {run["b"] for run in ids[:-1] if "b" in run}
    assert ids[-1]["b"] not in earlier_b
    issued = con.execute("SELECT id FROM customer_ids").fetchall()
    assert len(issued) == len(set(issued))
    retired = {
        row[0]
        for row in con.execute("SELECT id FROM customer_ids WHERE status = 'retired'").fetchall()
    }
    assert ids[0]["b"] in retired
    assert not retired & set(ids[-1].values())


def test_household_ids_use_their_own_prefix_column_and_tables(con) -> None:
    con.execute(
        "CREATE TABLE addresses AS SELECT * FROM (VALUES "
        "('cus_1', 'addr-1'), ('cus_2', 'addr-1'), ('cus_3', 'addr-2')"
        ") AS t(customer_id, address_key)"
    )
    kwargs = dict(
        groups_table="addresses",
        member_column="customer_id",
        group_column="address_key",
        out_table="households",
        tables=HOUSEHOLD_ID_TABLES,
    )

    first = assign_stable_ids(con, run_id="run-0", **kwargs)
    con.execute("UPDATE addresses SET address_key = 'addr-1' WHERE customer_id = 'cus_3'")
    second = assign_stable_ids(con, run_id="run-1", **kwargs)

    assert (first.new, second.kept, second.merged) == (2, 1, 1)
    rows = con.execute("SELECT customer_id, household_id FROM households").fetchall()
    assert {household for _, household in rows} == {
        "hh_" + hashlib.sha256(b"cus_1#0").hexdigest()[:16]
    }
    assert con.execute("SELECT event FROM household_id_history").fetchall() == [
        ("new",),
        ("new",),
        ("merged",),
    ]
    assert con.execute("SELECT count(*) FROM household_moves").fetchall() == [(1,)]
    tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    assert not any(t.startswith("customer_") for t in tables)


def test_out_table_may_replace_the_groups_table(con) -> None:
    con.execute(
        "CREATE TABLE clusters AS SELECT * FROM (VALUES ('a', 1), ('b', 1), ('c', 2)) "
        "AS t(unique_id, customer_id_provisional)"
    )

    assign_stable_ids(
        con,
        groups_table="clusters",
        member_column="unique_id",
        group_column="customer_id_provisional",
        out_table="clusters",
        tables=CUSTOMER_ID_TABLES,
        run_id="run-0",
    )

    rows = con.execute("SELECT unique_id, customer_id FROM clusters ORDER BY 1").fetchall()
    assert [m for m, _ in rows] == ["a", "b", "c"]
    assert rows[0][1] == rows[1][1] != rows[2][1]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param([("a", "k"), ("a", "j")], "must appear once", id="repeated_member"),
        pytest.param([("a", "k"), (None, "k")], "needs a member", id="null_member"),
        pytest.param([("a", "k"), ("b", None)], "needs a group key", id="null_group_key"),
    ],
)
def test_bad_groups_fail_naming_table_and_column(con, rows, message: str) -> None:
    con.execute("CREATE TABLE groups (unique_id VARCHAR, cluster_id VARCHAR)")
    con.executemany("INSERT INTO groups VALUES (?, ?)", rows)

    with pytest.raises(ValueError, match=f"'groups'.*{message}"):
        assign_stable_ids(
            con,
            groups_table="groups",
            member_column="unique_id",
            group_column="cluster_id",
            out_table="assigned",
            tables=CUSTOMER_ID_TABLES,
            run_id="run-0",
        )


def test_membership_naming_unknown_id_fails(con) -> None:
    _assign(con, ["a b"], "run-0")
    con.execute("UPDATE customer_membership SET id = 'cus_forged' WHERE member = 'a'")

    with pytest.raises(RuntimeError, match="cus_forged"):
        _assign(con, ["a b"], "run-1")


def test_failed_assignment_leaves_state_untouched(con) -> None:
    _assign(con, ["a b", "c"], "run-0")
    before = {
        table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in ("customer_ids", "customer_membership", "customer_id_history")
    }
    con.execute("CREATE VIEW blocked AS SELECT 1 AS x")
    _write_groups(con, ["a b c"], ["k"])

    with pytest.raises(duckdb.Error):
        assign_stable_ids(
            con,
            groups_table="groups",
            member_column="unique_id",
            group_column="cluster_id",
            out_table="blocked",
            tables=CUSTOMER_ID_TABLES,
            run_id="run-1",
        )

    for table, rows in before.items():
        assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == rows
    temp = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert temp == []


def test_member_and_id_column_must_differ(con) -> None:
    custom = IdTables("x_", "x_ids", "x_membership", "x_history", "x_moves", "unique_id")
    _write_groups(con, ["a"], ["k"])

    with pytest.raises(ValueError, match="same name"):
        assign_stable_ids(
            con,
            groups_table="groups",
            member_column="unique_id",
            group_column="cluster_id",
            out_table="assigned",
            tables=custom,
            run_id="run-0",
        )
