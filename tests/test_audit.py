"""The run ledger over several real pipeline runs: a split, a merge, a failed run and a
new delivery; the change log, the CLI, tamper detection and reproduce."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from linkage.audit.ledger import ledger_rows, verify_ledger
from linkage.config import ProjectConfig
from linkage.ingest.deliveries import file_sha256
from linkage.tables import LEDGER_HEAD_FILE
from orchestration.build import build_assets, build_resources
from orchestration.cli import main
from tests.projects import demo_sources, write_project_file
from training.run_tracking import linkage_experiment_name

pytestmark = pytest.mark.slow


def _run(project: ProjectConfig) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_assets(project), resources=build_resources(project), raise_on_error=False
    )


def _rows(project: ProjectConfig, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _override(project: ProjectConfig, *args: str) -> None:
    argv = ["override", *args, "--steward", "auditor-test", "--reason", "test", "--config"]
    assert main([*argv, str(project.config_path)]) == 0


@pytest.fixture(scope="module")
def audited(small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run 1 on the demo; run 2 after a cannot-link splits a customer; run 3 after the
    steward revokes it (a merge); run 4 fails on a broken delivery; run 5 after a new
    CRM delivery."""
    folder = tmp_path_factory.mktemp("audit")
    landing = folder / "landing"
    shutil.copytree(small_demo / "landing", landing)
    shutil.copy(small_demo / "meld.yaml", folder / "generated.yaml")
    config = demo_sources(folder, "generated.yaml")
    config["sources"]["crm_contacts"]["path"] = str(landing / "crm_contacts*.csv")
    project = write_project_file(folder, config, mlflow_uri=mlflow_uri, experiment="test-audit")
    results = [_run(project)]
    members = _rows(
        project,
        "SELECT customer_id, list(unique_id ORDER BY unique_id) FROM customer_clusters "
        "GROUP BY 1 HAVING count(*) >= 3 AND bool_or(unique_id LIKE 'crm_contacts:%') "
        "ORDER BY 1 LIMIT 1",
    )
    customer_id, records = members[0]
    crm_member = next(m for m in records if m.startswith("crm_contacts:"))
    other = next(m for m in records if m != crm_member)
    _override(project, "cannot-link", crm_member, other)
    results.append(_run(project))
    _override(project, "revoke", crm_member, other)
    results.append(_run(project))

    crm = pd.read_csv(landing / "crm_contacts.csv", dtype=str, keep_default_na=False)
    crm.drop(columns=["email_address"]).to_csv(landing / "crm_contacts_broken.csv", index=False)
    results.append(_run(project))
    (landing / "crm_contacts_broken.csv").unlink()

    copy = crm[crm["contact_id"] == crm_member.split(":", 1)[1]].copy()
    copy["contact_id"] = "C7777777"
    copy.to_csv(landing / "crm_contacts_update.csv", index=False)
    results.append(_run(project))
    return {
        "project": project,
        "results": results,
        "customer_id": customer_id,
        "crm_member": crm_member,
        "other": other,
        "landing": landing,
    }


def _ledger(project: ProjectConfig):
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        return ledger_rows(con)


def test_every_run_is_in_the_ledger_with_its_facts(audited) -> None:
    project, results = audited["project"], audited["results"]
    assert [r.success for r in results] == [True, True, True, False, True]
    rows = _ledger(project)
    ok, failed = "succeeded", "failed"
    assert [r.status for r in rows] == [ok, ok, ok, failed, ok]
    assert [r.run_id for r in rows] == [r.run_id for r in results]
    last = rows[-1].entry
    assert last["model_version"] == _rows(project, "SELECT model_version FROM scoring_model")[0][0]
    assert last["model_alias"] and "challenger" in last["model_alias"]
    assert last["code_version"]["package_version"] == "0.1.0"
    assert last["config_hash"] == project.fingerprint()
    assert len(last["config_sha256"]) == 64
    assert last["config"]["sources"]["crm_contacts"]["id_column"] == "contact_id"
    files = {Path(i["file"]).name: i for i in last["inputs"]}
    update = audited["landing"] / "crm_contacts_update.csv"
    assert files[update.name]["sha256"] == file_sha256(update)
    assert files[update.name]["size_bytes"] == update.stat().st_size
    assert "crm_contacts_broken.csv" not in files, "a delivery that failed is not an input"
    counts = last["counts"]
    assert (
        counts["customers"]
        == _rows(project, "SELECT count(DISTINCT customer_id) FROM customer_clusters")[0][0]
    )
    assert counts["records_in"] == counts["records_staged"] + counts["quarantined"]
    assert counts["pairs_scored"] == _rows(project, "SELECT count(*) FROM pairwise_matches")[0][0]
    assert last["metrics"]["cluster_f1"] > 0.8
    assert last["started_at"] < last["ended_at"]
    assert last["thresholds"]["match_threshold"] == project.model.match_threshold


def test_a_failed_run_is_recorded_with_its_error(audited) -> None:
    failed = _ledger(audited["project"])[3]
    entry = failed.entry
    assert failed.status == "failed"
    assert entry["failed_step"] == "raw_crm_contacts"
    assert "crm_contacts_broken.csv" in entry["error"] and "email_address" in entry["error"]
    assert entry["counts"] == {}
    tracked = MlflowClient(audited["project"].mlflow.tracking_uri).get_run(entry["mlflow_run_id"])
    assert tracked.info.status == "FAILED" and tracked.data.tags["ledger.seq"] == "4"


def test_change_log_records_the_split_and_the_merge_with_evidence(audited) -> None:
    project = audited["project"]
    rows = _ledger(project)
    split_run, merge_run = rows[1], rows[2]
    assert split_run.entry["counts"]["split"] >= 1
    split = _rows(
        project,
        "SELECT id FROM customer_id_history WHERE run_id = ? AND event = 'split' "
        "AND related_id = ?",
        [split_run.run_id, audited["customer_id"]],
    )
    assert len(split) == 1
    split_id = split[0][0]
    merged = _rows(
        project,
        "SELECT related_id FROM customer_id_history WHERE run_id = ? AND event = 'merged' "
        "AND id = ?",
        [merge_run.run_id, split_id],
    )
    assert merged == [(audited["customer_id"],)]
    assert merge_run.entry["counts"]["merged"] >= 1
    evidence = _rows(
        project,
        "SELECT unique_id_l, unique_id_r, match_probability, evidence FROM merge_evidence "
        "WHERE run_id = ? AND merged_id = ?",
        [merge_run.run_id, split_id],
    )
    assert evidence, "a merge names the links that caused it"
    moved = {
        r[0]
        for r in _rows(
            project,
            "SELECT member FROM customer_record_moves WHERE run_id = ? AND from_id = ?",
            [merge_run.run_id, split_id],
        )
    }
    threshold = merge_run.entry["thresholds"]["match_threshold"]
    for left, right, probability, kind in evidence:
        assert kind == "model_link" and probability >= threshold
        assert (left in moved) != (right in moved), "evidence crosses the two merged parts"


def test_ledger_verifies_and_detects_an_edited_row(audited, tmp_path: Path) -> None:
    project = audited["project"]
    head = project.artifacts / LEDGER_HEAD_FILE
    assert main(["verify-ledger", "--config", str(project.config_path)]) == 0
    copy = tmp_path / "copy.duckdb"
    shutil.copy(project.warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "UPDATE linkage_runs SET entry = replace(entry, '\"merged\":', '\"merged\":9') "
            "WHERE seq = 3"
        )
        result = verify_ledger(con, head_file=head)
    assert not result.ok
    assert any(p.startswith("row #3") and "edited" in p for p in result.problems)


def test_each_run_has_a_report_in_mlflow_and_dagster(audited) -> None:
    project, results = audited["project"], audited["results"]
    last = _ledger(project)[-1].entry
    report = Path(last["run_report"])
    text = report.read_text(encoding="utf-8")
    assert last["dagster_run_id"] in text
    assert "https://" not in text and "<script src" not in text
    materialization = results[-1].asset_materializations_for_node("linkage_runs")[0]
    assert materialization.metadata["run_report"].value == str(report)
    client = MlflowClient(project.mlflow.tracking_uri)
    run = client.get_run(last["mlflow_run_id"])
    assert run.data.tags["dagster_run_id"] == last["dagster_run_id"]
    assert run.data.tags["ledger.seq"] == "5"
    assert run.data.metrics["customers"] == last["counts"]["customers"]
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "report")]
    assert artifacts == ["report/run_report.html"]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == linkage_experiment_name(build_resources(project)["mlflow"].target())


def test_cli_lists_shows_and_diffs_runs(audited, capsys) -> None:
    project = audited["project"]
    config = ["--config", str(project.config_path)]
    rows = _ledger(project)
    assert main(["runs", "--json", *config]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in listed] == [r.status for r in rows]
    assert main(["runs", *config]) == 0
    table = capsys.readouterr().out
    assert "failed" in table and "raw_crm_contacts" in table

    assert main(["run", rows[2].run_id[:8], *config]) == 0
    shown = capsys.readouterr().out
    assert "merged" in shown and "merge evidence" in shown and rows[2].run_id in shown

    assert main(["diff", rows[0].run_id, rows[1].run_id, "--json", *config]) == 0
    diff = json.loads(capsys.readouterr().out)
    moves = _rows(
        project, "SELECT count(*) FROM customer_record_moves WHERE run_id = ?", [rows[1].run_id]
    )[0][0]
    assert diff["moved_records"]["records_moved"] == moves > 0
    assert diff["same_customers"] is False
    assert diff["counts"]["split"]["delta"] >= 1
    assert main(["diff", rows[0].run_id, rows[1].run_id, *config]) == 0
    assert "moved to another customer" in capsys.readouterr().out

    assert main(["run", "not-a-run", *config]) == 1
    assert "no run" in capsys.readouterr().err


def test_reproduce_gives_the_same_customers(audited, capsys) -> None:
    project = audited["project"]
    config = ["--config", str(project.config_path)]
    rows = _ledger(project)
    assert main(["reproduce", rows[-1].run_id, "--json", *config]) == 0
    current = json.loads(capsys.readouterr().out)
    assert current["identical"] is True and current["inputs"] == "warehouse"
    assert current["records_in_other_customers"] == 0
    assert main(["reproduce", rows[-1].run_id, "--from-files", "--json", *config]) == 0
    refiled = json.loads(capsys.readouterr().out)
    assert refiled["inputs"] == "source files" and refiled["identical"] is True
    assert refiled["problems"] == [], "re-ingesting the files gives the records the run scored"
    # Run 2 had the cannot-link in force and fewer records: its inputs are re-read
    # from the files and only the decisions recorded by its end are applied.
    assert main(["reproduce", rows[1].run_id, "--json", *config]) == 0
    split = json.loads(capsys.readouterr().out)
    assert split["inputs"] == "source files" and split["identical"] is True
    assert split["overrides_applied"] == 1
    assert split["customers_reproduced"] == rows[1].entry["counts"]["customers"]
    assert main(["reproduce", rows[3].run_id, *config]) == 2
    assert "NOT REPRODUCIBLE" in capsys.readouterr().out


def test_reproduce_says_when_an_input_file_changed(audited, tmp_path: Path, capsys) -> None:
    project = audited["project"]
    rows = _ledger(project)
    update = audited["landing"] / "crm_contacts_update.csv"
    saved = update.read_bytes()
    try:
        update.write_bytes(saved.replace(b"C7777777", b"C7777778"))
        # Run 5's records are still in the warehouse: reproducing it needs no file...
        assert main(["reproduce", rows[-1].run_id, "--config", str(project.config_path)]) == 0
        capsys.readouterr()
        # ...but run 1 predates them, so the changed file makes run 1's inputs unavailable
        # only if run 1 used it; it did not, so run 1 still reproduces from its own files.
        assert main(["reproduce", rows[0].run_id, "--config", str(project.config_path)]) == 0
        capsys.readouterr()
        crm = audited["landing"] / "crm_contacts.csv"
        original = crm.read_bytes()
        crm.write_bytes(original + b"\n")
        try:
            assert main(["reproduce", rows[0].run_id, "--config", str(project.config_path)]) == 2
            out = capsys.readouterr().out
            assert "crm_contacts.csv changed since the run" in out
        finally:
            crm.write_bytes(original)
    finally:
        update.write_bytes(saved)
