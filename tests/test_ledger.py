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
    mlflow = build_resources(project)["mlflow"]

    def evaluate(warehouse: Path) -> None:
        # The warehouse resource has a setup and teardown: resources go into the context.
        with dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"warehouse": WarehouseResource(path=str(warehouse)), "mlflow": mlflow},
        ).for_run_failure() as context:
            sensor(context)

    evaluate(project.warehouse)
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        assert len(ledger_rows(con)) == 1, "the sensor does not record a run twice"
    other = tmp_path / "other.duckdb"
    evaluate(other)
    with duckdb.connect(str(other), read_only=True) as con:
        recorded = ledger_rows(con)
    assert [(r.run_id, r.status) for r in recorded] == [(result.run_id, "failed")]
    assert "mail" in recorded[0].entry["error"]


def test_the_head_file_is_one_line_replaced_whole(ledger) -> None:
    con, head = ledger
    assert head.read_text(encoding="utf-8") == f"3 {ledger_rows(con)[-1].row_hash}\n"
    assert sorted(p.name for p in head.parent.iterdir()) == [head.name], "no temporary left"


def _append_without_head(con, head, monkeypatch, caplog, run_id: str = "run-4") -> None:
    """Append a row while the head file cannot be replaced (a full or read-only disk)."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patched, caplog.at_level("WARNING", "linkage.audit.ledger"):
        patched.setattr("linkage.audit.ledger_head.os.replace", refuse)
        append_run(con, run_id=run_id, status="succeeded", entry={}, head_file=head)


def test_a_missed_head_write_is_reported_as_such_and_repaired_not_called_tampering(
    ledger, monkeypatch, caplog
) -> None:
    con, head = ledger
    _append_without_head(con, head, monkeypatch, caplog)
    assert [r.seq for r in ledger_rows(con)] == [1, 2, 3, 4], "the row stays"
    assert "row 4 is committed but its head could not be written" in caplog.text
    assert str(head) in caplog.text and "Permission denied" in caplog.text
    assert head.read_text(encoding="utf-8").startswith("3 "), "the old head is intact"

    result = verify_ledger(con, head_file=head)
    assert result.ok, result.problems
    assert any("1 row(s) behind" in n and "not tampering" in n for n in result.notes)
    assert any("--repair-head" in n for n in result.notes)

    repaired = verify_ledger(con, head_file=head, repair_head=True)
    assert repaired.ok and any("head repaired" in n for n in repaired.notes)
    assert head.read_text(encoding="utf-8") == f"4 {ledger_rows(con)[-1].row_hash}\n"
    again = verify_ledger(con, head_file=head)
    assert again.ok and again.notes == []


def test_the_next_append_rewrites_a_head_left_behind(ledger, monkeypatch, caplog) -> None:
    con, head = ledger
    _append_without_head(con, head, monkeypatch, caplog)
    append_run(con, run_id="run-5", status="succeeded", entry={}, head_file=head)
    result = verify_ledger(con, head_file=head)
    assert result.ok and result.notes == []


def test_rows_after_a_lagging_head_that_do_not_chain_are_tampering(
    ledger, monkeypatch, caplog
) -> None:
    con, head = ledger
    _append_without_head(con, head, monkeypatch, caplog)
    con.execute("UPDATE linkage_runs SET entry = '{\"forged\":1}' WHERE seq = 4")
    result = verify_ledger(con, head_file=head, repair_head=True)
    assert not result.ok
    assert any(p.startswith("row #4") and "edited" in p for p in result.problems)
    assert not any("behind" in n for n in result.notes), "no missed write explains it"
    assert head.read_text(encoding="utf-8").startswith("3 "), "nothing repaired"


def test_a_head_that_names_a_rewritten_row_is_tampering(ledger) -> None:
    con, head = ledger
    rows = ledger_rows(con)
    head.write_text(f"2 {'f' * 64}\n", encoding="utf-8")
    problems = verify_ledger(con, head_file=head).problems
    assert len(problems) == 1 and "rows were removed or rewritten" in problems[0]
    assert rows[1].row_hash != "f" * 64


def test_an_unwritable_head_folder_keeps_the_run_and_raises_no_false_alarm(
    tmp_path: Path, caplog
) -> None:
    blocker = tmp_path / "artifacts"
    blocker.write_text("a file where the audit folder should be", encoding="utf-8")
    head = blocker / "audit" / "ledger_head.txt"
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        with caplog.at_level("WARNING", "linkage.audit.ledger"):
            row = append_run(con, run_id="r1", status="succeeded", entry={}, head_file=head)
        assert row.seq == 1 and has_run(con, "r1", status="succeeded")
        assert str(head) in caplog.text
        result = verify_ledger(con, head_file=head)
    assert result.ok and any("no head recorded" in n for n in result.notes)


def test_verify_ledger_command_notes_a_lagging_head_and_repairs_it_on_request(
    demo_project, capsys
) -> None:
    from linkage.audit.ledger_head import read_ledger_head, write_ledger_head
    from linkage.tables import LEDGER_HEAD_FILE
    from orchestration.cli import main

    head = demo_project.artifacts / LEDGER_HEAD_FILE
    with duckdb.connect(str(demo_project.warehouse)) as con:
        for n in (1, 2):
            append_run(con, run_id=f"run-{n}", status="succeeded", entry={}, head_file=head)
        first = ledger_rows(con)[0]
        newest = ledger_rows(con)[-1]
    write_ledger_head(head, first.seq, first.row_hash)  # as if the second head write was lost
    config = ["--config", str(demo_project.config_path)]

    assert main(["verify-ledger", *config]) == 0
    out = capsys.readouterr().out
    assert "ledger intact" in out and "note:" in out and "behind" in out
    assert read_ledger_head(head) == (first.seq, first.row_hash), "not repaired unasked"

    assert main(["verify-ledger", "--repair-head", *config]) == 0
    assert "head repaired" in capsys.readouterr().out
    assert read_ledger_head(head) == (newest.seq, newest.row_hash)
    assert main(["verify-ledger", *config]) == 0
    assert "note:" not in capsys.readouterr().out
