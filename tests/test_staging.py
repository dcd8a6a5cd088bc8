"""Staging on hand-made rows: standardised values, quarantine reasons, quality issues."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.staging import FieldSpec, stage_source

FIELDS = {
    "full_name": FieldSpec("name"),
    "email": FieldSpec("mail"),
    "phone": FieldSpec("tel"),
    "date_of_birth": FieldSpec("dob", "%d/%m/%Y"),
    "address": FieldSpec("addr"),
    "country": FieldSpec("land"),
}

ROWS = [
    # id, name, mail, tel, dob, addr, land
    (
        "1",
        "Müller, Jörg",
        " Jorg.Mueller@Example.DE ",
        "0151 2345 6789",
        "03/05/1980",
        "Hauptstraße 5, 10115 Berlin",
        "Deutschland",
    ),
    (
        "2",
        "Dr. Łukasz Nowak",
        "not-an-email",
        "+48 601 234 567",
        "31/02/1980",
        "ul. Kwiatowa 3, 00-001 Warszawa",
        "PL",
    ),
    ("", "No Id Person", "noid@example.com", "", "", "", ""),
    ("3", "Anna Berg", "anna@example.se", "070-123 45 67", "1980-01-01", "", ""),
    ("3", "Anna Berg again", "anna2@example.se", "", "", "", ""),
    ("4", "", "", "12", "01/01/1990", "Storgatan 1, 111 22 Stockholm", "SE"),
    ("5", "'; DROP TABLE raw_shop; --", "robert@example.com", "", "", "", ""),
    ("6", "Nela", "nela@example.pl", "", "", "", ""),
    ("7", "Herr Müller", "mueller@example.de", "", "", "", ""),
]


def _load(con: duckdb.DuckDBPyConnection, source: str, path: Path, fields: dict) -> None:
    mapped = {name: spec.column for name, spec in fields.items()}
    load_raw_source(con, source_system=source, pattern=path, id_column="id", mapped_columns=mapped)


@pytest.fixture
def staged(tmp_path: Path):
    path = tmp_path / "shop.csv"
    pd.DataFrame(ROWS, columns=["id", "name", "mail", "tel", "dob", "addr", "land"]).to_csv(
        path, index=False
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _load(con, "shop", path, FIELDS)
    result = stage_source(con, source_system="shop", fields=FIELDS, default_country="SE")
    yield con, result
    con.close()


def _record(con, record_id: str) -> dict:
    frame = con.execute("SELECT * FROM staged_shop WHERE source_record_id = ?", [record_id]).df()
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def test_standardised_values(staged) -> None:
    con, _ = staged
    jorg = _record(con, "1")
    assert (jorg["first_name"], jorg["last_name"]) == ("jorg", "muller")
    assert (jorg["first_name_display"], jorg["last_name_display"]) == ("Jörg", "Müller")
    assert jorg["email"] == "jorg.mueller@example.de"
    assert jorg["phone"] == "+4915123456789"  # national format read with the record's country
    assert jorg["date_of_birth"].date() == date(1980, 5, 3)
    assert (jorg["street_display"], jorg["postcode"], jorg["city_display"]) == (
        "Hauptstraße 5",
        "10115",
        "Berlin",
    )
    assert jorg["country"] == "DE"
    assert jorg["unique_id"] == "shop:1"
    lukasz = _record(con, "2")
    assert (lukasz["first_name"], lukasz["last_name"]) == ("lukasz", "nowak")
    assert lukasz["phone"] == "+48601234567"
    assert lukasz["postcode"] == "00-001" and lukasz["city"] == "warszawa"
    anna = _record(con, "3")
    assert anna["phone"] == "+46701234567"  # source default country SE


def test_invalid_values_are_nulled_and_recorded(staged) -> None:
    con, result = staged
    lukasz = _record(con, "2")
    assert pd.isna(lukasz["email"]) and pd.isna(lukasz["date_of_birth"])
    issues = set(
        con.execute("SELECT source_record_id, field, problem FROM quality_issues_shop").fetchall()
    )
    assert ("2", "email", "invalid_email") in issues
    assert ("2", "date_of_birth", "impossible_date") in issues
    assert ("3", "date_of_birth", "unparseable_date") in issues
    assert result.field_problems["email:invalid_email"] == 1


def test_quarantine_reasons_and_raw_values(staged) -> None:
    con, result = staged
    rows = con.execute(
        "SELECT source_row_number, source_record_id, reason, raw_values FROM quarantine_shop "
        "ORDER BY source_row_number"
    ).fetchall()
    assert [(r[0], r[2]) for r in rows] == [
        (3, "missing_id"),
        (5, "duplicate_id"),
        (6, "no_identifying_fields"),
    ]
    assert json.loads(rows[1][3])["name"] == "Anna Berg again"
    assert result.quarantine_reasons == {
        "duplicate_id": 1,
        "missing_id": 1,
        "no_identifying_fields": 1,
    }


def test_every_raw_row_is_staged_or_quarantined_once(staged) -> None:
    con, result = staged
    assert result.raw_rows == len(ROWS)
    assert result.staged_rows + result.quarantined_rows == result.raw_rows
    overlap = con.execute(
        "SELECT count(*) FROM staged_shop s JOIN quarantine_shop q USING (source_row_number)"
    ).fetchall()[0][0]
    assert overlap == 0


def test_sql_looking_values_are_data(staged) -> None:
    con, _ = staged
    robert = _record(con, "5")
    assert robert["email"] == "robert@example.com"
    assert con.execute("SELECT count(*) FROM raw_shop").fetchall()[0][0] == len(ROWS)


@pytest.mark.parametrize(
    ("record_id", "first", "last"),
    [("6", "nela", None), ("7", None, "muller")],
    ids=["lone-name-is-given-name", "title-marks-surname"],
)
def test_lone_names(staged, record_id: str, first: str | None, last: str | None) -> None:
    con, _ = staged
    record = _record(con, record_id)
    assert (record["first_name"] if pd.notna(record["first_name"]) else None) == first
    assert (record["last_name"] if pd.notna(record["last_name"]) else None) == last


def test_dates_outside_the_plausible_range_are_nulled(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text("id,name,dob\n1,Anna Berg,01/02/1899\n2,Olle Berg,01/02/1950\n")
    fields = {"full_name": FieldSpec("name"), "date_of_birth": FieldSpec("dob", "%d/%m/%Y")}
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _load(con, "old", path, fields)
    stage_source(con, source_system="old", fields=fields)
    default = dict(con.execute("SELECT source_record_id, date_of_birth FROM staged_old").fetchall())
    assert default["1"] is None and default["2"] == date(1950, 2, 1)
    problems = con.execute("SELECT source_record_id, problem FROM quality_issues_old").fetchall()
    assert problems == [("1", "date_out_of_range")]
    stage_source(
        con, source_system="old", fields=fields, dob_range=(date(1890, 1, 1), date(1940, 1, 1))
    )
    widened = dict(con.execute("SELECT source_record_id, date_of_birth FROM staged_old").fetchall())
    assert widened["1"] == date(1899, 2, 1) and widened["2"] is None
    con.close()
