"""One run at a time per warehouse: a second run or write is refused before it writes,
reads use the published snapshot while a run writes, and a run killed while holding
the lock is recorded as failed by the next run (ledger, MLflow, Dagster).

A "run in another process" is a child Python process that takes the real run lock (and
the DuckDB file, as a running step does); "killed" is a real SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from mlflow.tracking import MlflowClient

from assets.resources import REFUSED_TAG, WarehouseResource
from linkage.audit.ledger import append_run, ledger_rows
from linkage.config import REPO_ROOT, ProjectConfig
from linkage.run_lock import (
    RunInProgressError,
    hold_run_lock,
    lock_path,
    run_lock_holder,
    stale_run,
    stale_runs,
)
from linkage.snapshot import publish_snapshot, snapshot_path
from linkage.warehouse import WarehouseBusyError, open_warehouse
from orchestration.build import build_resources
from orchestration.cli import main
from orchestration.jobs import JOBS, WAREHOUSE_WRITER_TAG
from training.stale_runs import KILLED_ERROR

_HOLDER = """
import duckdb, os, signal, sys, time
from pathlib import Path
from linkage.run_lock import hold_run_lock
warehouse, run_id, then = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with hold_run_lock(warehouse, run_id=run_id, job="meld_pipeline"):
    con = duckdb.connect(str(warehouse))  # a step writing, as a run does
    con.execute("CREATE TABLE IF NOT EXISTS written_by_holder AS SELECT 1 AS x")
    print("holding", flush=True)
    if then == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(120)
"""


@contextmanager
def _run_in_another_process(warehouse: Path, run_id: str) -> Iterator[subprocess.Popen]:
    """A child process that holds the warehouse's run lock (and its DuckDB file)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(warehouse), run_id, "hold"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding"
        yield child
    finally:
        child.kill()
        child.wait()


def _killed_run(warehouse: Path, run_id: str) -> None:
    """A child process that takes the run lock and is SIGKILLed while holding it."""
    child = subprocess.run(
        [sys.executable, "-c", _HOLDER, str(warehouse), run_id, "die"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _project(tmp_path: Path, write_project) -> ProjectConfig:
    (tmp_path / "crm.csv").write_text("id,mail\n1,a@example.com\n", encoding="utf-8")
    source = {"path": "crm.csv", "id_column": "id", "fields": {"email": "mail"}}
    return write_project({"sources": {"crm": source}})


def _ledger_warehouse(warehouse: Path, run_id: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        append_run(con, run_id=run_id, status="succeeded", entry={"counts": {"customers": 3}})


def test_a_second_holder_is_refused_with_who_holds_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with _run_in_another_process(warehouse, "run-a") as child:
        holder = run_lock_holder(warehouse)
        assert holder is not None and (holder.run_id, holder.pid) == ("run-a", child.pid)
        with (
            pytest.raises(RunInProgressError) as refused,
            hold_run_lock(warehouse, run_id="run-b", job="meld_pipeline"),
        ):
            pytest.fail("two holders at once")
    message = str(refused.value)
    assert message.startswith("run run-a (job meld_pipeline, started ")
    assert f"pid {child.pid}) is writing the warehouse {warehouse}" in message
    assert refused.value.holder == holder
    assert run_lock_holder(warehouse) is None, "the OS released the killed holder's lock"
    with hold_run_lock(warehouse, run_id="run-b", job="meld_pipeline") as lock:
        assert run_lock_holder(warehouse) == lock.info


def test_a_second_dagster_run_fails_before_writing_anything(
    tmp_path: Path, demo_project: ProjectConfig
) -> None:
    """The first run holds the lock from resource setup to its end (both of its steps
    run under it); a second run started meanwhile fails at resource setup, with the
    message, and the warehouse file is the same bytes afterwards."""
    warehouse = tmp_path / "warehouse.duckdb"
    waiting, go_on = threading.Event(), threading.Event()
    holders: list[str | None] = []

    @dg.asset
    def first_table(warehouse: WarehouseResource) -> None:
        with warehouse.connect() as con:
            con.execute("CREATE TABLE first_table AS SELECT 1 AS x")
        holders.append(getattr(run_lock_holder(Path(warehouse.path)), "run_id", None))

    @dg.asset(deps=[first_table])
    def second_table(warehouse: WarehouseResource) -> None:
        holders.append(getattr(run_lock_holder(Path(warehouse.path)), "run_id", None))
        waiting.set()
        assert go_on.wait(60)

    @dg.asset
    def intruder(warehouse: WarehouseResource) -> None:
        with warehouse.connect() as con:
            con.execute("CREATE TABLE intruder AS SELECT 1 AS x")

    resources = {"warehouse": WarehouseResource(path=str(warehouse))}
    results: list[dg.ExecuteInProcessResult] = []
    first = threading.Thread(
        target=lambda: results.append(
            dg.materialize([first_table, second_table], resources=resources)
        )
    )
    first.start()
    try:
        assert waiting.wait(60)
        before = _sha256(warehouse)
        instance = dg.DagsterInstance.ephemeral()
        second = dg.materialize(
            [intruder], resources=resources, instance=instance, raise_on_error=False
        )
        after = _sha256(warehouse)
    finally:
        go_on.set()
        first.join()
    assert results[0].success and holders == [results[0].run_id] * 2
    assert not second.success and before == after
    failure = next(e for e in second.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE")
    error = failure.event_specific_data.error
    cause = error.cause or error
    assert f"run {results[0].run_id} (job __ephemeral_asset_job__" in cause.message
    assert "is writing the warehouse" in cause.message
    assert instance.get_run_by_id(second.run_id).tags[REFUSED_TAG] == results[0].run_id
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "intruder" not in tables and "first_table" in tables

    # The failure sensor leaves a refused run out of the ledger: it wrote nothing.
    from orchestration.build import build_resources
    from orchestration.sensors import build_failure_sensor

    sensor = build_failure_sensor(demo_project)
    run_failure = next(e for e in second.all_events if e.event_type_value == "PIPELINE_FAILURE")
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=run_failure,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(second.run_id),
        resources={
            "warehouse": WarehouseResource(path=str(warehouse)),
            "mlflow": build_resources(demo_project)["mlflow"],
        },
    ).for_run_failure() as context:
        sensor(context)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert ledger_rows(con) == [], "a refused run is not a linkage run"


def test_a_write_command_is_refused_while_a_run_writes(
    tmp_path: Path, write_project, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, write_project)
    _ledger_warehouse(project.warehouse, "run-0")
    args = ["override", "cannot-link", "crm:1", "crm:2", "--steward", "ann", "--reason", "twins"]
    args += ["--allow-unknown", "--config", str(project.config_path)]
    with _run_in_another_process(project.warehouse, "run-a"):
        before = _sha256(project.warehouse)
        status = main(args)
        after = _sha256(project.warehouse)
    err = capsys.readouterr().err.strip()
    assert status == 1 and before == after
    assert err.startswith("run run-a (job meld_pipeline, started") and len(err.splitlines()) == 1
    assert main(args) == 0, "accepted once the run has ended"
    capsys.readouterr()
    assert main(["override", "list", "--json", "--config", str(project.config_path)]) == 0
    decisions = json.loads(capsys.readouterr().out)
    assert [(d["record_a"], d["record_b"]) for d in decisions] == [("crm:1", "crm:2")]


def test_reads_during_a_run_use_the_last_published_snapshot_and_say_so(
    tmp_path: Path, write_project, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, write_project)
    _ledger_warehouse(project.warehouse, "run-published")
    publish_snapshot(project.warehouse, run_id="run-published", job="meld_pipeline")
    _ledger_warehouse(project.warehouse, "run-not-yet-published")
    with _run_in_another_process(project.warehouse, "run-writing"):
        status = main(["runs", "--json", "--config", str(project.config_path)])
        captured = capsys.readouterr()
        lines: list[str] = []
        with open_warehouse(project.warehouse, read_only=True, notice=lines.append) as con:
            seen = [row.run_id for row in ledger_rows(con)]
    assert status == 0
    assert [run["run_id"] for run in json.loads(captured.out)] == ["run-published"]
    assert captured.err.count("\n") == 1 and lines == [captured.err.strip()]
    assert lines[0].startswith("run run-writing (job meld_pipeline, started ")
    assert (
        "is writing the warehouse; reading the snapshot published by run run-published"
        in (lines[0])
    )
    assert seen == ["run-published"]
    with open_warehouse(project.warehouse, read_only=True, notice=lines.append) as con:
        seen = [row.run_id for row in ledger_rows(con)]
    assert seen == ["run-published", "run-not-yet-published"], "the warehouse, once free"


def test_a_read_during_a_run_without_a_snapshot_says_which_run_writes(
    tmp_path: Path, write_project, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, write_project)
    _ledger_warehouse(project.warehouse, "run-0")
    with _run_in_another_process(project.warehouse, "run-writing"):
        statuses = [
            main([command, "--config", str(project.config_path)])
            for command in ("runs", "summary", "verify-ledger")
        ]
        with pytest.raises(WarehouseBusyError, match="run run-writing .* try again when it ends"):
            open_warehouse(project.warehouse, read_only=True).__enter__()
    err = capsys.readouterr().err.strip().splitlines()
    assert statuses == [1, 1, 1] and len(err) == 3
    for line in err:
        assert line.startswith("run run-writing (job meld_pipeline, started ")
        assert line.endswith(
            f"is writing the warehouse {project.warehouse}; try again when it ends"
        )


def test_a_snapshot_holds_what_was_committed_and_replaces_the_previous_one(
    tmp_path: Path,
) -> None:
    """Published from a warehouse whose last writes are still in its write-ahead log; a
    reader of the previous snapshot keeps reading it while the new one is published."""
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(3)")
    publish_snapshot(warehouse, run_id="run-1", job="meld_pipeline")
    old = duckdb.connect(str(snapshot_path(warehouse)), read_only=True)
    con.execute("INSERT INTO t SELECT range FROM range(3, 10)")  # in the WAL, not checkpointed
    publish_snapshot(warehouse, run_id="run-2", job="meld_pipeline")
    con.close()
    published = old.execute("SELECT count(*), max(run_id) FROM t, published_snapshot")
    assert published.fetchall() == [(3, "run-1")]
    old.close()
    with duckdb.connect(str(snapshot_path(warehouse)), read_only=True) as new:
        assert new.execute(
            "SELECT count(*), max(run_id) FROM t, published_snapshot"
        ).fetchall() == [(10, "run-2")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "warehouse.duckdb",
        "warehouse.published.duckdb",
    ]


def test_a_killed_run_is_recorded_as_failed_by_the_next_run(tmp_path: Path, write_project) -> None:
    """A run SIGKILLed while holding the lock, with a Dagster run STARTED and an MLflow
    run RUNNING: the next run succeeds, and has recorded it as failed everywhere, once."""
    project = _project(tmp_path, write_project)
    instance = dg.DagsterInstance.ephemeral()
    killed_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="meld_pipeline", run_id=killed_id, status=dg.DagsterRunStatus.STARTED
        )
    )
    client = MlflowClient(project.mlflow.tracking_uri)
    experiment = client.create_experiment(project.mlflow.experiment)
    training = client.create_run(experiment, tags={"dagster_run_id": killed_id}).info.run_id
    _killed_run(project.warehouse, killed_id)
    assert run_lock_holder(project.warehouse) is None
    assert stale_run(project.warehouse).run_id == killed_id

    @dg.asset
    def next_step(warehouse: WarehouseResource) -> None:
        with warehouse.connect() as con:
            con.execute("CREATE OR REPLACE TABLE next_step AS SELECT 1 AS x")

    for _ in range(2):  # the second run finds nothing left to record
        result = dg.materialize([next_step], resources=build_resources(project), instance=instance)
        assert result.success
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        rows = ledger_rows(con)
    assert [(r.run_id, r.status) for r in rows] == [(killed_id, "failed")]
    entry = rows[0].entry
    assert entry["error"] == KILLED_ERROR and entry["job_name"] == "meld_pipeline"
    assert entry["killed"]["noticed_by_run"] != killed_id
    assert entry["ended_at"] is None, "when it died is unknown: not when it was noticed"
    assert client.get_run(training).info.status == "FAILED"
    assert client.get_run(entry["mlflow_run_id"]).info.status == "FAILED"
    assert instance.get_run_by_id(killed_id).status == dg.DagsterRunStatus.FAILURE
    assert stale_runs(project.warehouse) == []
    lock_file = json.loads(lock_path(project.warehouse).read_text(encoding="utf-8"))
    assert lock_file["state"] == "released" and lock_file["unfinished"] == []


@dg.asset
def _one_table(warehouse: WarehouseResource) -> None:
    with warehouse.connect() as con:
        con.execute("CREATE OR REPLACE TABLE one_table AS SELECT 1 AS x")


def one_table_job() -> dg.JobDefinition:
    """A job over the warehouse named by MELD_TEST_WAREHOUSE, reconstructable by name."""
    resources = {"warehouse": WarehouseResource(path=os.environ["MELD_TEST_WAREHOUSE"])}
    defs = dg.Definitions(
        assets=[_one_table],
        jobs=[dg.define_asset_job("one_table_job")],
        resources=resources,
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def("one_table_job")


def test_dagster_job_execute_takes_the_lock_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``execute_job`` (what ``dagster job execute`` runs) sets resources up again after
    the run ended, to build its result: that must neither take the lock nor publish."""
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("MELD_TEST_WAREHOUSE", str(warehouse))
    caplog.set_level("INFO", logger="linkage.snapshot")
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        dg.execute_job(dg.reconstructable(one_table_job), instance=instance) as result,
    ):
        assert result.success
        published = [r for r in caplog.records if "published the warehouse snapshot" in r.message]
        assert len(published) == 1
        assert run_lock_holder(warehouse) is None


def test_a_failed_run_publishes_no_snapshot(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"

    @dg.asset
    def broken(warehouse: WarehouseResource) -> None:
        with warehouse.connect() as con:
            con.execute("CREATE TABLE half_done AS SELECT 1 AS x")
        raise RuntimeError("boom")

    result = dg.materialize(
        [broken],
        resources={"warehouse": WarehouseResource(path=str(warehouse))},
        raise_on_error=False,
    )
    assert not result.success
    assert not snapshot_path(warehouse).exists()
    assert run_lock_holder(warehouse) is None and stale_runs(warehouse) == []


def test_the_shipped_dagster_yaml_queues_meld_runs_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = REPO_ROOT / "config" / "dagster.yaml"
    (tmp_path / "dagster.yaml").write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dg.DagsterInstance.get()
    queue = instance.get_concurrency_config().run_queue_config
    ((key, value),) = WAREHOUSE_WRITER_TAG.items()
    assert queue.tag_concurrency_limits == [{"key": key, "value": value, "limit": 1}]
    assert yaml.safe_load(shipped.read_text(encoding="utf-8"))["concurrency"]
    for job in JOBS:
        assert job.tags == WAREHOUSE_WRITER_TAG, job.name


def test_reading_never_creates_a_lock_or_snapshot(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    with open_warehouse(warehouse, read_only=True) as con:
        assert con.execute("SELECT 42").fetchall() == [(42,)]
    assert sorted(os.listdir(tmp_path)) == ["warehouse.duckdb"]
