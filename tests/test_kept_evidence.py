"""Validation flags a value; it does not take it away from matching."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import phonenumbers
import pytest

from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.staging import FieldSpec, stage_source
from linkage.ingest.standardise.contact import email_match_form, phone_match_forms

FIELDS = {
    "first_name": FieldSpec("first"),
    "last_name": FieldSpec("last"),
    "email": FieldSpec("mail"),
    "phone": FieldSpec("tel"),
    "postcode": FieldSpec("zip"),
    "country": FieldSpec("land"),
}
ROWS = [
    # id, first, last, mail, tel, zip, land
    ("1", "Anna", "Berg", "anna@example.se", "070-123 45 67", "111 22", "SE"),
    ("2", "Anna", "Berg", "anna..berg@example.se", "070-123 45", "1112", "SE"),
    ("3", "Jörg", "Müller", "", "0151 23456789", "", ""),
    ("4", "", "", "", "+46 70 123 45", "", ""),
    ("5", "Kathryn", "Smyth", "", "000-000 00 00", "", ""),
]


def _stage(tmp_path: Path, *, match_invalid: bool, required: tuple[str, ...] = ()):
    path = tmp_path / "crm.csv"
    columns = ["id", "first", "last", "mail", "tel", "zip", "land"]
    pd.DataFrame(ROWS, columns=columns).to_csv(path, index=False)
    con = duckdb.connect(str(tmp_path / f"w{int(match_invalid)}{len(required)}.duckdb"))
    load_raw_source(
        con,
        source_system="crm",
        pattern=path,
        id_column="id",
        mapped_columns={name: spec.column for name, spec in FIELDS.items()},
    )
    stage_source(
        con,
        source_system="crm",
        fields=FIELDS,
        default_country="SE",
        required_fields=required,
        match_invalid_values=match_invalid,
    )
    return con


def _staged(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    frame = con.execute("SELECT * FROM staged_crm ORDER BY source_record_id").df()
    return {row["source_record_id"]: row for row in frame.to_dict("records")}


def test_a_number_the_carrier_tables_reject_keeps_a_matching_form() -> None:
    valid = phone_match_forms("070-123 45 67", "SE")
    invalid = phone_match_forms("070-123 45", "SE")
    assert (valid.number, valid.valid, valid.problem) == ("+46701234567", True, None)
    assert not phonenumbers.is_valid_number(phonenumbers.parse("+467012345"))
    assert (invalid.number, invalid.valid, invalid.problem) == (
        "+467012345",
        False,
        "invalid_phone",
    )
    # The same invalid number written internationally gives the same matching form.
    assert phone_match_forms("+46 70 123 45", None).number == invalid.number


def test_a_national_number_read_in_the_wrong_region_keeps_its_national_number() -> None:
    wrong_region = phone_match_forms("0151 23456789", "SE")
    international = phone_match_forms("+49 151 23456789", None)
    assert wrong_region.number != international.number
    assert wrong_region.national == international.national == "15123456789"


@pytest.mark.parametrize("raw", ["000-000 00 00", "+46 000 000 000", "112", "12345"])
def test_placeholders_and_short_numbers_identify_nobody(raw: str) -> None:
    forms = phone_match_forms(raw, "SE")
    assert forms.number is None and forms.national is None
    assert forms.problem == "invalid_phone"


def test_an_invalid_email_with_an_address_shape_stays_comparable() -> None:
    assert email_match_form(" Anna..Berg@Example.se ").value == "anna..berg@example.se"
    assert email_match_form(" Anna..Berg@Example.se ").problem == "invalid_email"
    assert email_match_form("no address here").value is None


def test_staging_keeps_invalid_values_for_matching_and_still_lists_them(tmp_path: Path) -> None:
    con = _stage(tmp_path, match_invalid=True)
    staged = _staged(con)
    assert staged["1"]["phone_valid"] is True and staged["1"]["phone"] == "+46701234567"
    assert staged["2"]["phone"] == "+467012345" and staged["2"]["phone_valid"] is False
    assert staged["2"]["email"] == "anna..berg@example.se"
    assert staged["2"]["postcode"] == "1112"
    assert staged["3"]["phone_national"] == "15123456789"
    # A record whose only contact is an invalid number is matchable, not quarantined.
    assert staged["4"]["phone"] == "+467012345"
    assert pd.isna(staged["5"]["phone"])
    issues = set(
        con.execute("SELECT source_record_id, field, problem FROM quality_issues_crm").fetchall()
    )
    assert {("2", "phone", "invalid_phone"), ("2", "email", "invalid_email")} <= issues
    assert {("2", "postcode", "invalid_postcode"), ("4", "phone", "invalid_phone")} <= issues


def test_match_invalid_values_false_nulls_them_as_before(tmp_path: Path) -> None:
    con = _stage(tmp_path, match_invalid=False)
    staged = _staged(con)
    assert pd.isna(staged["2"]["phone"]) and pd.isna(staged["2"]["email"])
    assert pd.isna(staged["2"]["postcode"])
    assert "4" not in staged  # nothing left to match on
    reasons = dict(con.execute("SELECT source_record_id, reason FROM quarantine_crm").fetchall())
    assert reasons["4"] == "no_identifying_fields"


def test_a_required_field_that_fails_validation_is_still_quarantined(tmp_path: Path) -> None:
    con = _stage(tmp_path, match_invalid=True, required=("phone",))
    reasons = dict(con.execute("SELECT source_record_id, reason FROM quarantine_crm").fetchall())
    assert reasons["2"] == "invalid_required_field"
    assert "1" in _staged(con)


def test_names_carry_their_metaphone_code(tmp_path: Path) -> None:
    staged = _staged(_stage(tmp_path, match_invalid=True))
    assert staged["5"]["first_name_phonetic"] == "K0RN"  # Kathryn, as Catherine
    assert staged["5"]["last_name_phonetic"] == "SM0"  # Smyth, as Smith
    assert staged["3"]["last_name_phonetic"] == "MLR"  # Müller folded to muller
