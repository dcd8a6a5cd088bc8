"""The accuracy benchmark: one data set end to end, and its recall ceiling by hand."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from benchmarks.accuracy import benchmark_env, format_table, run_dataset
from benchmarks.ceiling import cluster_recall_ceiling
from benchmarks.datasets import BENCHMARK_NATIONAL_ID_KEY, FEBRL_FIELDS, prepare_fake1000

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


def test_cluster_recall_ceiling_counts_a_shared_identifier_as_evidence(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        con.execute(
            "CREATE TABLE customer_records (unique_id VARCHAR, first_name VARCHAR, "
            "last_name VARCHAR, date_of_birth DATE, email VARCHAR, phone VARCHAR, "
            "postcode VARCHAR, loyalty_card VARCHAR, customer_number VARCHAR)"
        )
        con.executemany(
            "INSERT INTO customer_records VALUES (?, ?, ?, NULL, NULL, NULL, NULL, ?, ?)",
            [
                # A: a CRM contact and a till record share only the loyalty card: whole.
                ("a1", "anna", "berg", "6012345678901", "C0000001"),
                ("a2", "ann", "bergh", "6012345678901", None),
                # B: a ticket quotes the customer number, nothing else in common: whole.
                ("b1", "karl", "holm", None, "C0000002"),
                ("b2", None, None, None, "C0000002"),
                # C: a card shared with A (a family card) is not a link within C: split.
                ("c1", "olof", "berg", "6012345678901", None),
                ("c2", "olle", "lund", None, None),
            ],
        )
        con.execute("CREATE TABLE ground_truth (unique_id VARCHAR, entity_id VARCHAR)")
        con.executemany(
            "INSERT INTO ground_truth VALUES (?, ?)",
            [(uid, uid[0].upper()) for uid in ("a1", "a2", "b1", "b2", "c1", "c2")],
        )
        ceiling = cluster_recall_ceiling(con)
    finally:
        con.close()
    assert (ceiling.entities, ceiling.whole_entities) == (3, 2)


def test_febrl_social_security_numbers_are_national_ids_hashed_with_a_benchmark_key() -> None:
    assert FEBRL_FIELDS["national_id"] == "soc_sec_id"
    assert benchmark_env({})["MELD_NATIONAL_ID_KEY"] == BENCHMARK_NATIONAL_ID_KEY
    assert benchmark_env({"MELD_NATIONAL_ID_KEY": ""})["MELD_NATIONAL_ID_KEY"] == (
        BENCHMARK_NATIONAL_ID_KEY
    )
    given = {"MELD_NATIONAL_ID_KEY": "a real key", "PATH": "/bin"}
    assert benchmark_env(given) == given


def test_fake1000_names_the_missing_file_and_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELD_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"fake_1000\.csv not found; set MELD_SHARED_DATA"):
        prepare_fake1000(tmp_path, demo_persons=0, seed=0)


INGESTION_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ingestion.py"


def _table_rows(stdout: str) -> tuple[list[list[str]], list[str]]:
    """Cells of the ingestion table's step lines and of its total line."""
    lines = stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) <= {"-", " "}]
    assert len(rules) == 2, stdout
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines[rules[0] + 1 : rules[1]]]
    return cells, re.split(r"\s{2,}", lines[rules[1] + 1].strip())


def test_ingestion_benchmark_times_every_source_and_step(tmp_path: Path) -> None:
    result_path = tmp_path / "ingestion.json"
    work_dir = tmp_path / "work"
    completed = subprocess.run(
        [sys.executable, str(INGESTION_SCRIPT), "--persons", "300", "--seed", "3"]
        + ["--work-dir", str(work_dir), "--json", str(result_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr

    config = yaml.safe_load((work_dir / "data" / "meld.yaml").read_text(encoding="utf-8"))
    cells, total = _table_rows(completed.stdout)
    assert sorted((row[0], row[1]) for row in cells) == sorted(
        (source, stage) for source in config["sources"] for stage in ("raw", "staged")
    )
    raw_rows: dict[str, int] = {}
    for source, stage, rows, quarantined, seconds, cpu, peak in cells:
        assert int(rows.replace(",", "")) > 0
        assert float(seconds) >= 0 and float(cpu) >= 0
        assert float(peak.replace(",", "")) > 0
        if stage == "raw":
            assert quarantined == "-"
            raw_rows[source] = int(rows.replace(",", ""))
    for source, stage, rows, quarantined, *_ in cells:
        if stage == "staged":  # every raw row is staged or quarantined
            staged = int(rows.replace(",", "")) + int(quarantined.replace(",", ""))
            assert staged == raw_rows[source]
    assert total[:3] == ["total", "raw->staged", f"{sum(raw_rows.values()):,}"]
    assert re.search(r"^PASS: [\d.]+ s \(< 60 s\), peak [\d,]+ MB", completed.stdout, re.M)

    payload = json.loads(result_path.read_text(encoding="utf-8"))
    assert len(payload["rows"]) == len(cells)
    assert payload["total"]["raw_rows"] == sum(raw_rows.values())
    assert payload["total"]["passed"] is True


@pytest.mark.slow
def test_audit_benchmark_prints_every_step(tmp_path: Path, capsys) -> None:
    from benchmarks.audit import main as audit_benchmark

    assert audit_benchmark(["--persons", "80", "--work-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    for step in ("linkage_runs alone", "verify-ledger", "explain pair", "reproduce (files)"):
        assert step in table
    assert table.count("identical") == 2 and "NOT identical" not in table
    assert "2 rows, intact" in table
