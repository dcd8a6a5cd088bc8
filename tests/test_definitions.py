"""The code location loads, and every job resolves, for the shipped and a generated config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from linkage.config import REPO_ROOT, ProjectConfig
from orchestration.build import build_definitions

EXPECTED_JOBS = {"meld_pipeline", "ingest_sources", "train_model", "score_customers", "label_pairs"}


def _asset_names(defs: dg.Definitions) -> set[str]:
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


@pytest.mark.parametrize("config", ["config/demo.yaml"])
def test_shipped_config_loads_and_jobs_resolve(config: str) -> None:
    defs = build_definitions(REPO_ROOT / config)
    for name in EXPECTED_JOBS:
        assert defs.resolve_job_def(name).name == name
    assets = _asset_names(defs)
    for source in ("crm_contacts", "webshop_accounts", "support_tickets", "pos_loyalty"):
        assert {f"raw_{source}", f"staged_{source}"} <= assets
    assert {
        "customer_records",
        "quarantined_records",
        "linkage_model",
        "pairwise_matches",
        "customer_clusters",
        "golden_customers",
        "linkage_evaluation",
    } <= assets
    assert defs.resolve_schedule_def("nightly_pipeline")
    assert defs.resolve_sensor_def("landing_files_sensor")


def test_every_asset_has_a_description(demo_project: ProjectConfig) -> None:
    defs = build_definitions(demo_project.config_path)
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        description = graph.get(key).description
        assert description and len(description) > 40, key


def test_evaluation_asset_only_with_truth(write_project, small_demo: Path) -> None:
    from tests.projects import demo_sources

    sections = demo_sources(small_demo)
    project = write_project({"sources": sections["sources"]})
    assert "linkage_evaluation" not in _asset_names(build_definitions(project.config_path))


def test_workspace_points_at_the_definitions_module() -> None:
    text = (REPO_ROOT / "workspace.yaml").read_text(encoding="utf-8")
    assert "module_name: orchestration.definitions" in text


@pytest.mark.slow
def test_dg_check_defs_accepts_the_project() -> None:
    dg = Path(sys.executable).parent / "dg"
    result = subprocess.run(
        [str(dg), "check", "defs"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MELD_CONFIG": str(REPO_ROOT / "config/demo.yaml")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_materializes_another_config_where_it_says(
    small_demo: Path, write_project, tmp_path: Path
) -> None:
    """The README's command for running any config: MELD_CONFIG=... dagster asset materialize."""
    from tests.projects import demo_sources

    project = write_project({**demo_sources(small_demo), "warehouse": "elsewhere/w.duckdb"})
    dagster = Path(sys.executable).parent / "dagster"
    (tmp_path / "dagster_home").mkdir()
    result = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "orchestration.definitions", "--select", "*"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "MELD_CONFIG": str(project.config_path),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert project.warehouse == tmp_path / "elsewhere" / "w.duckdb"
    import duckdb

    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        customers = con.execute("SELECT count(DISTINCT customer_id) FROM golden_customers")
        assert customers.fetchall()[0][0] > 0
    finally:
        con.close()
