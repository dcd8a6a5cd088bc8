"""Incremental deliveries: idempotent loads, newest version wins, history kept,
hashed national ids, and sources read from other databases."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.identifiers import keyed_hash, national_id_hasher
from linkage.ingest.readers.database import DatabaseSpec
from linkage.ingest.readers.delivery import SourceError
from linkage.ingest.staging import FieldSpec, stage_source
from orchestration.build import build_assets, build_resources
from tests.projects import select_assets

HEADER = "id,name,mail\n"
FIELDS = {"full_name": FieldSpec("name"), "email": FieldSpec("mail")}


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def _deliver(folder: Path, name: str, body: str, age: int) -> Path:
    """Write a landing file whose modification time orders it (older = larger age)."""
    path = folder / name
    path.write_text(HEADER + body)
    stamp = 1_700_000_000 - age
    os.utime(path, (stamp, stamp))
    return path


def _load(con: duckdb.DuckDBPyConnection, pattern: Path):
    return load_raw_source(
        con, source_system="crm", pattern=pattern, id_column="id", mapped_columns={}
    )


def test_newest_version_wins_and_history_keeps_every_version(con, tmp_path: Path) -> None:
    _deliver(tmp_path, "crm_1.csv", "1,Anna Berg,anna@example.com\n2,Bo Ek,bo@example.com\n", 20)
    first = _load(con, tmp_path / "crm_*.csv")
    assert (first.new_files[0].new_records, first.rows) == (2, 2)

    _deliver(
        tmp_path,
        "crm_2.csv",
        "2,Bo Ek,bo.ek@example.com\n3,Cia Holm,cia@example.com\n1,Anna Berg,anna@example.com\n",
        10,
    )
    second = _load(con, tmp_path / "crm_*.csv")
    delivery = second.new_files[0]
    assert (delivery.new_records, delivery.changed_records, delivery.unchanged_records) == (1, 1, 1)
    assert [f.path.name for f in second.skipped_files] == ["crm_1.csv"]

    current = con.execute(
        "SELECT source_record_id, mail, source_file LIKE '%crm_2.csv' FROM raw_crm "
        "ORDER BY source_record_id"
    ).fetchall()
    assert current == [
        ("1", "anna@example.com", False),  # unchanged: keeps the delivery it came in
        ("2", "bo.ek@example.com", True),  # changed: the newest version wins
        ("3", "cia@example.com", True),
    ]
    history = con.execute(
        "SELECT source_record_id, mail, delivery_seq FROM raw_history_crm "
        "WHERE source_record_id = '2' ORDER BY delivery_seq"
    ).fetchall()
    assert history == [("2", "bo@example.com", 1), ("2", "bo.ek@example.com", 2)]
    deliveries = con.execute(
        "SELECT delivery_seq, rows, new_records, changed_records, unchanged_records "
        "FROM source_deliveries ORDER BY delivery_seq"
    ).fetchall()
    assert deliveries == [(1, 2, 2, 0, 0), (2, 3, 1, 1, 1)]

    stage_source(con, source_system="crm", fields=FIELDS)
    assert con.execute("SELECT email FROM staged_crm WHERE source_record_id = '2'").fetchall() == [
        ("bo.ek@example.com",)
    ]


def test_same_content_under_another_name_or_twice_adds_nothing(con, tmp_path: Path) -> None:
    body = "1,Anna Berg,anna@example.com\n"
    _deliver(tmp_path, "crm_1.csv", body, 20)
    _load(con, tmp_path / "crm_*.csv")
    _deliver(tmp_path, "crm_copy.csv", body, 10)
    again = _load(con, tmp_path / "crm_*.csv")
    assert not again.new_files and len(again.skipped_files) == 2
    assert again.history_rows == 1 and again.rows == 1
    assert con.execute("SELECT count(*) FROM source_deliveries").fetchall() == [(1,)]


def test_a_changed_file_under_the_same_name_is_a_new_delivery(con, tmp_path: Path) -> None:
    path = _deliver(tmp_path, "crm.csv", "1,Anna Berg,anna@example.com\n", 20)
    _load(con, path)
    _deliver(tmp_path, "crm.csv", "1,Anna Berg,anna.berg@example.com\n", 10)
    result = _load(con, path)
    assert result.new_files[0].changed_records == 1
    assert result.history_rows == 2 and result.rows == 1


def test_a_failed_delivery_writes_nothing(con, tmp_path: Path) -> None:
    _deliver(tmp_path, "crm_1.csv", "1,Anna Berg,anna@example.com\n", 20)
    _load(con, tmp_path / "crm_*.csv")
    (tmp_path / "crm_2.csv").write_text("id,other\n2,x\n")
    with pytest.raises(SourceError, match="'mail'"):
        load_raw_source(
            con,
            source_system="crm",
            pattern=tmp_path / "crm_*.csv",
            id_column="id",
            mapped_columns={"fields.email": "mail"},
        )
    assert con.execute("SELECT count(*) FROM raw_history_crm").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM source_deliveries").fetchall() == [(1,)]


def test_national_ids_are_hashed_before_anything_is_written(con, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("id,name,pnr\n1,Anna Berg,850101-1234\n2,Bo Ek,8501011234\n3,Cia Holm,0000\n")
    load_raw_source(
        con,
        source_system="crm",
        pattern=path,
        id_column="id",
        mapped_columns={"fields.national_id": "pnr"},
        column_transforms={"pnr": national_id_hasher(b"test-key")},
    )
    stage_source(
        con,
        source_system="crm",
        fields={"full_name": FieldSpec("name"), "national_id": FieldSpec("pnr")},
    )
    stored = [
        value
        for table in ("raw_history_crm", "raw_crm", "staged_crm", "quality_issues_crm")
        for row in con.execute(f"SELECT * FROM {table}").fetchall()
        for value in row
    ]
    assert not any("850101" in str(value) for value in stored)
    ids = dict(con.execute("SELECT source_record_id, national_id FROM staged_crm").fetchall())
    assert ids["1"] == ids["2"] == keyed_hash("8501011234", b"test-key")
    assert ids["3"] is None
    assert con.execute("SELECT field, problem FROM quality_issues_crm").fetchall() == [
        ("national_id", "invalid_identifier")
    ]


def test_national_id_without_a_key_fails_the_raw_asset(
    write_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MELD_TEST_ABSENT_KEY", raising=False)
    (tmp_path / "crm.csv").write_text("id,name,pnr\n1,Anna Berg,850101-1234\n")
    project = write_project(
        {
            "national_id_key_env": "MELD_TEST_ABSENT_KEY",
            "sources": {
                "crm": {
                    "path": "crm.csv",
                    "id_column": "id",
                    "fields": {"full_name": "name", "national_id": "pnr"},
                }
            },
        }
    )
    raw = select_assets(build_assets(project), lambda n: n == "raw_crm")
    result = dg.materialize(raw, resources=build_resources(project), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "MELD_TEST_ABSENT_KEY" in failure.event_specific_data.error_display_string


def test_ingestion_assets_twice_over_the_same_files_add_nothing(demo_project) -> None:
    selection = select_assets(
        build_assets(demo_project), lambda n: n.startswith(("raw_", "staged_"))
    )
    resources = build_resources(demo_project)
    dg.materialize(selection, resources=resources)
    again = dg.materialize(selection, resources=resources)
    for event in again.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if event.asset_key.path[0].startswith("raw_"):
            assert metadata["new_deliveries"].value == 0
            assert metadata["skipped_deliveries"].value == 1
    with duckdb.connect(str(demo_project.warehouse), read_only=True) as check:
        history, current = check.execute(
            "SELECT (SELECT count(*) FROM raw_history_crm_contacts), "
            "(SELECT count(*) FROM raw_crm_contacts)"
        ).fetchall()[0]
    assert history == current > 0


def _people_duckdb(path: Path) -> None:
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE SCHEMA crm")
        db.execute(
            "CREATE TABLE crm.people AS SELECT * FROM (VALUES "
            "(1, 'Anna Berg', 'anna@example.com', DATE '1980-01-02'), "
            "(2, 'Bo Ek', 'bo@example.com', NULL)) AS t(id, name, mail, born)"
        )


@pytest.mark.parametrize(
    ("table", "query"),
    [("crm.people", None), (None, "SELECT id, name, mail FROM crm.people WHERE id > 1")],
    ids=["table", "query"],
)
def test_duckdb_database_source(con, tmp_path: Path, table: str | None, query: str | None) -> None:
    db_path = tmp_path / "legacy.duckdb"
    _people_duckdb(db_path)
    spec = DatabaseSpec(kind="duckdb", path=db_path, table=table, query=query)
    result = load_raw_source(
        con, source_system="legacy", database=spec, id_column="id", mapped_columns={}
    )
    rows = con.execute("SELECT id, name, source_file FROM raw_legacy ORDER BY id").fetchall()
    expected = [("1", "Anna Berg"), ("2", "Bo Ek")] if table else [("2", "Bo Ek")]
    assert [r[:2] for r in rows] == expected
    assert rows[0][2] == spec.describe()
    again = load_raw_source(
        con, source_system="legacy", database=spec, id_column="id", mapped_columns={}
    )
    assert result.new_files and not again.new_files, "unchanged database content adds nothing"


def test_sqlalchemy_source_reads_url_from_environment(
    con, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "shop.sqlite"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE accounts (account_no INTEGER, email TEXT)")
        db.executemany("INSERT INTO accounts VALUES (?, ?)", [(10, "a@example.com"), (11, None)])
    spec = DatabaseSpec(kind="sqlalchemy", url_env="MELD_TEST_SHOP_URL", table="accounts")
    monkeypatch.delenv("MELD_TEST_SHOP_URL", raising=False)
    with pytest.raises(SourceError, match="MELD_TEST_SHOP_URL.*not set"):
        load_raw_source(
            con, source_system="shop", database=spec, id_column="account_no", mapped_columns={}
        )
    monkeypatch.setenv("MELD_TEST_SHOP_URL", f"sqlite:///{db_path}")
    load_raw_source(
        con, source_system="shop", database=spec, id_column="account_no", mapped_columns={}
    )
    assert con.execute("SELECT account_no, email FROM raw_shop ORDER BY 1").fetchall() == [
        ("10", "a@example.com"),
        ("11", None),
    ]
    assert "sqlite" not in spec.describe() and "shop.sqlite" not in spec.describe()


def test_database_source_in_config_materializes(write_project, tmp_path: Path) -> None:
    _people_duckdb(tmp_path / "legacy.duckdb")
    project = write_project(
        {
            "sources": {
                "legacy": {
                    "database": {"kind": "duckdb", "path": "legacy.duckdb", "table": "crm.people"},
                    "id_column": "id",
                    "fields": {"full_name": "name", "email": "mail", "date_of_birth": "born"},
                }
            }
        }
    )
    selection = select_assets(build_assets(project), lambda n: n.endswith("legacy"))
    result = dg.materialize(selection, resources=build_resources(project))
    assert result.success
    with duckdb.connect(str(project.warehouse), read_only=True) as check:
        assert check.execute(
            "SELECT first_name, date_of_birth::VARCHAR FROM staged_legacy ORDER BY 1"
        ).fetchall() == [("anna", "1980-01-02"), ("bo", None)]
