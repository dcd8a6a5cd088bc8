"""The run ledger's hash chain, on a real DuckDB file, and what goes into an entry."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from linkage.audit.ledger import (
    GENESIS_HASH,
    LedgerError,
    append_run,
    find_run,
    has_run,
    ledger_rows,
    previous_success,
    verify_ledger,
)
from linkage.audit.run_facts import partition_sha256, redact_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, Path]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    head = tmp_path / "artifacts" / "ledger_head.txt"
    for n, status in enumerate(["succeeded", "failed", "succeeded"], start=1):
        append_run(
            con,
            run_id=f"run-{n}-{'ab' * n}",
            status=status,
            entry={"counts": {"customers": 10 * n}, "error": None if n != 2 else "boom"},
            head_file=head,
        )
    yield con, head
    con.close()


def test_rows_chain_to_each_other_and_verify(ledger) -> None:
    con, head = ledger
    rows = ledger_rows(con)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in rows[1:]] == [r.row_hash for r in rows[:-1]]
    assert len({r.row_hash for r in rows}) == 3
    result = verify_ledger(con, head_file=head)
    assert result.ok and result.rows == 3 and result.head_seq == 3
    assert head.read_text().splitlines()[-1] == f"3 {rows[-1].row_hash}"


@pytest.mark.parametrize(
    ("tamper", "row", "words"),
    [
        ("UPDATE linkage_runs SET entry = replace(entry, '20', '21') WHERE seq = 2", 2, "edited"),
        ("UPDATE linkage_runs SET status = 'succeeded' WHERE seq = 2", 2, "edited"),
        ("UPDATE linkage_runs SET run_id = 'other' WHERE seq = 1", 1, "edited"),
        ("DELETE FROM linkage_runs WHERE seq = 2", 3, "deleted or inserted"),
    ],
)
def test_an_edited_or_deleted_row_breaks_the_chain(ledger, tamper, row, words) -> None:
    con, head = ledger
    con.execute(tamper)
    result = verify_ledger(con, head_file=head)
    assert not result.ok
    assert any(p.startswith(f"row #{row}") and words in p for p in result.problems), result


def test_rewriting_a_row_with_a_fresh_hash_breaks_the_next_link(ledger) -> None:
    con, head = ledger
    from linkage.audit.ledger import row_hash

    first = ledger_rows(con)[0]
    forged = first.entry_text.replace("10", "99")
    digest = row_hash(
        seq=1,
        run_id=first.run_id,
        status=first.status,
        recorded_at=first.recorded_at,
        entry_text=forged,
        prev_hash=first.prev_hash,
    )
    con.execute("UPDATE linkage_runs SET entry = ?, row_hash = ? WHERE seq = 1", [forged, digest])
    problems = verify_ledger(con, head_file=head).problems
    assert any(p.startswith("row #2") and "prev_hash" in p for p in problems)


def test_dropping_the_newest_row_is_caught_by_the_head_file(ledger) -> None:
    con, head = ledger
    con.execute("DELETE FROM linkage_runs WHERE seq = 3")
    assert verify_ledger(con).ok, "the chain alone cannot see a truncated tail"
    problems = verify_ledger(con, head_file=head).problems
    assert len(problems) == 1 and "last recorded row #3" in problems[0]


def test_runs_are_found_by_prefix_or_row_number(ledger) -> None:
    con, _ = ledger
    assert find_run(con, "run-2").status == "failed"
    assert find_run(con, "#3").run_id == "run-3-ababab"
    with pytest.raises(LedgerError, match="names 3 runs"):
        find_run(con, "run-")
    with pytest.raises(LedgerError, match="no run"):
        find_run(con, "nope")
    assert has_run(con, "run-2-abab", status="failed")
    assert not has_run(con, "run-2-abab", status="succeeded")
    assert previous_success(con, before_seq=3).seq == 1


def test_status_must_be_known(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con, pytest.raises(ValueError):
        append_run(con, run_id="r", status="done", entry={})


def test_the_application_never_updates_or_deletes_ledger_rows() -> None:
    """Append-only: no module writes to linkage_runs except by INSERT."""
    writes = re.compile(r"\b(UPDATE|DELETE|TRUNCATE|DROP|REPLACE TABLE)\b")
    ledger = re.compile(r"linkage_runs|LINKAGE_RUNS")
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for folder in ("linkage", "training", "assets", "orchestration")
        for path in (ROOT / folder).rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if writes.search(line) and ledger.search(line)
    ]
    assert offenders == []


def test_secrets_are_redacted_from_the_config() -> None:
    config = {
        "mlflow": {"tracking_uri": "postgresql://meld:s3cret@db:5432/mlflow"},
        "sources": {"crm": {"database": {"url_env": "CRM_URL", "password": "hunter2"}}},
        "api_token": "abc",
        "national_id_key_env": "MELD_NATIONAL_ID_KEY",
    }
    redacted = redact_config(config)
    text = repr(redacted)
    assert "s3cret" not in text and "hunter2" not in text and "abc" not in text
    assert redacted["mlflow"]["tracking_uri"] == "postgresql://meld:***@db:5432/mlflow"
    assert redacted["sources"]["crm"]["database"]["url_env"] == "CRM_URL"
    assert redacted["national_id_key_env"] == "MELD_NATIONAL_ID_KEY"


def test_partition_hash_ignores_ids_but_not_grouping(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute(
            "CREATE TABLE a AS SELECT * FROM (VALUES ('x', 'c1'), ('y', 'c1'), ('z', 'c2')) "
            "AS t(unique_id, customer_id)"
        )
        con.execute(
            "CREATE TABLE b AS SELECT * FROM (VALUES ('z', 'k9'), ('y', 'k8'), ('x', 'k8')) "
            "AS t(unique_id, customer_id)"
        )
        con.execute(
            "CREATE TABLE c AS SELECT * FROM (VALUES ('x', 'c1'), ('y', 'c2'), ('z', 'c2')) "
            "AS t(unique_id, customer_id)"
        )
        assert partition_sha256(con, "a") == partition_sha256(con, "b")
        assert partition_sha256(con, "a") != partition_sha256(con, "c")


def test_failed_run_is_recorded_by_hook_and_sensor_without_duplicates(
    write_project, tmp_path: Path
) -> None:
    """A source with a missing column fails its step: the hook records the run; the
    daemon's sensor, seeing the same failure, adds nothing; on a warehouse without the
    row the sensor records it."""
    import dagster as dg
    from mlflow.tracking import MlflowClient

    from assets.resources import WarehouseResource
    from orchestration.build import build_assets, build_resources
    from orchestration.sensors import build_failure_sensor

    (tmp_path / "crm.csv").write_text("id,name\n1,Ann\n", encoding="utf-8")
    project = write_project(
        {"sources": {"crm": {"path": "crm.csv", "id_column": "id", "fields": {"email": "mail"}}}}
    )
    instance = dg.DagsterInstance.ephemeral()
    raw = [a for a in build_assets(project) if dg.AssetKey("raw_crm") in a.keys]
    result = dg.materialize(
        raw, resources=build_resources(project), instance=instance, raise_on_error=False
    )
    assert not result.success
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        rows = ledger_rows(con)
    assert [(r.run_id, r.status) for r in rows] == [(result.run_id, "failed")]
    entry = rows[0].entry
    assert entry["failed_step"] == "raw_crm" and "mail" in entry["error"]
    tracked = MlflowClient(project.mlflow.tracking_uri).get_run(entry["mlflow_run_id"])
    assert tracked.info.status == "FAILED"
    assert tracked.data.tags["dagster_run_id"] == result.run_id
    assert tracked.data.tags["status"] == "failed"

    sensor = build_failure_sensor(project)
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
    ).for_run_failure()
    mlflow = build_resources(project)["mlflow"]
    sensor(context, warehouse=WarehouseResource(path=str(project.warehouse)), mlflow=mlflow)
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        assert len(ledger_rows(con)) == 1, "the sensor does not record a run twice"
    other = tmp_path / "other.duckdb"
    sensor(context, warehouse=WarehouseResource(path=str(other)), mlflow=mlflow)
    with duckdb.connect(str(other), read_only=True) as con:
        recorded = ledger_rows(con)
    assert [(r.run_id, r.status) for r in recorded] == [(result.run_id, "failed")]
    assert "mail" in recorded[0].entry["error"]
