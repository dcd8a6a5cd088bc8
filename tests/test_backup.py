"""``meld backup`` and ``meld restore``: a consistent copy with a manifest of hashes, restored
into a fresh folder where the ledger verifies, runs reproduce and MLflow still works."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from mlflow.tracking import MlflowClient

from linkage.audit.ledger import append_run
from linkage.backup import BackupError, ProjectParts, create_backup, restore_backup, verify_backup
from linkage.backup.manifest import MANIFEST_FILE, hash_file
from linkage.config import ProjectConfig, load_project
from linkage.run_lock import hold_run_lock
from linkage.tables import LEDGER_HEAD_FILE
from orchestration.build import build_assets, build_resources
from orchestration.cli import main
from tests.projects import demo_sources
from training.mlflow_backup import artifacts_outside, relocate_store

# --- a tiny project, built by hand: fast checks of the backup's own rules -------------


def _tiny_project(folder: Path) -> ProjectParts:
    """A warehouse with a two-row ledger, artifacts, an MLflow-like sqlite store."""
    parts = ProjectParts(
        warehouse=folder / "warehouse.duckdb",
        artifacts=folder / "artifacts",
        mlflow_store=folder / "mlflow.db",
        mlflow_artifacts=folder / "mlartifacts",
        config_file=folder / "meld.yaml",
    )
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(parts.warehouse)) as con:
        con.execute("CREATE TABLE customers AS SELECT range AS id FROM range(5)")
        for run in ("run-1", "run-2"):
            append_run(
                con,
                run_id=run,
                status="succeeded",
                entry={"counts": {"customers": 5}},
                head_file=parts.artifacts / LEDGER_HEAD_FILE,
            )
    (parts.artifacts / "runs" / "run-2").mkdir(parents=True)
    (parts.artifacts / "runs" / "run-2" / "run_report.html").write_text("<p>report</p>")
    with sqlite3.connect(parts.mlflow_store) as con:
        con.execute("CREATE TABLE experiments (name TEXT, artifact_location TEXT)")
        con.execute("INSERT INTO experiments VALUES ('meld', ?)", [str(parts.mlflow_artifacts)])
    con.close()
    (parts.mlflow_artifacts / "r1" / "artifacts").mkdir(parents=True)
    (parts.mlflow_artifacts / "r1" / "artifacts" / "model.json").write_text('{"m": 1}')
    parts.config_file.write_text("warehouse: warehouse.duckdb\n")
    parts.erasure_key.write_text("k" * 64 + "\n")
    parts.erasure_key.chmod(0o600)
    return parts


def _elsewhere(folder: Path) -> ProjectParts:
    return ProjectParts(
        warehouse=folder / "data" / "wh.duckdb",
        artifacts=folder / "data" / "artifacts",
        mlflow_store=folder / "mlflow" / "store.db",
        mlflow_artifacts=folder / "mlflow" / "artifacts",
        config_file=folder / "meld.yaml",
    )


def test_backup_lists_every_file_with_size_hash_and_the_ledger_head(tmp_path: Path) -> None:
    parts = _tiny_project(tmp_path / "project")
    manifest = create_backup(parts, tmp_path / "backup", config_fingerprint="abc123")

    listed = {entry.path: entry for entry in manifest.files}
    assert set(listed) == {
        "warehouse/warehouse.duckdb",
        f"artifacts/{LEDGER_HEAD_FILE}",
        "artifacts/runs/run-2/run_report.html",
        "mlflow/mlflow.db",
        "mlartifacts/r1/artifacts/model.json",
        "config/meld.yaml",
        "keys/erasure_key",
    }
    for path, entry in listed.items():
        assert hash_file(tmp_path / "backup" / path) == entry.sha256
        assert (tmp_path / "backup" / path).stat().st_size == entry.size
    assert manifest.ledger.seq == 2 and manifest.ledger.verified
    assert manifest.tables["customers"] == 5 and manifest.config_fingerprint == "abc123"
    assert manifest.origins["mlflow_artifacts"] == str(parts.mlflow_artifacts)
    written = json.loads((tmp_path / "backup" / MANIFEST_FILE).read_text())
    assert written["ledger"]["row_hash"] == manifest.ledger.row_hash
    assert not list(tmp_path.glob(".backup.partial-*"))
    assert (tmp_path / "backup" / "keys" / "erasure_key").stat().st_mode & 0o777 == 0o600


def test_backup_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    parts = _tiny_project(tmp_path / "project")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "older.txt").write_text("keep me")
    with pytest.raises(BackupError, match="not an empty folder"):
        create_backup(parts, tmp_path / "backup", config_fingerprint="x")
    assert (tmp_path / "backup" / "older.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda b: (b / f"artifacts/{LEDGER_HEAD_FILE}").write_text("1 beef\n"), LEDGER_HEAD_FILE),
        (lambda b: (b / "mlflow/mlflow.db").unlink(), "mlflow/mlflow.db: missing"),
        (lambda b: (b / "artifacts/extra.html").write_text("?"), "extra.html: not in the manifest"),
    ],
    ids=["edited", "missing", "unlisted"],
)
def test_restore_refuses_a_damaged_backup_naming_the_file(tmp_path: Path, damage, named) -> None:
    create_backup(_tiny_project(tmp_path / "project"), tmp_path / "backup", config_fingerprint="x")
    damage(tmp_path / "backup")
    with pytest.raises(BackupError, match="nothing was restored") as refused:
        verify_backup(tmp_path / "backup")
    assert named in str(refused.value)


def test_a_backup_without_its_manifest_is_refused(tmp_path: Path) -> None:
    create_backup(_tiny_project(tmp_path / "project"), tmp_path / "backup", config_fingerprint="x")
    (tmp_path / "backup" / MANIFEST_FILE).unlink()
    with pytest.raises(BackupError, match="did not finish"):
        verify_backup(tmp_path / "backup")


def test_restore_over_data_needs_force_and_renames_the_old_files_aside(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    create_backup(_tiny_project(tmp_path / "project"), backup, config_fingerprint="x")
    target = _elsewhere(tmp_path / "target")
    target.warehouse.parent.mkdir(parents=True)
    target.warehouse.write_bytes(b"the previous warehouse")
    manifest = verify_backup(backup)

    with pytest.raises(BackupError, match="--force"):
        restore_backup(backup, manifest, target)
    assert target.warehouse.read_bytes() == b"the previous warehouse"

    outcome = restore_backup(backup, manifest, target, force=True, relocate=relocate_store)
    (aside,) = outcome.moved_aside
    assert aside.name.startswith("wh.duckdb.before-restore-")
    assert aside.read_bytes() == b"the previous warehouse"
    assert outcome.ledger is not None and outcome.ledger.ok and outcome.ledger.rows == 2
    assert (target.mlflow_artifacts / "r1" / "artifacts" / "model.json").is_file()
    assert target.erasure_key.read_text() == "k" * 64 + "\n"
    assert target.erasure_key.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(target.mlflow_store) as con:
        assert con.execute("SELECT artifact_location FROM experiments").fetchall() == [
            (str(target.mlflow_artifacts),)
        ]
    con.close()
    assert not list(target.warehouse.parent.glob("*.restoring-*"))


def test_restore_over_a_newer_ledger_names_the_rows_and_erasures_it_drops(
    tmp_path: Path,
) -> None:
    parts = _tiny_project(tmp_path / "project")
    create_backup(parts, tmp_path / "backup", config_fingerprint="x")
    with duckdb.connect(str(parts.warehouse)) as con:
        head = parts.artifacts / LEDGER_HEAD_FILE
        append_run(con, run_id="run-3", status="succeeded", entry={}, head_file=head)
        append_run(con, run_id="erasure-1", status="erased", entry={}, head_file=head)

    manifest = verify_backup(tmp_path / "backup")
    outcome = restore_backup(tmp_path / "backup", manifest, parts, force=True)
    assert [(row.seq, row.status) for row in outcome.dropped] == [(3, "succeeded"), (4, "erased")]
    assert outcome.ledger is not None and outcome.ledger.rows == 2 and outcome.ledger.ok


def test_relocate_store_moves_paths_under_the_old_root_only(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    old, new = "/old/mlartifacts", "/new/place/mlartifacts"
    with sqlite3.connect(store) as con:
        con.execute("CREATE TABLE experiments (artifact_location TEXT)")
        con.execute("CREATE TABLE runs (artifact_uri TEXT)")
        con.execute("CREATE TABLE trace_tags (key TEXT, value TEXT)")
        con.executemany(
            "INSERT INTO experiments VALUES (?)",
            [(old,), ("/old/mlruns/0",), ("/old/mlartifacts2",), (f"file://{old}",)],
        )
        con.execute("INSERT INTO runs VALUES (?)", [f"{old}/r1/artifacts"])
        con.executemany(
            "INSERT INTO trace_tags VALUES (?, ?)",
            [("mlflow.artifactLocation", f"{old}/t1"), ("note", f"{old}/t1")],
        )
    con.close()

    assert relocate_store(store, old, new) == 4
    with sqlite3.connect(store) as con:
        experiments = [r[0] for r in con.execute("SELECT * FROM experiments")]
        runs = [r[0] for r in con.execute("SELECT * FROM runs")]
        tags = dict(con.execute("SELECT key, value FROM trace_tags").fetchall())
    con.close()
    assert experiments == [new, "/old/mlruns/0", "/old/mlartifacts2", f"file://{new}"]
    assert runs == [f"{new}/r1/artifacts"]
    assert tags == {"mlflow.artifactLocation": f"{new}/t1", "note": f"{old}/t1"}


def test_backup_warns_of_mlflow_files_outside_the_artifact_folder(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    with sqlite3.connect(store) as con:
        con.execute("CREATE TABLE runs (artifact_uri TEXT)")
        con.executemany(
            "INSERT INTO runs VALUES (?)",
            [("/srv/mlartifacts/r1/artifacts",), ("file:///home/me/mlruns/0/r2/artifacts",)],
        )
    con.close()
    (warning,) = artifacts_outside(store, "/srv/mlartifacts")
    assert "1 of 2 runs" in warning and "/home/me/mlruns/0/r2/artifacts" in warning
    assert artifacts_outside(store, "/") == []


# --- a real pipeline run, backed up and restored elsewhere ----------------------------


def _relative_project(folder: Path, demo: Path) -> Path:
    """A project config whose warehouse, artifacts and MLflow store are relative paths."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "data_roots": [str(demo)],
        "warehouse": "warehouse.duckdb",
        "mlflow": {
            "tracking_uri": "sqlite:///mlflow.db",
            "experiment": "test-backup",
            "registered_model": "meld-test-backup",
        },
        **demo_sources(demo),
    }
    path = folder / "meld.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def backed_up(
    small_demo: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ProjectConfig, Path]:
    """One full pipeline run with its own MLflow store under the project folder, backed up."""
    root = tmp_path_factory.mktemp("backup")
    project = load_project(_relative_project(root / "project", small_demo))
    result = dg.materialize(build_assets(project), resources=build_resources(project))
    assert result.success
    assert main(["backup", str(root / "backup"), "--config", str(project.config_path)]) == 0
    return project, root / "backup"


def _fresh_copy(project: ProjectConfig, folder: Path) -> Path:
    folder.mkdir(parents=True)
    return Path(shutil.copy(project.config_path, folder / "meld.yaml"))


@pytest.mark.slow
def test_restored_copy_verifies_reproduces_and_keeps_mlflow_working(
    backed_up, tmp_path: Path, capsys
) -> None:
    project, backup = backed_up
    config = _fresh_copy(project, tmp_path / "copy")
    original = project.base_dir
    away = original.with_name(original.name + "-away")
    original.rename(away)  # nothing of the original may be needed
    try:
        assert main(["restore", str(backup), "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "ledger intact" in out and "artifact paths moved" in out
        assert main(["verify-ledger", "--config", str(config)]) == 0
        head = json.loads((backup / MANIFEST_FILE).read_text())["ledger"]["seq"]
        assert main(["reproduce", f"#{head}", "--config", str(config)]) == 0
        assert "IDENTICAL" in capsys.readouterr().out

        restored = load_project(config)
        client = MlflowClient(restored.mlflow.tracking_uri)
        (version,) = client.search_model_versions()
        model_files = Path(client.get_model_version_download_uri(version.name, version.version))
        assert restored.base_dir in model_files.parents and model_files.is_dir()
        assert client.list_artifacts(version.run_id)
        experiment = client.get_experiment_by_name(restored.mlflow.experiment)
        assert experiment.artifact_location == restored.mlflow.artifact_location
    finally:
        away.rename(original)


@pytest.mark.slow
def test_restore_refuses_a_tampered_backup_and_leaves_the_target_alone(
    backed_up, tmp_path: Path, capsys
) -> None:
    project, backup = backed_up
    tampered = tmp_path / "tampered"
    shutil.copytree(backup, tampered)
    report = next((tampered / "artifacts" / "runs").rglob("*.html"))
    report.write_text(report.read_text() + "<!-- edited -->")
    config = _fresh_copy(project, tmp_path / "copy")

    assert main(["restore", str(tampered), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert report.relative_to(tampered).as_posix() in err and "nothing was restored" in err
    assert sorted(p.name for p in config.parent.iterdir()) == ["meld.yaml"]


@pytest.mark.slow
def test_restore_over_a_project_needs_force_keeps_old_files_and_names_lost_erasures(
    backed_up, tmp_path: Path, capsys
) -> None:
    project, backup = backed_up
    config = _fresh_copy(project, tmp_path / "copy")
    assert main(["restore", str(backup), "--config", str(config)]) == 0
    restored = load_project(config)
    with duckdb.connect(str(restored.warehouse)) as con:  # an erasure after the backup
        append_run(
            con,
            run_id="erasure-after-backup",
            status="erased",
            entry={},
            head_file=restored.artifacts / LEDGER_HEAD_FILE,
        )
    before = hash_file(restored.warehouse)
    capsys.readouterr()

    assert main(["restore", str(backup), "--config", str(config)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["restore", str(backup), "--config", str(config), "--force"]) == 1
    out = capsys.readouterr().out
    assert "erasure-after-backup erased" in out and "erase them again" in out
    asides = sorted(config.parent.glob("*.before-restore-*"))
    assert {p.name.split(".before-restore-")[0] for p in asides} >= {
        "warehouse.duckdb",
        "artifacts",
        "mlflow.db",
        "mlartifacts",
    }
    (old_warehouse,) = [p for p in asides if p.name.startswith("warehouse.duckdb.")]
    assert hash_file(old_warehouse) == before


@pytest.mark.slow
def test_backup_is_refused_while_a_run_holds_the_warehouse(
    backed_up, tmp_path: Path, capsys
) -> None:
    project, _ = backed_up
    with hold_run_lock(project.warehouse, run_id="run-writing", job="meld_pipeline"):
        assert main(["backup", str(tmp_path / "b"), "--config", str(project.config_path)]) == 1
    assert "run-writing" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
