"""Steward overrides: decisions with history, CSV loading, what is in force, unmerge,
clustering that respects them, and the ``meld override`` commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from linkage.cluster.overrides.clustering import cluster_with_overrides
from linkage.cluster.overrides.csv_file import load_overrides_csv
from linkage.cluster.overrides.decisions import (
    OverrideError,
    list_overrides,
    make_decision,
    record_decision,
)
from linkage.cluster.overrides.in_force import effective_overrides
from linkage.config import ProjectConfig
from linkage.tables import STEWARD_OVERRIDES
from orchestration.cli import main

RECORDS = [f"crm:{i}" for i in range(1, 7)]
PAIRS = [
    ("crm:1", "crm:2", 0.99),
    ("crm:2", "crm:3", 0.97),
    ("crm:1", "crm:3", 0.93),
    ("crm:4", "crm:5", 0.98),
    ("crm:5", "crm:6", 0.4),
]
"""Customers without decisions: {1, 2, 3}, {4, 5} and {6}."""

HEADER = "record_a,record_b,decision,steward,reason,decided_at\n"


def _create_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE customer_records AS SELECT 'crm' AS source_system, "
        "split_part(unique_id, ':', 2) AS source_record_id, unique_id "
        "FROM (SELECT unnest($ids) AS unique_id)",
        {"ids": RECORDS},
    )
    con.execute(
        "CREATE TABLE pairwise_matches (unique_id_l VARCHAR, unique_id_r VARCHAR, "
        "match_probability DOUBLE, link_veto VARCHAR)"
    )
    con.executemany("INSERT INTO pairwise_matches VALUES (?, ?, ?, NULL)", PAIRS)


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _create_warehouse(connection)
    yield connection
    connection.close()


def _cluster(con, csv_path: Path | None = None):
    return cluster_with_overrides(
        con,
        records_table="customer_records",
        pairs_table="pairwise_matches",
        threshold=0.9,
        out_table="customer_clusters",
        csv_path=csv_path,
    )


def _groups(con) -> set[frozenset[str]]:
    rows = con.execute(
        "SELECT list(unique_id) FROM customer_clusters GROUP BY customer_id"
    ).fetchall()
    return {frozenset(row[0]) for row in rows}


def _decide(con, decision: str, a: str, b: str | None = None, when: str = "2025-03-01") -> None:
    record_decision(
        con, make_decision(decision, a, b, steward="anna", reason="test", decided_at=when)
    )


def _set(*ids: int) -> frozenset[str]:
    return frozenset(f"crm:{i}" for i in ids)


def test_without_decisions_customers_are_the_models(con) -> None:
    result = _cluster(con)
    assert _groups(con) == {_set(1, 2, 3), _set(4, 5), _set(6)}
    assert result.summary.links_refused == 0 and result.overrides.must_link == ()


def test_must_link_joins_customers_the_model_keeps_apart(con) -> None:
    _decide(con, "must_link", "crm:3", "crm:6")
    result = _cluster(con)
    assert _groups(con) == {_set(1, 2, 3, 6), _set(4, 5)}
    assert result.summary.must_links_applied == 1


def test_cannot_link_splits_a_chain_at_its_weakest_link(con) -> None:
    _decide(con, "cannot_link", "crm:1", "crm:3")
    result = _cluster(con)
    assert _groups(con) == {_set(1, 2), _set(3), _set(4, 5), _set(6)}
    refused = con.execute(
        "SELECT unique_id_l, unique_id_r, reason FROM refused_links ORDER BY 1, 2"
    ).fetchall()
    assert refused == [("crm:1", "crm:3", "cannot_link"), ("crm:2", "crm:3", "cannot_link")]
    assert result.summary.links_refused == 2
    decision = result.overrides.for_pair("crm:3", "crm:1")
    assert decision is not None and decision.override.steward == "anna"


def test_unmerge_removes_one_record_and_revoke_restores_it(con) -> None:
    _cluster(con)
    _decide(con, "unmerge", "crm:2", when="2025-03-01")
    for _ in range(2):  # and it stays out on the next run
        _cluster(con)
        assert _groups(con) == {_set(1, 3), _set(2), _set(4, 5), _set(6)}
    resolved = con.execute(
        "SELECT record_a, record_b FROM steward_unmerge_resolutions ORDER BY record_b"
    ).fetchall()
    assert resolved == [("crm:2", "crm:1"), ("crm:2", "crm:3")]
    _decide(con, "revoke", "crm:2", when="2025-03-02")
    result = _cluster(con)
    assert _groups(con) == {_set(1, 2, 3), _set(4, 5), _set(6)}
    assert result.overrides.cannot_link == () and result.overrides.unmerges == ()


def test_unmerge_then_must_link_moves_a_record_to_another_customer(con) -> None:
    _cluster(con)
    _decide(con, "unmerge", "crm:3", when="2025-03-01")
    _decide(con, "must_link", "crm:3", "crm:4", when="2025-03-01T00:05:00")
    _cluster(con)
    assert _groups(con) == {_set(1, 2), _set(3, 4, 5), _set(6)}


def test_a_later_must_link_brings_back_one_record_an_unmerge_cut(con) -> None:
    _cluster(con)
    _decide(con, "unmerge", "crm:2", when="2025-03-01")
    _decide(con, "must_link", "crm:2", "crm:1", when="2025-03-02")
    _cluster(con)
    assert _groups(con) == {_set(1, 2), _set(3), _set(4, 5), _set(6)}


def test_unmerge_of_a_record_not_clustered_yet_applies_in_the_same_run(con) -> None:
    _decide(con, "unmerge", "crm:2")
    result = _cluster(con)
    assert _groups(con) == {_set(1, 3), _set(2), _set(4, 5), _set(6)}
    assert result.overrides.pending_unmerges == ()


def test_a_new_record_matching_an_unmerged_record_may_join_it(con) -> None:
    _cluster(con)
    _decide(con, "unmerge", "crm:2")
    _cluster(con)
    con.execute("INSERT INTO customer_records VALUES ('crm', '7', 'crm:7')")
    con.execute("INSERT INTO pairwise_matches VALUES ('crm:2', 'crm:7', 0.99, NULL)")
    _cluster(con)
    assert _set(2, 7) in _groups(con)


@pytest.mark.parametrize(
    ("decisions", "in_force"),
    [
        ([("cannot_link", "2025-01-01"), ("must_link", "2025-02-01")], "must_link"),
        ([("must_link", "2025-02-01"), ("cannot_link", "2025-01-01")], "must_link"),
        ([("must_link", "2025-01-01"), ("revoke", "2025-02-01")], None),
        (
            [("must_link", "2025-01-01"), ("revoke", "2025-02-01"), ("cannot_link", "2025-03-01")],
            "cannot_link",
        ),
    ],
    ids=["later-wins", "decided-at-not-recording-order", "revoke-cancels", "decide-again"],
)
def test_the_latest_decision_per_pair_is_in_force(con, decisions, in_force) -> None:
    for i, (decision, when) in enumerate(decisions):
        a, b = ("crm:1", "crm:5") if i % 2 == 0 else ("crm:5", "crm:1")  # unordered pair
        _decide(con, decision, a, b, when=when)
    decision = effective_overrides(con).for_pair("crm:1", "crm:5")
    assert (decision.decision if decision else None) == in_force
    assert len(list_overrides(con)) == len(decisions)


def test_decisions_naming_unknown_records_are_listed_and_not_applied(con) -> None:
    _decide(con, "must_link", "crm:1", "crm:99")
    _decide(con, "cannot_link", "crm:4", "crm:5")
    overrides = effective_overrides(con, records_table="customer_records")
    assert overrides.unknown_records == ("crm:99",)
    assert overrides.must_link == () and overrides.cannot_link == (("crm:4", "crm:5"),)
    assert "crm:99" in overrides.warnings[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_loading_the_same_csv_again_adds_nothing_and_history_is_kept(con, tmp_path: Path) -> None:
    rows = (
        "crm:3,crm:6,must_link,anna,same passport,2025-03-01\n"
        'crm:1,crm:3,cannot-link,ben,"twins, says the ticket",2025-03-01T10:00:00+01:00\n'
    )
    path = _write(tmp_path / "overrides.csv", HEADER + rows)
    first = load_overrides_csv(con, path)
    again = load_overrides_csv(con, path)
    renamed = load_overrides_csv(con, _write(tmp_path / "copy.csv", HEADER + rows))
    assert (first.added, again.added, renamed.added) == (2, 0, 0)
    assert again.already_recorded == 2
    _write(path, HEADER + rows + "crm:6,crm:3,revoke,anna,wrong passport,2025-03-05\n")
    assert load_overrides_csv(con, path).added == 1
    history = list_overrides(con)
    assert [o.decision for o in history] == ["must_link", "cannot_link", "revoke"]
    assert {o.origin for o in history} == {"csv:overrides.csv"}
    assert history[1].decided_at.isoformat() == "2025-03-01T09:00:00"  # in UTC
    result = _cluster(con)
    assert result.overrides.must_link == () and result.overrides.cannot_link == (
        ("crm:1", "crm:3"),
    )


def test_the_configured_csv_is_loaded_when_clustering(con, tmp_path: Path) -> None:
    path = _write(tmp_path / "o.csv", HEADER + "crm:2,,unmerge,anna,shared phone,2025-03-01\n")
    result = _cluster(con, csv_path=path)
    assert result.csv is not None and result.csv.added == 1
    assert _set(2) in _groups(con)


def test_semicolon_csv_with_commas_in_reasons_loads(con, tmp_path: Path) -> None:
    text = HEADER.replace(",", ";") + "crm:1;crm:4;must_link;anna;a, b, c;2025-03-01\n"
    load_overrides_csv(con, _write(tmp_path / "o.csv", text))
    assert list_overrides(con)[0].reason == "a, b, c"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("crm:1,crm:2,merge,anna,x,2025-03-01\n", ["line 2", "column 'decision'", "merge"]),
        ("crm:1,crm:2,must_link,,x,2025-03-01\n", ["line 2", "column 'steward'"]),
        ("crm:1,crm:2,must_link,anna,,2025-03-01\n", ["line 2", "column 'reason'"]),
        ("crm:1,crm:2,must_link,anna,x,01/03/2025\n", ["line 2", "column 'decided_at'"]),
        ("crm:1,crm:2,must_link,anna,x,\n", ["line 2", "column 'decided_at'", "required"]),
        ("1,crm:2,must_link,anna,x,2025-03-01\n", ["line 2", "column 'record_a'", "<source>"]),
        ("crm:1,,cannot_link,anna,x,2025-03-01\n", ["line 2", "column 'record_b'"]),
        ("crm:1,crm:2,unmerge,anna,x,2025-03-01\n", ["line 2", "column 'record_b'"]),
        ("crm:1,crm:1,must_link,anna,x,2025-03-01\n", ["line 2", "column 'record_b'", "same"]),
        (
            "crm:1,crm:2,must_link,anna,x,2025-03-01\ncrm:1,crm:2,must_link,anna\n",
            ["line 3", "malformed_row", "expected 6 fields, found 4"],
        ),
    ],
    ids=[
        "unknown-decision",
        "no-steward",
        "no-reason",
        "bad-date",
        "no-date",
        "bad-record-id",
        "pair-without-second-record",
        "unmerge-with-second-record",
        "same-record",
        "wrong-field-count",
    ],
)
def test_a_malformed_csv_names_file_line_and_column_and_loads_nothing(
    con, tmp_path: Path, body: str, expected: list[str]
) -> None:
    path = _write(tmp_path / "bad.csv", HEADER + body)
    with pytest.raises(OverrideError) as error:
        load_overrides_csv(con, path)
    message = str(error.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert list_overrides(con) == []


def test_a_csv_without_a_column_is_refused(con, tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", "record_a,record_b,decision,steward,decided_at\n")
    with pytest.raises(OverrideError, match=r"line 1: missing column\(s\) \['reason'\]"):
        load_overrides_csv(con, path)


def test_a_missing_csv_is_a_clear_error(con, tmp_path: Path) -> None:
    with pytest.raises(OverrideError, match="not found"):
        load_overrides_csv(con, tmp_path / "nowhere.csv")


# --- the command line --------------------------------------------------------------


@pytest.fixture
def cli_project(write_project: Callable[..., ProjectConfig]) -> ProjectConfig:
    """A project whose warehouse holds customer_records, pairs and first customers."""
    project = write_project(
        {
            "sources": {"crm": {"path": "crm.csv", "id_column": "id", "fields": {"email": "m"}}},
            "overrides": {"path": "overrides.csv"},
        }
    )
    with duckdb.connect(str(project.warehouse)) as connection:
        _create_warehouse(connection)
        _cluster(connection)
    return project


def _meld(project: ProjectConfig, *args: str) -> int:
    return main(["override", *args, "--config", str(project.config_path)])


def _history(project: ProjectConfig) -> list:
    with duckdb.connect(str(project.warehouse), read_only=True) as connection:
        return list_overrides(connection)


def test_cli_records_lists_and_revokes_decisions(cli_project, capsys) -> None:
    who = ["--steward", "anna", "--reason", "same passport"]
    assert _meld(cli_project, "must-link", "crm:3", "crm:6", *who) == 0
    assert "recorded must_link crm:3 crm:6 by anna" in capsys.readouterr().out
    assert _meld(cli_project, "cannot-link", "crm:6", "crm:3", *who) == 0
    assert "replaces must_link" in capsys.readouterr().out
    assert _meld(cli_project, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(o["decision"], o["in_force"]) for o in listed] == [
        ("must_link", False),
        ("cannot_link", True),
    ]
    assert all(o["origin"] == "cli" and o["steward"] == "anna" for o in listed)
    assert _meld(cli_project, "revoke", "crm:3", "crm:6", "--steward", "ben", "--reason", "no") == 0
    assert "cancels cannot_link" in capsys.readouterr().out
    assert _meld(cli_project, "list") == 0
    table = capsys.readouterr().out
    assert "revoke" in table and "same passport" in table and " yes " not in table
    assert len(_history(cli_project)) == 3


def test_cli_unmerge_reports_the_customer_the_record_leaves(cli_project, capsys) -> None:
    assert _meld(cli_project, "unmerge", "crm:2", "--steward", "ben", "--reason", "x") == 0
    assert "2 other record(s) become cannot-links" in capsys.readouterr().out
    assert _meld(cli_project, "unmerge", "crm:6", "--steward", "ben", "--reason", "x") == 1
    assert "already alone" in capsys.readouterr().err
    assert _meld(cli_project, "revoke", "crm:2", "--steward", "ben", "--reason", "undo") == 0
    assert _meld(cli_project, "revoke", "crm:2", "--steward", "ben", "--reason", "again") == 1
    assert "no unmerge of crm:2 is in force" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["must-link", "crm:1", "crm:99"], "no record crm:99 in customer_records"),
        (["must-link", "crm:1", "99"], "record_b: expected a record id"),
        (["revoke", "crm:1", "crm:2"], "no decision between crm:1 and crm:2 is in force"),
        (["must-link", "crm:1", "crm:2", "--decided-at", "yesterday"], "decided_at"),
    ],
    ids=["unknown-record", "malformed-record", "nothing-to-revoke", "bad-date"],
)
def test_cli_refuses_bad_decisions_with_a_reason(cli_project, capsys, args, message) -> None:
    assert _meld(cli_project, *args, "--steward", "anna", "--reason", "r") == 1
    assert message in capsys.readouterr().err
    assert _history(cli_project) == []


def test_cli_requires_steward_and_reason(cli_project, capsys) -> None:
    with pytest.raises(SystemExit) as exit_code:
        _meld(cli_project, "cannot-link", "crm:1", "crm:2", "--reason", "twins")
    assert exit_code.value.code == 2
    assert "--steward" in capsys.readouterr().err


def test_cli_allow_unknown_records_a_decision_for_a_record_not_loaded_yet(cli_project) -> None:
    args = ["must-link", "crm:1", "crm:99", "--steward", "a", "--reason", "r", "--allow-unknown"]
    assert _meld(cli_project, *args) == 0
    assert [o.record_b for o in _history(cli_project)] == ["crm:99"]


def test_cli_load_reads_the_configured_csv_once(cli_project, capsys) -> None:
    _write(
        cli_project.resolve("overrides.csv"),
        HEADER + "crm:1,crm:4,must_link,anna,ticket 9,2025-03-01\n",
    )
    assert _meld(cli_project, "load") == 0
    assert "1 decision(s), 1 new" in capsys.readouterr().out
    assert _meld(cli_project, "load") == 0
    assert "1 decision(s), 0 new, 1 known" in capsys.readouterr().out
    with duckdb.connect(str(cli_project.warehouse), read_only=True) as connection:
        rows = connection.execute(f"SELECT origin FROM {STEWARD_OVERRIDES}").fetchall()
    assert rows == [("csv:overrides.csv",)]


def test_cli_list_on_a_fresh_project_says_nothing_is_recorded(write_project, capsys) -> None:
    project = write_project(
        {"sources": {"crm": {"path": "crm.csv", "id_column": "id", "fields": {"email": "m"}}}}
    )
    assert _meld(project, "list") == 0
    assert "no steward overrides recorded" in capsys.readouterr().out
    assert _meld(project, "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
