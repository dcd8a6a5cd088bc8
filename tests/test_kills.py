"""Runs that survive kills: the pipeline, run as an operator runs it (``dagster job
execute`` in a process of its own, with its own DAGSTER_HOME), is SIGKILLed at points the
test chooses, then run again.

One small demo project goes through three runs: killed while MLflow creates its store,
killed between its ledger row and the ledger head, and a last one left to finish. A
second project over the same data runs once, uninterrupted, as the reference. (A kill
inside a group of tables is proven on its own, faster, in tests/test_atomic.py.)

The kill points are hooks installed from outside Meld (``tests/kill_points/
sitecustomize.py``, on the subprocess's ``PYTHONPATH`` only): a hook writes a marker
file and waits, and the test sends SIGKILL to the run's process group. Chosen this way
because both points last microseconds (mid-migration; between a ledger commit and a
file write), which no polling from outside can hit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from linkage.audit.ledger import ledger_rows, verify_ledger
from linkage.config import ProjectConfig
from linkage.demo.generator import generate
from linkage.tables import CUSTOMER_CLUSTERS, LEDGER_HEAD_FILE
from orchestration.cli import main as meld
from tests.projects import demo_sources, write_project_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KILL_POINTS = Path(__file__).resolve().parent / "kill_points"
PERSONS = 40
RUN_TIMEOUT = 600.0


def _project(folder: Path, demo: Path) -> ProjectConfig:
    folder.mkdir(parents=True, exist_ok=True)
    return write_project_file(
        folder,
        demo_sources(demo),
        mlflow_uri=f"sqlite:///{folder / 'mlflow.db'}",
        experiment="kills",
    )


def _run(project: ProjectConfig, kill_at: str | None = None) -> tuple[int | None, str]:
    """Run meld_pipeline in a process group of its own; with ``kill_at``, SIGKILL the
    group when the run reaches that point.

    Returns:
        The exit status (None when killed) and the run's output.
    """
    folder = project.config_path.parent
    home = folder / "dagster_home"
    home.mkdir(exist_ok=True)
    marker = folder / "kill_point_reached"
    marker.unlink(missing_ok=True)
    log = folder / f"run-{kill_at or 'complete'}.log"
    env = {
        **os.environ,
        "MELD_CONFIG": str(project.config_path),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(KILL_POINTS), str(ROOT)]),
        "MELD_TEST_KILL_MARKER": str(marker),
    }
    env.pop("MELD_TEST_KILL_AT", None)
    if kill_at:
        env["MELD_TEST_KILL_AT"] = kill_at
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("job", "execute", "-m", "orchestration.definitions", "-j", "meld_pipeline"),
    ]
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + RUN_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if kill_at and marker.exists():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return None, log.read_text(encoding="utf-8")
            time.sleep(0.05)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"run did not end in {RUN_TIMEOUT}s; log in {log}")
    output = log.read_text(encoding="utf-8")
    if kill_at:
        pytest.fail(
            f"the run ended ({process.returncode}) before reaching {kill_at}:\n" + output[-4000:]
        )
    return process.returncode, output


def _partition(project: ProjectConfig) -> set[frozenset[str]]:
    """Which records are one customer, whatever the customers' ids."""
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        rows = con.execute(f"SELECT customer_id, unique_id FROM {CUSTOMER_CLUSTERS}").fetchall()
    customers: dict[str, set[str]] = {}
    for customer, record in rows:
        customers.setdefault(customer, set()).add(record)
    return {frozenset(records) for records in customers.values()}


def _verify(project: ProjectConfig) -> tuple[int, list[str], list[str]]:
    """``meld verify-ledger``'s exit status, and the problems and notes it found."""
    status = meld(["verify-ledger", "--config", str(project.config_path)])
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        result = verify_ledger(con, head_file=project.artifacts / LEDGER_HEAD_FILE)
    return status, result.problems, result.notes


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kills_demo")
    generate(out, persons=PERSONS, seed=11)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, demo: Path) -> set[frozenset[str]]:
    """The customers of one uninterrupted run of the same data (in this process: the
    customers depend on the data and the config, not on how the run is launched)."""
    import dagster as dg

    from orchestration.build import build_assets, build_resources

    project = _project(tmp_path_factory.mktemp("reference"), demo)
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return _partition(project)


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory, demo: Path) -> dict:
    """One project through two kills and a last run; what each kill left, looked at
    right after it."""
    project = _project(tmp_path_factory.mktemp("killed"), demo)
    folder = project.config_path.parent
    seen: dict = {"project": project}

    _run(project, "mlflow_store")
    seen["store_after_kill"] = sorted(p.name for p in folder.glob("mlflow.db*"))

    _run(project, "ledger_head")
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        seen["rows_after_head_kill"] = [(r.run_id, r.status) for r in ledger_rows(con)]
    seen["verify_after_head_kill"] = _verify(project)

    seen["last_run"] = _run(project)
    seen["store_files"] = sorted(p.name for p in folder.glob("mlflow.db*"))
    return seen


def test_a_kill_while_mlflow_creates_its_store_leaves_no_broken_store(killed) -> None:
    """Killed mid-migration: only the scratch copy exists, never a half-made mlflow.db;
    the next run clears the scratch copy and works on a complete store."""
    (scratch,) = killed["store_after_kill"]
    assert scratch.startswith("mlflow.db.creating-")
    assert killed["store_files"] == ["mlflow.db"]


def test_a_kill_between_ledger_row_and_head_is_no_tampering(killed) -> None:
    assert killed["rows_after_head_kill"][-1][1] == "succeeded", "the row was committed"
    status, problems, notes = killed["verify_after_head_kill"]
    assert (status, problems) == (0, [])
    assert any("behind the table" in n and "not tampering" in n for n in notes), notes


def test_the_run_after_the_kills_succeeds_with_the_customers_of_an_uninterrupted_run(
    killed, reference
) -> None:
    status, output = killed["last_run"]
    assert status == 0, output[-4000:]
    assert _partition(killed["project"]) == reference
    assert _verify(killed["project"]) == (0, [], []), "the head is current again"


def test_the_run_killed_before_the_ledger_is_recorded_as_failed(killed) -> None:
    """The run lock (linkage/run_lock.py) tells the next run that the first run died:
    it is recorded as failed, once; the run killed after its row keeps that row."""
    with duckdb.connect(str(killed["project"].warehouse), read_only=True) as con:
        rows = ledger_rows(con)
    assert [r.status for r in rows] == ["failed", "succeeded", "succeeded"]
    assert rows[1].run_id == killed["rows_after_head_kill"][-1][0]
    assert "killed" in rows[0].entry["error"]
