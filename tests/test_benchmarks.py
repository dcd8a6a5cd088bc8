"""The benchmarks: accuracy on real data sets, config overrides, the ablation table, the
recall ceiling by hand, and the ingestion and audit scripts."""

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

from benchmarks.ablation import (
    DEFAULT_VARIANT,
    default_variants,
    format_ablation,
    summarise,
)
from benchmarks.accuracy import benchmark_env, format_table, run_dataset
from benchmarks.ceiling import cluster_recall_ceiling
from benchmarks.datasets import (
    BENCHMARK_NATIONAL_ID_KEY,
    DEFAULT_DATASETS,
    FEBRL_FIELDS,
    REPORT_SEED,
    prepare_fake1000,
    prepare_febrl3,
    write_project,
)
from benchmarks.overrides import (
    apply_overrides,
    format_overrides,
    parse_override,
    parse_overrides,
    to_arguments,
)
from benchmarks.results import AccuracyRow, Failure, report
from linkage.config import ClusteringConfig, ConfigError, ModelConfig, load_project
from linkage.config.sources import QualityConfig

# Accuracy floors of the real pipeline with defaults at REPORT_SEED (the slow test below):
# the measured figures minus a noise margin of 0.02, so noise passes and a real drop fails.
# Measured with `python benchmarks/accuracy.py` (2026-12-03): febrl3_noid pairwise F1
# 0.992, cluster F1 0.973; fake1000 0.941 and 0.693.
FEBRL3_NOID_MIN_PAIRWISE_F1 = 0.972
FEBRL3_NOID_MIN_CLUSTER_F1 = 0.953
FAKE1000_MIN_PAIRWISE_F1 = 0.921
FAKE1000_MIN_CLUSTER_F1 = 0.673

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


# --------------------------------------------------------------------------- #
# Data sets and config overrides
# --------------------------------------------------------------------------- #


def test_default_data_sets_are_febrl_with_and_without_id_fake1000_and_demo() -> None:
    assert DEFAULT_DATASETS == [
        "febrl3",
        "febrl3_noid",
        "febrl4",
        "febrl4_noid",
        "fake1000",
        "demo10k",
    ]


def test_febrl_without_id_maps_every_field_but_the_national_id(tmp_path: Path) -> None:
    (tmp_path / "id").mkdir()
    (tmp_path / "noid").mkdir()
    with_id = prepare_febrl3(tmp_path / "id", demo_persons=0, seed=0)
    without = prepare_febrl3(tmp_path / "noid", demo_persons=0, seed=0, national_id=False)
    fields = without["sources"]["febrl3"]["fields"]
    assert "national_id" not in fields
    assert {**fields, "national_id": "soc_sec_id"} == with_id["sources"]["febrl3"]["fields"]
    assert "soc_sec_id" in pd.read_csv(tmp_path / "noid" / "febrl3.csv", nrows=1).columns


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("model.blocking=fixed", "model.blocking", "fixed"),
        ("clustering.link_vetoes=[]", "clustering.link_vetoes", []),
        ("clustering.link_vetoes=[a, b]", "clustering.link_vetoes", ["a", "b"]),
        ("quality.match_invalid_values=false", "quality.match_invalid_values", False),
        ("model.probability_floor=0", "model.probability_floor", 0),
        ("model.probability_floor=0.001", "model.probability_floor", 0.001),
        (" model . seed = 7", "model.seed", 7),
        ("model.comparisons={email: exact}", "model.comparisons", {"email": "exact"}),
        ("truth=", "truth", None),
        ("model.note=a=b", "model.note", "a=b"),
    ],
)
def test_an_override_is_a_dotted_key_and_a_yaml_value(text: str, key: str, value: object) -> None:
    assert parse_override(text) == (key, value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model.blocking", "expected KEY=VALUE"),
        ("=fixed", "dotted names"),
        ("model..blocking=fixed", "dotted names"),
        ("model.blocking=[fixed", "not valid YAML"),
    ],
)
def test_a_malformed_override_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_override(text)


def test_overrides_merge_into_sections_and_leave_the_rest_alone() -> None:
    config = {"model": {"seed": 42, "comparisons": {"email": "exact"}}, "warehouse": "w.duckdb"}
    merged = apply_overrides(
        config,
        parse_overrides(
            ["model.blocking=fixed", "clustering.link_vetoes=[]", "model.comparisons.phone=exact"]
        ),
    )
    assert merged == {
        "model": {
            "seed": 42,
            "comparisons": {"email": "exact", "phone": "exact"},
            "blocking": "fixed",
        },
        "warehouse": "w.duckdb",
        "clustering": {"link_vetoes": []},
    }
    assert config == {
        "model": {"seed": 42, "comparisons": {"email": "exact"}},
        "warehouse": "w.duckdb",
    }


def test_the_last_of_a_repeated_override_wins() -> None:
    assert parse_overrides(["model.seed=1", "model.seed=2"]) == {"model.seed": 2}
    assert apply_overrides({}, {"model": {"seed": 1}, "model.seed": 2}) == {"model": {"seed": 2}}


def test_an_override_inside_a_value_that_is_not_a_section_is_refused() -> None:
    with pytest.raises(ValueError, match="model.seed is 42, not a section"):
        apply_overrides({"model": {"seed": 42}}, {"model.seed.low": 1})


@pytest.mark.parametrize(
    "overrides",
    [
        {"model.blocking": "fixed", "clustering.link_vetoes": []},
        {"model.probability_floor": 0.0, "quality.match_invalid_values": False},
        {"a.b": "true", "a.c": "x: y", "a.d": ["p", "q r"], "a.e": None, "a.f": "é"},
    ],
)
def test_overrides_reach_a_child_process_unchanged(overrides: dict) -> None:
    arguments = to_arguments(overrides)
    assert arguments[::2] == ["--set"] * len(overrides)
    assert parse_overrides(arguments[1::2]) == overrides


def test_write_project_applies_overrides_and_meld_validates_them(tmp_path: Path) -> None:
    sections = prepare_fake1000(tmp_path, demo_persons=0, seed=0)
    overrides = parse_overrides(
        ["clustering.method=connected_components", "model.match_threshold=0.9"]
    )
    project = load_project(write_project(tmp_path, "fake1000", sections, 7, None, overrides))
    assert project.clustering.method == "connected_components"
    assert project.model.match_threshold == 0.9
    assert project.model.seed == 7  # the rest of the section is kept

    bad = write_project(tmp_path, "fake1000", sections, 7, None, {"model.no_such_knob": 1})
    with pytest.raises(ConfigError, match=r"model\.no_such_knob: Extra inputs"):
        load_project(bad)


def test_the_accuracy_report_names_its_seed_and_overrides() -> None:
    text = report(
        [],
        [Failure("fake1000", "boom")],
        demo_persons=10,
        seed=REPORT_SEED,
        overrides={"model.blocking": "fixed", "clustering.link_vetoes": []},
    )
    assert f"seed (demo data and models): {REPORT_SEED}." in text
    assert "config overrides: model.blocking=fixed, clustering.link_vetoes=[]." in text
    assert "FAILED fake1000: boom" in text
    assert format_overrides({}) == "none"


# --------------------------------------------------------------------------- #
# The ablation
# --------------------------------------------------------------------------- #

SECTIONS = {"model": ModelConfig, "quality": QualityConfig, "clustering": ClusteringConfig}


def test_each_ablation_variant_switches_one_knob_away_from_its_default() -> None:
    variants = default_variants()
    assert variants.pop(DEFAULT_VARIANT) == {}
    switched = set()
    for name, overrides in variants.items():
        assert len(overrides) == 1, name
        ((key, value),) = overrides.items()
        section, field = key.split(".")
        model = SECTIONS[section]
        assert field in model.model_fields, f"{name}: {key} is not a config knob"
        assert getattr(model(**{field: value}), field) != getattr(model(), field), name
        switched.add(key)
    assert switched == {
        "quality.match_invalid_values",
        "model.robust_comparisons",
        "model.blocking",
        "model.probability_floor",
        "clustering.link_vetoes",
        "clustering.method",
        "model.match_threshold",
    }


def _row(dataset: str, pairwise_f1: float, cluster_f1: float) -> AccuracyRow:
    return AccuracyRow(
        dataset=dataset,
        records=100,
        clustering="best_links",
        pairwise_precision=1.0,
        pairwise_recall=pairwise_f1,
        pairwise_f1=pairwise_f1,
        cluster_precision=1.0,
        cluster_recall=cluster_f1,
        cluster_f1=cluster_f1,
        seconds=1.0,
        peak_rss_mb=100.0,
        input_rows=100,
        quarantined_rows=0,
        prepare_seconds=0.1,
    )


ABLATION_OUTCOMES = {
    ("default", "febrl3_noid"): _row("febrl3_noid", 0.98, 0.90),
    ("default", "fake1000"): _row("fake1000", 0.90, 0.60),
    ("blocking_fixed", "febrl3_noid"): _row("febrl3_noid", 0.96, 0.86),
    ("blocking_fixed", "fake1000"): _row("fake1000", 0.80, 0.50),
    ("floor_off", "febrl3_noid"): _row("febrl3_noid", 0.97, 0.88),
    ("floor_off", "fake1000"): Failure("fake1000", "boom"),
}
ABLATION_DATA = ["febrl3_noid", "fake1000"]


def test_ablation_summary_means_across_data_sets_and_deltas_from_default() -> None:
    default, fixed, floor_off = summarise(
        ABLATION_OUTCOMES, ["default", "blocking_fixed", "floor_off"], ABLATION_DATA
    )
    assert default.mean_pairwise_f1 == pytest.approx(0.94)
    assert default.mean_cluster_f1 == pytest.approx(0.75)
    assert (default.delta_pairwise_f1, default.delta_cluster_f1) == (0.0, 0.0)
    assert fixed.mean_pairwise_f1 == pytest.approx(0.88)
    assert fixed.delta_pairwise_f1 == pytest.approx(-0.06)
    assert fixed.delta_cluster_f1 == pytest.approx(-0.07)
    # A failed run leaves no mean: a mean over fewer data sets would not compare.
    assert floor_off.pairwise_f1 == {"febrl3_noid": 0.97, "fake1000": None}
    assert floor_off.mean_pairwise_f1 is None and floor_off.delta_cluster_f1 is None


def test_ablation_without_the_default_variant_has_no_deltas() -> None:
    (fixed,) = summarise(ABLATION_OUTCOMES, ["blocking_fixed"], ABLATION_DATA)
    assert fixed.mean_cluster_f1 == pytest.approx(0.68)
    assert fixed.delta_pairwise_f1 is None and fixed.delta_cluster_f1 is None


def test_ablation_table_has_a_row_per_variant_under_data_set_headers() -> None:
    variants = ["default", "blocking_fixed", "floor_off"]
    summaries = summarise(ABLATION_OUTCOMES, variants, ABLATION_DATA)
    lines = format_ablation(summaries, ABLATION_DATA, ABLATION_OUTCOMES).splitlines()
    assert len(lines) == 3 + len(variants)
    assert re.split(r"\s{2,}", lines[0].strip()) == [*ABLATION_DATA, "mean", "delta vs default"]
    assert lines[1].split()[0] == "variant" and lines[1].count("pair F1") == 4
    assert set(lines[2]) == {"-", " "}
    cells = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    assert cells["default"] == ["0.980", "0.900", "0.900", "0.600", "0.940", "0.750"] + [
        "+0.000",
        "+0.000",
    ]
    assert cells["blocking_fixed"][4:] == ["0.880", "0.680", "-0.060", "-0.070"]
    assert cells["floor_off"] == ["0.970", "0.880", "FAIL", "FAIL", "-", "-", "-", "-"]
    # Every line ends where its columns do: numbers are right-aligned under their header.
    assert len({len(line) for line in lines[1:]}) == 1


# --------------------------------------------------------------------------- #
# The real pipeline against its floors
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_default_pipeline_keeps_its_accuracy_on_febrl3_without_id_and_fake1000(
    tmp_path: Path,
) -> None:
    floors = {
        "febrl3_noid": (FEBRL3_NOID_MIN_PAIRWISE_F1, FEBRL3_NOID_MIN_CLUSTER_F1),
        "fake1000": (FAKE1000_MIN_PAIRWISE_F1, FAKE1000_MIN_CLUSTER_F1),
    }
    measured = {}
    for name in floors:
        row = run_dataset(name, tmp_path / name, demo_persons=0, seed=REPORT_SEED)
        measured[name] = (round(row.pairwise_f1, 3), round(row.cluster_f1, 3))
    assert all(
        pair >= floors[name][0] and cluster >= floors[name][1]
        for name, (pair, cluster) in measured.items()
    ), f"pairwise and cluster F1 {measured} fell below the floors {floors}"
