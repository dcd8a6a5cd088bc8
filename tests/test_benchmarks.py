"""The accuracy benchmark: one data set end to end, and its recall ceiling by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from benchmarks.accuracy import (
    cluster_recall_ceiling,
    format_table,
    prepare_fake1000,
    run_dataset,
)

RECORD_COLUMNS = (
    "unique_id",
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "postcode",
)


def _landing_rows(demo_dir: Path) -> int:
    """Rows in the generated demo's landing files, read independently of Meld."""
    landing = demo_dir / "landing"
    return (
        len(pd.read_csv(landing / "crm_contacts.csv", dtype=str))
        + len(pd.read_csv(landing / "webshop_accounts.csv", dtype=str))
        + len(pd.read_json(landing / "support_tickets.jsonl", lines=True, dtype=False))
        + len(pd.read_parquet(landing / "pos_loyalty.parquet"))
    )


def test_run_dataset_scores_a_small_demo_and_accounts_for_every_row(tmp_path: Path) -> None:
    row = run_dataset("demo10k", tmp_path, demo_persons=150, seed=7)

    delivered = _landing_rows(tmp_path / "demo")
    assert row.input_rows == delivered
    # Every delivered row is evaluated or quarantined (rows without an id have no truth).
    assert row.records + row.quarantined_rows == delivered
    assert row.records > 0.9 * delivered
    for value in (
        row.pairwise_precision,
        row.pairwise_recall,
        row.pairwise_f1,
        row.cluster_precision,
        row.cluster_recall,
        row.cluster_f1,
        row.ceiling_cluster_recall,
    ):
        assert value is not None and 0.0 <= value <= 1.0
    assert row.pairwise_f1 > 0.5, "the demo data is linkable"
    assert row.seconds > 0 and row.peak_rss_mb > 0
    assert "demo10k" in format_table([row])


def _tiny_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    records = [
        # Entity A: a1-a2 share an e-mail; a1-a3 have similar names (JW 0.93, 0.96) and
        # the same date of birth. a2-a3 have nothing. A is whole through a1.
        ("a1", "anna", "lindqvist", dt.date(1984, 3, 2), "anna@x.se", None, "11122"),
        ("a2", "anna", "lindqvist", None, "anna@x.se", None, None),
        ("a3", "ana", "lindquist", dt.date(1984, 3, 2), None, None, None),
        # Entity B: similar names (nowak/novak JW 0.89) but another date of birth and
        # postcode, nothing shared: split.
        ("b1", "piotr", "nowak", dt.date(1950, 11, 20), None, None, "00-001"),
        ("b2", "piotr", "novak", dt.date(1951, 11, 20), None, None, "00-950"),
        # Entity C: different first names, same phone: whole.
        ("c1", "karl", "berg", None, None, "+46701234567", None),
        ("c2", "oskar", "bergh", None, None, "+46701234567", None),
        # Entity D: d1 and d2 are joined only through e1, a record of entity E; edges
        # stay inside an entity, so D is split. Names are similar but nothing else.
        ("d1", "eva", "smith", None, "eva@y.com", None, None),
        ("d2", "eve", "smyth", None, None, "+447911123456", None),
        # Entity E: one record, whole by definition.
        ("e1", "e", "e", None, "eva@y.com", "+447911123456", None),
        # Entity F: similar names (john/jon JW 0.93) and the same postcode, other dates
        # of birth: whole.
        ("f1", "john", "reid", dt.date(1970, 1, 1), None, None, "2452"),
        ("f2", "jon", "reid", dt.date(1971, 1, 1), None, None, "2452"),
        # Not in the truth: not an entity, and links nothing.
        ("u1", "anna", "lindqvist", dt.date(1984, 3, 2), "anna@x.se", None, "11122"),
    ]
    truth = [(r[0], r[0][0].upper()) for r in records if r[0] != "u1"]
    truth.append(("g1", "G"))  # quarantined record: in the truth, not in customer_records
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE customer_records (unique_id VARCHAR, first_name VARCHAR, "
        "last_name VARCHAR, date_of_birth DATE, email VARCHAR, phone VARCHAR, postcode VARCHAR)"
    )
    con.executemany("INSERT INTO customer_records VALUES (?, ?, ?, ?, ?, ?, ?)", records)
    con.execute("CREATE TABLE ground_truth (unique_id VARCHAR, entity_id VARCHAR)")
    con.executemany("INSERT INTO ground_truth VALUES (?, ?)", truth)
    return con


def test_cluster_recall_ceiling_counts_entities_joined_by_easy_evidence(tmp_path: Path) -> None:
    con = _tiny_warehouse(tmp_path / "warehouse.duckdb")
    try:
        ceiling = cluster_recall_ceiling(con)
    finally:
        con.close()
    # Entities with records: A, B, C, D, E, F (G was quarantined, u1 has no truth).
    # Whole: A (e-mail + name and date of birth), C (phone), E (single), F (name and
    # postcode). Split: B (names alone), D (only joined through E's record).
    assert (ceiling.entities, ceiling.whole_entities) == (6, 4)
    assert ceiling.cluster_recall == pytest.approx(4 / 6)


def test_fake1000_names_the_missing_file_and_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELD_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"fake_1000\.csv not found; set MELD_SHARED_DATA"):
        prepare_fake1000(tmp_path, demo_persons=0, seed=0)
