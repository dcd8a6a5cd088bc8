"""Clustering: thresholds, singletons and link vetoes on hand-made pairs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from linkage.clustering import apply_link_vetoes, cluster_records

RECORDS = pd.DataFrame(
    {
        "unique_id": ["s:1", "s:2", "s:3", "s:4", "s:5"],
        "source_system": ["s"] * 5,
        "source_record_id": ["1", "2", "3", "4", "5"],
    }
)


def _load_pairs(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.register("pairs_frame", _pairs(rows))
    con.execute("CREATE TABLE pairs AS SELECT * FROM pairs_frame")
    con.unregister("pairs_frame")


def _pairs(rows: list[tuple]) -> pd.DataFrame:
    rows = [row if len(row) == 9 else (*row, "berg", "berg") for row in rows]
    return pd.DataFrame(
        rows,
        columns=[
            "unique_id_l",
            "unique_id_r",
            "match_probability",
            "first_name_l",
            "first_name_r",
            "date_of_birth_l",
            "date_of_birth_r",
            "last_name_l",
            "last_name_r",
        ],
    )


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.register("records_frame", RECORDS)
    connection.execute("CREATE TABLE records AS SELECT * FROM records_frame")
    yield connection
    connection.close()


def _customers(con) -> dict[str, str]:
    return dict(con.execute("SELECT unique_id, customer_id FROM clusters").fetchall())


def test_pairs_at_threshold_join_and_everyone_gets_a_customer(con) -> None:
    d = date(1980, 1, 2)
    _load_pairs(
        con,
        [
            ("s:1", "s:2", 0.99, "anna", "anna", d, d),
            ("s:2", "s:3", 0.96, "anna", "ana", d, d),
            ("s:3", "s:4", 0.5, "ana", "anna", d, d),
        ],
    )
    summary = cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.95, out_table="clusters"
    )
    customers = _customers(con)
    assert customers["s:1"] == customers["s:2"] == customers["s:3"]
    assert len({customers["s:3"], customers["s:4"], customers["s:5"]}) == 3
    assert (summary.records, summary.customers, summary.largest_customer, summary.singletons) == (
        5,
        3,
        3,
        2,
    )
    assert all(c.startswith("cus_") for c in customers.values())


def test_customer_ids_are_reproducible(con) -> None:
    d = date(1980, 1, 2)
    _load_pairs(con, [("s:1", "s:2", 0.99, "anna", "anna", d, d)])
    cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.9, out_table="clusters"
    )
    first = _customers(con)
    cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.9, out_table="clusters"
    )
    assert _customers(con) == first


@pytest.mark.parametrize(
    ("first", "dobs", "vetoed"),
    [
        (("freddie", "bradley"), (date(2020, 5, 20), date(2020, 6, 23)), False),
        (("gesine", "nick"), (date(1986, 6, 7), date(1993, 10, 14)), True),
        (("olek", "aleksander"), (date(1995, 9, 6), date(1995, 9, 6)), False),
        (("olek", "aleksander"), (date(1995, 9, 6), None), False),
        (("anna", "anna"), (date(1980, 1, 1), date(1990, 1, 1)), False),
        (("lisa", "jan"), (date(1980, 3, 5), date(1980, 5, 3)), False),
    ],
    ids=[
        "names-swapped",
        "household",
        "nickname-same-dob",
        "nickname-no-dob",
        "same-name",
        "swapped-day-month",
    ],
)
def test_first_name_and_birth_date_conflict_vetoes_the_link(con, first, dobs, vetoed) -> None:
    last = ("bradley", "freddie") if first == ("freddie", "bradley") else ("berg", "berg")
    _load_pairs(
        con, [("s:1", "s:2", 0.999, first[0], first[1], dobs[0], dobs[1], last[0], last[1])]
    )
    counts = apply_link_vetoes(con, "pairs")
    assert counts["first_name_and_date_of_birth_conflict"] == int(vetoed)
    cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.9, out_table="clusters"
    )
    customers = _customers(con)
    assert (customers["s:1"] != customers["s:2"]) is vetoed
