"""Clerical labels: import and id mapping, labels-based metrics by hand, Splink's
fake_1000 labels over the real ingestion, estimating m from labels, and the labelling
tool."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import pandas as pd
import pytest

from assets.evaluation import build_labelling_assets
from benchmarks.datasets import FAKE_1000_DOB_RANGE, FAKE_1000_FILE, shared_data_dir
from linkage.config import ProjectConfig
from linkage.model.training_options import TrainingOptions
from linkage.tables import CLERICAL_LABEL_MATCHES, CLERICAL_LABELS
from orchestration.build import build_assets, build_resources
from tests.projects import write_project_file
from training.label_evaluation import evaluate_against_labels, labels_judged_pairs_sql
from training.labels import LabelsError, load_labels
from training.threshold_curve import curve_from_judged_pairs
from training.train import train_linkage_model

FAKE_1000_LABELS = "fake_1000_labels.csv"
FAKE_1000_FIELDS = {
    "first_name": "first_name",
    "last_name": "surname",
    "date_of_birth": {"column": "dob", "format": "%Y-%m-%d"},
    "city": "city",
    "email": "email",
}
"""fake_1000's columns as benchmarks/accuracy.py maps them."""


def _probability(weight: float) -> float:
    return 2**weight / (1 + 2**weight)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Two sources: crm records 1, 2, 3 (and 9, quarantined) and shop records 1, 2."""
    con = duckdb.connect(str(tmp_path / "labels.duckdb"))
    con.execute(
        "CREATE TABLE customer_records "
        "(unique_id VARCHAR, source_system VARCHAR, source_record_id VARCHAR)"
    )
    records = [("crm", "1"), ("crm", "2"), ("crm", "3"), ("shop", "1"), ("shop", "2")]
    con.executemany(
        "INSERT INTO customer_records VALUES (?, ?, ?)",
        [[f"{source}:{rid}", source, rid] for source, rid in records],
    )
    con.execute(
        "CREATE TABLE quarantined_records (source_system VARCHAR, source_record_id VARCHAR)"
    )
    con.execute("INSERT INTO quarantined_records VALUES ('crm', '9'), ('crm', NULL)")
    yield con
    con.close()


def _write_labels(folder: Path, rows: list[dict], name: str = "labels.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _labels(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT unique_id_l, unique_id_r, clerical_match_score, is_match, label_rows "
        f"FROM {CLERICAL_LABELS} ORDER BY ALL"
    ).fetchall()


def test_single_source_ids_get_the_source_name(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write_labels(
        tmp_path,
        [
            {"unique_id_l": "2", "unique_id_r": "1", "clerical_match_score": 0.9},
            {"unique_id_l": "1", "unique_id_r": "9", "clerical_match_score": 0.1},
        ],
    )
    summary = load_labels(warehouse, path=path, sources=["crm"])
    assert summary.id_mapping == "single_source"
    assert (summary.pairs, summary.matches) == (2, 1)
    # Left and right are ordered; crm:9 is quarantined, still a delivered record.
    assert _labels(warehouse) == [
        ("crm:1", "crm:2", 0.9, True, 1),
        ("crm:1", "crm:9", 0.1, False, 1),
    ]


def test_source_columns_name_each_records_source(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write_labels(
        tmp_path,
        [
            {
                "unique_id_l": "1",
                "source_dataset_l": "shop",
                "unique_id_r": "1",
                "source_dataset_r": "crm",
                "clerical_match_score": 1,
            }
        ],
    )
    summary = load_labels(
        warehouse,
        path=path,
        sources=["crm", "shop"],
        source_dataset_l="source_dataset_l",
        source_dataset_r="source_dataset_r",
    )
    assert summary.id_mapping == "source_columns"
    assert _labels(warehouse) == [("crm:1", "shop:1", 1.0, True, 1)]


def test_meld_unique_ids_are_kept_as_they_are(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """What Splink's labelling tool writes for Meld's pairs."""
    path = _write_labels(
        tmp_path, [{"unique_id_l": "shop:2", "unique_id_r": "crm:3", "clerical_match_score": 0}]
    )
    summary = load_labels(warehouse, path=path, sources=["crm", "shop"])
    assert summary.id_mapping == "unique_id"
    assert _labels(warehouse) == [("crm:3", "shop:2", 0.0, False, 1)]


def test_repeated_pairs_are_averaged_and_self_pairs_dropped(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = _write_labels(
        tmp_path,
        [
            {"unique_id_l": "1", "unique_id_r": "2", "clerical_match_score": 1.0},
            {"unique_id_l": "2", "unique_id_r": "1", "clerical_match_score": 0.4},
            {"unique_id_l": "3", "unique_id_r": "3", "clerical_match_score": 1.0},
        ],
    )
    summary = load_labels(warehouse, path=path, sources=["crm"], match_score_threshold=0.8)
    # (1.0 + 0.4) / 2 = 0.7 < 0.8: not a match.
    assert (summary.rows, summary.pairs, summary.repeated_rows, summary.self_pairs) == (3, 1, 1, 1)
    assert _labels(warehouse) == [("crm:1", "crm:2", pytest.approx(0.7), False, 2)]
    assert warehouse.execute(f"SELECT count(*) FROM {CLERICAL_LABEL_MATCHES}").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (
            [{"unique_id_l": "1", "unique_id_r": "77", "clerical_match_score": 1}],
            {"sources": ["crm"]},
            r"1 id\(s\) name no record .* 'crm:77' \(row 1\)",
        ),
        (
            [{"unique_id_l": "1", "unique_id_r": "2", "clerical_match_score": 1}],
            {"sources": ["crm", "shop"]},
            "set labels.source_dataset_l and labels.source_dataset_r",
        ),
        (
            [
                {
                    "unique_id_l": "1",
                    "src_l": "crm",
                    "unique_id_r": "1",
                    "src_r": "pos",
                    "clerical_match_score": 1,
                }
            ],
            {"sources": ["crm", "shop"], "source_dataset_l": "src_l", "source_dataset_r": "src_r"},
            r"name a source that is not in the project .* src_r 'pos'",
        ),
        (
            [
                {"unique_id_l": "1", "unique_id_r": "2", "clerical_match_score": 1},
                {"unique_id_l": "1", "unique_id_r": "3", "clerical_match_score": "yes"},
            ],
            {"sources": ["crm"]},
            "clerical_match_score must be a number from 0 to 1; row 2: clerical_match_score 'yes'",
        ),
        (
            [{"unique_id_l": "1", "unique_id_r": "2", "score": 1}],
            {"sources": ["crm"]},
            r"missing column\(s\) \['clerical_match_score'\]",
        ),
    ],
    ids=["unknown_id", "ambiguous_ids", "unknown_source", "bad_score", "missing_column"],
)
def test_bad_labels_fail_naming_the_rows(
    warehouse: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    rows: list[dict],
    options: dict,
    message: str,
) -> None:
    path = _write_labels(tmp_path, rows)
    with pytest.raises(LabelsError, match=message) as error:
        load_labels(warehouse, path=path, **options)
    assert f"labels file '{path}'" in str(error.value)


def test_missing_labels_file_names_the_config_key(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    with pytest.raises(LabelsError, match="not found .*labels.path"):
        load_labels(warehouse, path=tmp_path / "nope.csv", sources=["crm"])


def test_label_metrics_hand_computed(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    con = warehouse
    # Customers: A = {crm:1, crm:2}, B = {crm:3, shop:1}, C = {shop:2}; crm:9 quarantined.
    con.execute("CREATE TABLE customer_clusters (unique_id VARCHAR, customer_id VARCHAR)")
    con.executemany(
        "INSERT INTO customer_clusters VALUES (?, ?)",
        [["crm:1", "A"], ["crm:2", "A"], ["crm:3", "B"], ["shop:1", "B"], ["shop:2", "C"]],
    )
    con.execute(
        "CREATE TABLE pairwise_matches (unique_id_l VARCHAR, unique_id_r VARCHAR, "
        "match_weight DOUBLE, match_probability DOUBLE, link_veto VARCHAR)"
    )
    scored = [
        ("crm:1", "crm:2", 9.0, None),  # p 0.998
        ("crm:3", "shop:1", 5.0, None),  # p 0.970
        ("crm:2", "crm:3", 5.0, "dob_differs"),  # vetoed: never a link
        ("crm:1", "shop:2", 6.0, None),  # p 0.985
    ]
    con.executemany(
        "INSERT INTO pairwise_matches VALUES (?, ?, ?, ?, ?)",
        [[left, right, w, _probability(w), veto] for left, right, w, veto in scored],
    )
    path = _write_labels(
        tmp_path,
        [
            # L1 match; same customer; scored above 0.95      -> cluster TP, pairwise TP
            {"unique_id_l": "crm:1", "unique_id_r": "crm:2", "clerical_match_score": 1.0},
            # L2 no match; same customer; scored above 0.95   -> cluster FP, pairwise FP
            {"unique_id_l": "crm:3", "unique_id_r": "shop:1", "clerical_match_score": 0.0},
            # L3 match; different customers; vetoed            -> cluster FN, pairwise FN
            {"unique_id_l": "crm:2", "unique_id_r": "crm:3", "clerical_match_score": 0.9},
            # L4 no match; different customers; above 0.95     -> cluster TN, pairwise FP
            {"unique_id_l": "crm:1", "unique_id_r": "shop:2", "clerical_match_score": 0.2},
            # L5 match; different customers; never scored      -> cluster FN, pairwise FN
            {"unique_id_l": "shop:1", "unique_id_r": "shop:2", "clerical_match_score": 0.8},
            # L6 match with a quarantined record: not clustered -> skipped
            {"unique_id_l": "crm:1", "unique_id_r": "crm:9", "clerical_match_score": 1.0},
        ],
    )
    load_labels(con, path=path, sources=["crm", "shop"])
    scores = evaluate_against_labels(
        con, clusters_table="customer_clusters", pairs_table="pairwise_matches", threshold=0.95
    )
    metrics = scores.as_metrics()
    # Cluster links: TP 1, FP 1, FN 2 -> P 1/2, R 1/3, F1 2 * 1/6 / (5/6) = 2/5.
    # Pairwise links: TP 1, FP 2, FN 2 -> P 1/3, R 1/3, F1 1/3.
    assert metrics == pytest.approx(
        {
            "label_pairs": 5.0,
            "label_pairs_skipped": 1.0,
            "label_matches": 3.0,
            "label_pairs_scored": 4.0,
            "label_cluster_precision": 1 / 2,
            "label_cluster_recall": 1 / 3,
            "label_cluster_f1": 2 / 5,
            "label_pairwise_precision": 1 / 3,
            "label_pairwise_recall": 1 / 3,
            "label_pairwise_f1": 1 / 3,
        }
    )
    # The curve over labelled pairs: linkable scored pairs by weight 9 T, 6 F, 5 F (L2);
    # three labelled matches, two never linkable (L3 vetoed, L5 unscored).
    # (TP, FP) = (1,0) (1,1) (1,2): F1 = 2 * 1/3 / (4/3) = 1/2, 2/5, 1/3 -> best at weight 9.
    curve = curve_from_judged_pairs(
        con,
        labels_judged_pairs_sql("pairwise_matches", "customer_clusters"),
        true_pairs=scores.matches,
        beta=1.0,
    )
    assert [(p.true_positives, p.false_positives) for p in curve.points] == [
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    assert curve.best is not None
    assert curve.best.threshold == pytest.approx(_probability(9.0))
    assert curve.best.f_beta == pytest.approx(0.5)
    assert curve.metrics("label_")["label_curve_true_pairs_not_scored"] == 2.0


# --------------------------------------------------------------------------- #
# Splink's fake_1000 and its clerical labels, over the real pipeline
# --------------------------------------------------------------------------- #


def _fake_1000(name: str) -> Path:
    path = shared_data_dir() / name
    assert path.is_file(), f"{path} not found: set MELD_SHARED_DATA"
    return path


def _fake_1000_project(folder: Path, *, mlflow_uri: str, experiment: str, **extra) -> ProjectConfig:
    source = {"path": str(_fake_1000(FAKE_1000_FILE)), "id_column": "unique_id"}
    return write_project_file(
        folder,
        {
            "sources": {"fake_1000": {**source, "fields": FAKE_1000_FIELDS}},
            "dob_range": FAKE_1000_DOB_RANGE,
            **extra,
        },
        mlflow_uri=mlflow_uri,
        experiment=experiment,
    )


@pytest.fixture(scope="module")
def fake_1000_ingested(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> ProjectConfig:
    """fake_1000 as the one source ``fake_1000``, ingested into customer_records."""
    from assets.ingestion import build_ingestion_assets

    project = _fake_1000_project(
        tmp_path_factory.mktemp("fake_1000"), mlflow_uri=mlflow_uri, experiment="labels-fake-1000"
    )
    result = dg.materialize(build_ingestion_assets(project), resources=build_resources(project))
    assert result.success
    return project


@pytest.mark.slow
@pytest.mark.parametrize(
    ("columns", "mapping"),
    [
        ({}, "single_source"),
        (
            {"source_dataset_l": "source_dataset_l", "source_dataset_r": "source_dataset_r"},
            "source_columns",
        ),
    ],
)
def test_fake_1000_labels_import(
    fake_1000_ingested: ProjectConfig, columns: dict, mapping: str
) -> None:
    labels = pd.read_csv(_fake_1000(FAKE_1000_LABELS))
    expected_matches = int((labels["clerical_match_score"] >= 0.5).sum())
    con = duckdb.connect(str(fake_1000_ingested.warehouse))
    try:
        summary = load_labels(
            con, path=_fake_1000(FAKE_1000_LABELS), sources=["fake_1000"], **columns
        )
        rows = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_match), "
            f"count(*) FILTER (WHERE unique_id_l NOT LIKE 'fake_1000:%') FROM {CLERICAL_LABELS}"
        ).fetchall()[0]
        quarantined = con.execute(
            f"SELECT count(*) FROM {CLERICAL_LABELS} WHERE unique_id_l NOT IN "
            "(SELECT unique_id FROM customer_records) OR unique_id_r NOT IN "
            "(SELECT unique_id FROM customer_records)"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert summary.id_mapping == mapping
    assert summary.rows == len(labels) and summary.pairs == len(labels)
    assert rows == (len(labels), expected_matches, 0)
    # Labels naming a record quarantined for having nothing to match on are kept.
    assert quarantined > 0


@pytest.mark.slow
def test_fake_1000_labels_with_another_source_name_fail(
    fake_1000_ingested: ProjectConfig,
) -> None:
    con = duckdb.connect(str(fake_1000_ingested.warehouse))
    try:
        with pytest.raises(LabelsError, match=r"source_dataset_l 'fake_1000'"):
            load_labels(
                con,
                path=_fake_1000(FAKE_1000_LABELS),
                sources=["fake1000"],
                source_dataset_l="source_dataset_l",
                source_dataset_r="source_dataset_r",
            )
    finally:
        con.close()


def _m_probabilities(model: dict) -> list[float]:
    return [
        level["m_probability"]
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        if "m_probability" in level
    ]


@pytest.mark.slow
def test_labels_estimate_m(fake_1000_ingested: ProjectConfig, tmp_path: Path) -> None:
    con = duckdb.connect(str(fake_1000_ingested.warehouse))
    try:
        load_labels(con, path=_fake_1000(FAKE_1000_LABELS), sources=["fake_1000"])
        plain = train_linkage_model(con, "customer_records", TrainingOptions(), tmp_path / "a")
        labelled = train_linkage_model(
            con,
            "customer_records",
            TrainingOptions(labels_table=CLERICAL_LABEL_MATCHES),
            tmp_path / "b",
        )
    finally:
        con.close()
    # The labels add one more m estimate to Splink's median: m changes, u does not.
    assert _m_probabilities(labelled.model) != pytest.approx(_m_probabilities(plain.model))


@pytest.mark.slow
def test_labels_evaluate_the_pipeline_and_labelling_tool_writes_html(
    tmp_path: Path, mlflow_uri: str, experiment_name: str
) -> None:
    """Labels only (no truth file): training estimates m from them too and the
    evaluation runs on them; then the labelling tool samples unlabelled pairs near the
    threshold into one HTML page."""
    subset = pd.read_csv(_fake_1000(FAKE_1000_LABELS), dtype=str).head(300)
    subset.to_csv(tmp_path / "labels.csv", index=False)
    project = _fake_1000_project(
        tmp_path,
        mlflow_uri=mlflow_uri,
        experiment=experiment_name,
        labels={
            "path": "labels.csv",
            "source_dataset_l": "source_dataset_l",
            "source_dataset_r": "source_dataset_r",
            "estimate_m": True,
        },
        evaluation={"worst_examples": 2},
    )
    result = dg.materialize(build_assets(project), resources=build_resources(project))
    assert result.success
    model_metadata = result.asset_materializations_for_node("linkage_model")[0].metadata
    assert model_metadata["m_from_clerical_labels"].value is True
    run = mlflow.MlflowClient(mlflow_uri).get_run(model_metadata["mlflow_run_id"].value)
    assert run.data.params["m_from_clerical_labels"] == "True"
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        metrics = dict(con.execute("SELECT metric, value FROM linkage_evaluation").fetchall())
        evidence = con.execute("SELECT DISTINCT evidence FROM evaluation_worst_pairs").fetchall()
        labelled = set(
            con.execute(f"SELECT unique_id_l, unique_id_r FROM {CLERICAL_LABELS}").fetchall()
        )
    finally:
        con.close()
    assert metrics["label_pairs"] + metrics["label_pairs_skipped"] == 300
    assert 0.0 <= metrics["label_cluster_f1"] <= 1.0
    assert "label_best_threshold" in metrics and "bcubed_f1" not in metrics
    assert evidence in ([], [("labels",)])

    tool = dg.materialize(
        build_labelling_assets(project),
        resources=build_resources(project),
        run_config={"ops": {"labelling_tool": {"config": {"pairs": 10, "band": 4.0}}}},
    )
    assert tool.success
    metadata = tool.asset_materializations_for_node("labelling_tool")[0].metadata
    path = Path(metadata["labelling_tool"].value)
    assert path == project.artifacts / "labelling" / "labelling_tool.html"
    html = path.read_text(encoding="utf-8")
    assert "Splink Clerical Labelling Tool" in html
    pairs = re.findall(r'"unique_id_l": "([^"]+)", "unique_id_r": "([^"]+)"', html)
    assert len(pairs) == metadata["pairs"].value == 10
    asked = {tuple(sorted(pair)) for pair in pairs}
    assert not asked & labelled  # pairs already labelled are not asked again
