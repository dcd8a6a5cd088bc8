"""The per-run HTML report: what it shows, what it never shows, and that it needs no network."""

from __future__ import annotations

import html
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from linkage.audit.run_report.formatting import format_delta, format_value
from linkage.audit.run_report.page import write_run_report
from linkage.config import ProjectConfig
from linkage.model.match_weights import level_weights
from linkage.model.store import latest_model
from orchestration.build import build_assets, build_resources
from tests.projects import demo_project_file

MISSING_NOTE = "is not in the warehouse"


class _TableParser(HTMLParser):
    """Collects the text of every cell of every table with an id, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Rows (header row first) of each table of the report, by the table's id."""
    parser = _TableParser()
    parser.feed(text)
    return parser.tables


def _without_images(text: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)


def _write(
    con: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    entry: dict[str, Any],
    previous: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
) -> str:
    path = write_run_report(
        con, entry=entry, previous=previous, model=model, out_path=tmp_path / "r" / "report.html"
    )
    assert path == tmp_path / "r" / "report.html"
    return path.read_text(encoding="utf-8")


def _assert_offline(text: str) -> None:
    lowered = text.lower()
    for needle in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert needle not in lowered, needle


# A warehouse built by the real pipeline.


@pytest.fixture(scope="module")
def materialized(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ProjectConfig, str]:
    """The whole pipeline materialized once for this module's tests, and its run id."""
    project = demo_project_file(
        tmp_path_factory.mktemp("run-report"),
        small_demo,
        mlflow_uri=mlflow_uri,
        experiment="test-run-report",
    )
    result = dg.materialize(build_assets(project), resources=build_resources(project))
    assert result.success
    return project, result.run_id


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    return int(con.execute(sql, params or []).fetchall()[0][0])


@pytest.fixture(scope="module")
def pipeline_report(
    materialized: tuple[ProjectConfig, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ProjectConfig, str, dict[str, Any], str]:
    """The report of the materialized run: project, run id, ledger entry and HTML."""
    project, run_id = materialized
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        stored = latest_model(con)
        inputs = [
            {
                "source": source,
                "file": file,
                "size_bytes": size,
                "sha256": sha,
                "rows": rows,
                "delivery_seq": seq,
            }
            for source, file, size, sha, rows, seq in con.execute(
                "SELECT source_system, source_file, size_bytes, sha256, rows, delivery_seq "
                "FROM source_deliveries ORDER BY 1"
            ).fetchall()
        ]
        events = dict(
            con.execute(
                "SELECT event, count(*) FROM customer_id_history WHERE run_id = ? GROUP BY 1",
                [run_id],
            ).fetchall()
        )
        counts = {
            "records_in": sum(
                _one(con, f'SELECT count(*) FROM "raw_{s}"') for s in project.sources
            ),
            "records_staged": _one(con, "SELECT count(*) FROM customer_records"),
            "quarantined": _one(con, "SELECT count(*) FROM quarantined_records"),
            "pairs_scored": _one(con, "SELECT count(*) FROM pairwise_matches"),
            "pairs_above_threshold": _one(
                con,
                "SELECT count(*) FROM pairwise_matches WHERE match_probability >= ?",
                [stored.match_threshold],
            ),
            "customers": _one(con, "SELECT count(DISTINCT customer_id) FROM customer_clusters"),
            "created": int(events.get("new", 0)),
            "merged": int(events.get("merged", 0)),
            "split": int(events.get("split", 0)),
            "retired": int(events.get("retired", 0)),
            "records_moved": _one(
                con, "SELECT count(*) FROM customer_record_moves WHERE run_id = ?", [run_id]
            ),
        }
        metrics = dict(
            con.execute(
                "SELECT metric, value FROM linkage_evaluation WHERE dagster_run_id = ? "
                "AND metric IN ('pairwise_f1', 'cluster_f1')",
                [run_id],
            ).fetchall()
        )
        entry = {
            "dagster_run_id": run_id,
            "mlflow_run_id": stored.mlflow_run_id,
            "status": "succeeded",
            "error": None,
            "started_at": "2026-01-05T10:00:00+00:00",
            "ended_at": "2026-01-05T10:02:30+00:00",
            "job_name": "meld_pipeline",
            "model_name": stored.model_name,
            "model_version": stored.model_version,
            "model_alias": "champion",
            "model_mlflow_run_id": stored.mlflow_run_id,
            "code_version": {"git_commit": "3eead4f0c0ffee", "package_version": "0.1.0"},
            "config_sha256": "c" * 64,
            "config": project.model_dump(mode="json"),
            "inputs": inputs,
            "thresholds": {
                "match_threshold": stored.match_threshold,
                "prediction_floor": stored.prediction_floor,
            },
            "counts": counts,
            "metrics": metrics,
            "partition_sha256": "p" * 64,
        }
        out = tmp_path_factory.mktemp("report")
        text = _write(con, out, entry, previous=None, model=stored.model)
    finally:
        con.close()
    return project, run_id, entry, text


@pytest.mark.slow
def test_report_is_one_offline_file_with_the_runs_facts(pipeline_report) -> None:
    _, run_id, entry, text = pipeline_report
    _assert_offline(text)
    assert text.count('src="data:image/png;base64,') == 2  # match weights, customer sizes
    tables = _tables(text)
    run = dict(tables["run"][1:])
    assert run["Dagster run"] == run_id
    assert run["Model version"] == entry["model_version"]
    assert run["Model alias"] == "champion"
    assert run["Duration"] == "2m 30s"
    counts = {row[0]: row[1] for row in tables["counts"][1:]}
    assert counts["customers"] == format_value(entry["counts"]["customers"])
    assert counts["records in (raw rows)"] == format_value(entry["counts"]["records_in"])
    assert counts["pairs scored"] == format_value(entry["counts"]["pairs_scored"])
    inputs = {row[0]: row for row in tables["inputs"][1:]}
    assert set(inputs) == {item["source"] for item in entry["inputs"]}
    for item in entry["inputs"]:
        assert inputs[item["source"]][1] == item["file"]
        assert inputs[item["source"]][5] == item["sha256"]
    assert "first run" in text
    assert "<details>" in text and "Effective configuration" in text


@pytest.mark.slow
def test_cluster_size_distribution_matches_customer_clusters(pipeline_report) -> None:
    project, _, _, text = pipeline_report
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        expected = con.execute(
            "SELECT customer_record_count, count(DISTINCT customer_id) FROM customer_clusters "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    shown = _tables(text)["cluster-sizes"]
    assert shown[0] == ["records per customer", "customers"]
    assert shown[1:] == [[format_value(size), format_value(n)] for size, n in expected]
    summary = dict(_tables(text)["customer-summary"][1:])
    assert summary["customers"] == format_value(sum(n for _, n in expected))


@pytest.mark.slow
def test_id_event_counts_match_customer_id_history(pipeline_report) -> None:
    project, run_id, _, text = pipeline_report
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        expected = dict(
            con.execute(
                "SELECT event, count(*) FROM customer_id_history WHERE run_id = ? GROUP BY 1",
                [run_id],
            ).fetchall()
        )
        moves = _one(con, "SELECT count(*) FROM customer_record_moves WHERE run_id = ?", [run_id])
    finally:
        con.close()
    assert expected, "the first run issues new customer ids"
    tables = _tables(text)
    shown = {event: count for event, count in tables["id-events"][1:]}
    for event in ("new", "split", "merged", "retired"):
        assert shown[event] == format_value(expected.get(event, 0))
    assert len(tables["id-history"]) - 1 == min(50, sum(expected.values()))
    assert f"{moves:,} records moved in this run" in text


@pytest.mark.slow
def test_report_holds_no_record_values(pipeline_report) -> None:
    project, _, _, text = pipeline_report
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        values = [
            value
            for row in con.execute(
                "SELECT email, phone, last_name_display FROM customer_records "
                "WHERE email IS NOT NULL AND phone IS NOT NULL AND length(last_name_display) >= 7 "
                "ORDER BY unique_id LIMIT 10"
            ).fetchall()
            for value in row
        ]
        quarantined = con.execute(
            "SELECT raw_values FROM quarantined_records WHERE raw_values IS NOT NULL"
        ).fetchall()
        invalid = con.execute(
            "SELECT raw_value FROM data_quality_issues WHERE length(raw_value) >= 7"
        ).fetchall()
    finally:
        con.close()
    for (raw,) in quarantined:
        values += [
            v
            for k, v in json.loads(raw).items()
            if k in ("email", "phone", "email_address", "mobile") and v
        ]
    values += [value for (value,) in invalid]
    assert len(values) > 30
    visible = _without_images(text)
    leaked = [value for value in values if value in visible or html.escape(value) in visible]
    assert leaked == []


@pytest.mark.slow
def test_model_section_lists_each_level_with_its_weight(pipeline_report) -> None:
    project, _, _, text = pipeline_report
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        model = latest_model(con).model
    finally:
        con.close()
    rows = _tables(text)["model-levels"][1:]
    levels = [
        level for comparison in model["comparisons"] for level in comparison["comparison_levels"]
    ]
    assert len(rows) == len(levels)
    for row, level in zip(rows, levels, strict=True):
        m, u = level.get("m_probability"), level.get("u_probability")
        if not level.get("is_null_level") and m and u:
            assert row[4] == format_value(math.log2(m / u))
    prior = dict(_tables(text)["model-prior"][1:])
    assert prior["Prior: probability two random records match"] == format_value(
        model["probability_two_random_records_match"]
    )


# Small warehouses written by the tests.


def test_failed_run_renders_its_error_and_notes_for_missing_tables(tmp_path: Path) -> None:
    error = "Failure: staging crm_contacts: expected column <email>, found none"
    with duckdb.connect(str(tmp_path / "empty.duckdb")) as con:
        text = _write(
            con, tmp_path, {"dagster_run_id": "run-9", "status": "failed", "error": error}
        )
    _assert_offline(text)
    assert html.escape(error) in text
    assert '<span class="badge failed">failed</span>' in text
    counts = _tables(text)["counts"]
    assert counts[0] == ["count", "this run"]
    assert {row[1] for row in counts[1:]} == {"n/a"}
    for table in (
        "quarantined_records",
        "data_quality_issues",
        "customer_clusters",
        "customer_id_history",
        "customer_record_moves",
        "merge_evidence",
        "linkage_evaluation",
    ):
        assert f"Table {table} {MISSING_NOTE}" in text
    assert "No model is recorded for this run." in text
    assert "first run" in text


def test_entry_values_are_escaped(tmp_path: Path) -> None:
    entry = {"dagster_run_id": "r1", "status": "succeeded", "job_name": "<script>alert(1)</script>"}
    with duckdb.connect() as con:
        text = _write(con, tmp_path, entry)
    assert "<script" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def _entry(run_id: str, **changes: Any) -> dict[str, Any]:
    entry = {
        "dagster_run_id": run_id,
        "status": "succeeded",
        "model_version": "3",
        "config_sha256": "a" * 64,
        "inputs": [
            {"source": "crm", "file": "crm.csv", "sha256": "1" * 64, "rows": 10},
            {"source": "shop", "file": "shop.csv", "sha256": "2" * 64, "rows": 5},
        ],
        "counts": {"customers": 100, "merged": 2},
        "metrics": {"pairwise_f1": 0.9},
    }
    return {**entry, **changes}


def test_previous_run_is_compared_side_by_side(tmp_path: Path) -> None:
    previous = _entry("run-1")
    entry = _entry(
        "run-2",
        model_version="4",
        inputs=[
            {"source": "crm", "file": "crm.csv", "sha256": "1" * 64, "rows": 10},
            {"source": "shop", "file": "shop.csv", "sha256": "3" * 64, "rows": 7},
            {"source": "pos", "file": "pos.csv", "sha256": "4" * 64, "rows": 3},
        ],
        counts={"customers": 103, "merged": 1},
        metrics={"pairwise_f1": 0.925},
    )
    with duckdb.connect() as con:
        text = _write(con, tmp_path, entry, previous=previous)
    tables = _tables(text)
    counts = {row[0]: row[1:] for row in tables["counts"][1:]}
    assert counts["customers"] == ["103", "100", "+3"]
    assert counts["customer ids merged"] == ["1", "2", "-1"]
    assert counts["customer ids split"] == ["n/a", "n/a", "n/a"]
    metrics = {row[0]: row[1:] for row in tables["metrics-changes"][1:]}
    assert metrics["pairwise_f1"] == ["0.925", "0.9", "+0.025"]
    assert {row[0]: row[6] for row in tables["inputs"][1:]} == {
        "crm": "same",
        "shop": "changed",
        "pos": "new source",
    }
    versions = {row[0]: row[1:] for row in tables["versions-changed"][1:]}
    assert versions["model version"] == ["3", "4", "changed"]
    assert versions["config sha256"][2] == "same"
    assert "first run" not in text


def test_only_this_runs_id_events_moves_and_merge_evidence_are_listed(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute(
            "CREATE TABLE customer_id_history AS SELECT * FROM (VALUES "
            "('run-2', now(), 'cus_b', 'merged', 'cus_a', 2), "
            "('run-2', now(), 'cus_c', 'split', 'cus_a', 1), "
            "('run-2', now(), 'cus_d', 'new', NULL, 1), "
            "('run-1', now(), 'cus_a', 'new', NULL, 3)) "
            "AS t(run_id, event_at, id, event, related_id, members)"
        )
        con.execute(
            "CREATE TABLE customer_record_moves AS SELECT "
            "CASE WHEN i < 60 THEN 'run-2' ELSE 'run-1' END AS run_id, now() AS moved_at, "
            "'crm:' || lpad(i::VARCHAR, 3, '0') AS member, 'cus_b' AS from_id, 'cus_a' AS to_id "
            "FROM range(70) AS r(i)"
        )
        con.execute(
            "CREATE TABLE merge_evidence AS SELECT * FROM (VALUES "
            "('run-2', 'cus_a', 'cus_b', 'crm:001', 'shop:9', 12.5, 0.9998, 'email exact'), "
            "('run-1', 'cus_x', 'cus_y', 'crm:777', 'shop:8', 9.0, 0.998, 'phone exact')) "
            "AS t(run_id, survivor_id, merged_id, unique_id_l, unique_id_r, match_weight, "
            "match_probability, evidence)"
        )
        text = _write(con, tmp_path, _entry("run-2"), previous=_entry("run-1"))
    tables = _tables(text)
    assert {row[0]: row[1] for row in tables["id-events"][1:]} == {
        "new": "1",
        "split": "1",
        "merged": "1",
        "retired": "0",
    }
    assert [row[0] for row in tables["id-history"][1:]] == ["merged", "split", "new"]
    assert "60 records moved in this run, the first 50 listed." in text
    moves = tables["record-moves"]
    assert moves[0] == ["record (unique_id)", "from customer", "to customer"]
    assert len(moves) - 1 == 50
    assert moves[1] == ["crm:000", "cus_b", "cus_a"]
    evidence = tables["merge-evidence"]
    assert evidence[1:] == [
        ["cus_a", "cus_b", "crm:001", "shop:9", "12.5", "0.9998", "email exact"]
    ]
    assert "crm:777" not in text
    assert f"Table merge_evidence {MISSING_NOTE}" not in text

    audit_only = _entry("run-3", clustering_run_id="run-2")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        text = _write(con, tmp_path, audit_only, previous=_entry("run-2"))
    assert _tables(text)["id-events"][1:3] == [["new", "1"], ["split", "1"]]
    assert "60 records moved in that run, the first 50 listed." in text


def test_quality_tables_are_counted_without_their_values(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute(
            "CREATE TABLE quarantined_records AS SELECT * FROM (VALUES "
            "('crm', 'missing_id', '{\"email\": \"ann@example.org\"}'), "
            "('crm', 'missing_id', '{\"email\": \"bob@example.org\"}'), "
            "('shop', 'duplicate_id', '{}')) AS t(source_system, reason, raw_values)"
        )
        con.execute(
            "CREATE TABLE data_quality_issues AS SELECT * FROM (VALUES "
            "('crm', 'phone', 'invalid_phone', '0172 5510734')) "
            "AS t(source_system, field, problem, raw_value)"
        )
        text = _write(con, tmp_path, {"dagster_run_id": "r1", "status": "succeeded"})
    tables = _tables(text)
    assert tables["quarantine"][1:] == [
        ["crm", "missing_id", "2"],
        ["shop", "duplicate_id", "1"],
        ["all", "", "3"],
    ]
    assert tables["quality-issues"][1] == ["crm", "phone", "invalid_phone", "1"]
    assert "example.org" not in text
    assert "0172" not in text


def test_model_levels_show_m_u_and_partial_match_weight(tmp_path: Path) -> None:
    model = {
        "probability_two_random_records_match": 0.01,
        "comparisons": [
            {
                "output_column_name": "email",
                "comparison_levels": [
                    {"label_for_charts": "email is NULL", "is_null_level": True},
                    {"label_for_charts": "Exact", "m_probability": 0.9, "u_probability": 0.01},
                    {"label_for_charts": "Else", "m_probability": 0.1, "u_probability": 0.99},
                ],
            }
        ],
    }
    with duckdb.connect() as con:
        text = _write(con, tmp_path, {"dagster_run_id": "r1"}, model=model)
    rows = _tables(text)["model-levels"][1:]
    assert [row[:5] for row in rows] == [
        ["email", "email is NULL", "n/a", "n/a", "0"],
        ["", "Exact", "0.9", "0.01", format_value(math.log2(0.9 / 0.01))],
        ["", "Else", "0.1", "0.99", format_value(math.log2(0.1 / 0.99))],
    ]
    prior = dict(_tables(text)["model-prior"][1:])
    assert prior["Prior as match weight (log2 odds)"] == format_value(math.log2(0.01 / 0.99))
    assert text.count('src="data:image/png;base64,') == 1


@pytest.mark.parametrize(
    ("level", "weight"),
    [
        ({"is_null_level": True}, 0.0),
        ({"m_probability": 0.5, "u_probability": 0.125}, 2.0),
        ({"m_probability": 0.0, "u_probability": 0.5}, float("-inf")),
        ({"u_probability": 0.5}, None),
        ({"m_probability": 0.5}, None),
    ],
)
def test_level_weight_is_log2_m_over_u(level: dict, weight: float | None) -> None:
    model = {"comparisons": [{"output_column_name": "x", "comparison_levels": [level]}]}
    assert level_weights(model)[0]["weight"] == weight


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "n/a"), (1234567, "1,234,567"), (0.5, "0.5"), (3.0, "3"), (float("nan"), "n/a")],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("current", "previous", "text"),
    [(5, 2, "+3"), (2, 5, "-3"), (1.0, 1.0, "0"), (0.5, None, "n/a"), ("x", 1, "n/a")],
)
def test_format_delta(current: Any, previous: Any, text: str) -> None:
    assert format_delta(current, previous) == text
