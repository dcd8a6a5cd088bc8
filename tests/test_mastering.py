"""Golden customer records: each survivorship rule, display values, sources, lists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from linkage.canonical import STAGED_COLUMNS
from linkage.config import GOLDEN_FIELD_NAMES
from linkage.master.golden import GOLDEN_FIELDS, RULES, build_golden_customers, resolve_rules
from linkage.warehouse import quote

ANNA = [
    # Two old CRM records agree on the old e-mail; the first is the most complete.
    {
        "unique_id": "crm_contacts:1",
        "loaded_at": "2023-01-01",
        "first_name": "anna",
        "first_name_display": "Anna",
        "date_of_birth": date(1980, 5, 17),
        "email": "anna@old.example",
        "phone": "+46701234567",
        "street": "storgatan 1",
        "street_display": "Storgatan 1",
        "postcode": "11122",
        "city": "stockholm",
        "city_display": "Stockholm",
        "country": "SE",
    },
    {
        "unique_id": "crm_contacts:2",
        "loaded_at": "2023-02-01",
        "first_name": "anna",
        "first_name_display": "Anna",
        "email": "anna@old.example",
    },
    # A newer web shop account with a new, longer e-mail.
    {
        "unique_id": "webshop_accounts:9",
        "loaded_at": "2024-06-01",
        "first_name": "anna",
        "first_name_display": "ANNA",
        "email": "anna.lind@new.example",
    },
]


def _row(record: dict[str, Any]) -> list[Any]:
    values = dict.fromkeys(STAGED_COLUMNS)
    source, record_id = record["unique_id"].split(":")
    values.update(source_system=source, source_record_id=record_id, source_row_number=1)
    values.update(record)
    values["loaded_at"] = datetime.fromisoformat(record["loaded_at"])
    return [values[column] for column in STAGED_COLUMNS]


def _write(con: duckdb.DuckDBPyConnection, customers: dict[str, list[dict[str, Any]]]) -> None:
    """``records`` with the customer_records columns and ``clusters`` mapping them."""
    columns = ", ".join(f"{quote(name)} {kind}" for name, kind in STAGED_COLUMNS.items())
    con.execute(f"CREATE OR REPLACE TABLE records ({columns})")
    con.execute("CREATE OR REPLACE TABLE clusters (customer_id VARCHAR, unique_id VARCHAR)")
    records = [record for members in customers.values() for record in members]
    con.executemany(
        f"INSERT INTO records VALUES ({', '.join('?' * len(STAGED_COLUMNS))})",
        [_row(record) for record in records],
    )
    con.executemany(
        "INSERT INTO clusters VALUES (?, ?)",
        [[customer, r["unique_id"]] for customer, members in customers.items() for r in members],
    )


def _golden(
    con: duckdb.DuckDBPyConnection, customers: dict[str, list[dict[str, Any]]], **options: Any
) -> dict[str, dict[str, Any]]:
    """Write the records, build the golden table and return its rows by customer_id."""
    _write(con, customers)
    written = build_golden_customers(
        con, records_table="records", clusters_table="clusters", out_table="golden", **options
    )
    cursor = con.execute("SELECT * FROM golden")
    names = [d[0] for d in cursor.description]
    rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    assert written == len(rows) == len(customers)
    return rows


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("rule", "priority", "email", "source"),
    [
        # Two records agree on the old e-mail; the more recent of them is the source.
        ("most_frequent", [], "anna@old.example", "crm_contacts:2"),
        ("most_recent", [], "anna.lind@new.example", "webshop_accounts:9"),
        ("source_priority", ["webshop_accounts"], "anna.lind@new.example", "webshop_accounts:9"),
        (
            "source_priority",
            ["crm_contacts", "webshop_accounts"],
            "anna@old.example",
            "crm_contacts:2",
        ),
        # Without a priority every source ranks equal: the most frequent value wins.
        ("source_priority", [], "anna@old.example", "crm_contacts:2"),
        # The first CRM record carries the most matching columns.
        ("most_complete", [], "anna@old.example", "crm_contacts:1"),
        ("longest", [], "anna.lind@new.example", "webshop_accounts:9"),
    ],
)
def test_each_rule_chooses_its_email_and_names_the_record(
    con: duckdb.DuckDBPyConnection, rule: str, priority: list[str], email: str, source: str
) -> None:
    golden = _golden(con, {"anna": ANNA}, rules={"email": rule}, source_priority=priority)["anna"]
    assert (golden["email"], golden["email_source"]) == (email, source)
    # Fields without a rule of their own keep the default.
    assert golden["phone_source"] == "crm_contacts:1"


def test_default_rule_applies_to_every_field_without_its_own(
    con: duckdb.DuckDBPyConnection,
) -> None:
    golden = _golden(con, {"anna": ANNA}, default_rule="most_recent")["anna"]
    assert golden["email"] == "anna.lind@new.example"
    assert (golden["first_name"], golden["first_name_source"]) == ("ANNA", "webshop_accounts:9")
    # The most recent record carrying a date of birth, not the most recent record.
    assert (golden["date_of_birth"], golden["date_of_birth_source"]) == (
        date(1980, 5, 17),
        "crm_contacts:1",
    )
    rules = dict(con.execute("SELECT field, rule FROM golden_rules").fetchall())
    assert rules == dict.fromkeys(GOLDEN_FIELDS, "most_recent")


def test_display_values_keep_accents_and_case_from_the_latest_agreeing_record(
    con: duckdb.DuckDBPyConnection,
) -> None:
    def person(uid: str, loaded: str, first: tuple[str, str], last: tuple[str, str]) -> dict:
        return {
            "unique_id": uid,
            "loaded_at": loaded,
            "first_name": first[0],
            "first_name_display": first[1],
            "last_name": last[0],
            "last_name_display": last[1],
        }

    golden = _golden(
        con,
        {
            "jorg": [
                person("crm_contacts:1", "2023-01-01", ("jorg", "Jorg"), ("muller", "MULLER")),
                person("crm_contacts:2", "2023-03-01", ("jorg", "Jörg"), ("muller", "Müller")),
                # Newest, but the only record saying "George".
                person(
                    "webshop_accounts:3", "2024-01-01", ("george", "George"), ("muller", "Muller")
                ),
            ]
        },
    )["jorg"]
    assert (golden["first_name"], golden["first_name_source"]) == ("Jörg", "crm_contacts:2")
    # All three agree on "muller": the most recent shows it as it typed it.
    assert (golden["last_name"], golden["last_name_source"]) == ("Muller", "webshop_accounts:3")


def test_address_is_one_unit_from_one_record(con: duckdb.DuckDBPyConnection) -> None:
    records = [
        ANNA[0],
        # Newer, but only a city: the golden address must not mix it with the street.
        {
            "unique_id": "pos_loyalty:5",
            "loaded_at": "2024-09-01",
            "city": "malmo",
            "city_display": "Malmö",
            "country": "SE",
        },
    ]
    recent = _golden(con, {"anna": records}, rules={"address": "most_recent"})["anna"]
    assert [recent[c] for c in ("street", "postcode", "city", "country", "address_source")] == [
        None,
        None,
        "Malmö",
        "SE",
        "pos_loyalty:5",
    ]
    longest = _golden(con, {"anna": records}, rules={"address": "longest"})["anna"]
    assert [longest[c] for c in ("street", "postcode", "city", "address_source")] == [
        "Storgatan 1",
        "11122",
        "Stockholm",
        "crm_contacts:1",
    ]


def test_same_address_is_shown_from_the_record_filling_most_of_it(
    con: duckdb.DuckDBPyConnection,
) -> None:
    newer_without_country = {
        **{k: v for k, v in ANNA[0].items() if k != "country"},
        "unique_id": "webshop_accounts:9",
        "loaded_at": "2024-06-01",
        "street_display": "STORGATAN 1",
    }
    golden = _golden(con, {"anna": [ANNA[0], newer_without_country]})["anna"]
    assert [golden[c] for c in ("street", "country", "address_source")] == [
        "Storgatan 1",
        "SE",
        "crm_contacts:1",
    ]
    # Both display forms stay in the list of addresses.
    assert [a["street"] for a in golden["addresses"]] == ["STORGATAN 1", "Storgatan 1"]


def test_most_recent_breaks_a_tie_in_loaded_at_by_votes(con: duckdb.DuckDBPyConnection) -> None:
    one_delivery = [
        {"unique_id": "crm_contacts:1", "loaded_at": "2024-01-01", "phone": "+46700000001"},
        {"unique_id": "crm_contacts:2", "loaded_at": "2024-01-01", "phone": "+46700000001"},
        {"unique_id": "crm_contacts:3", "loaded_at": "2024-01-01", "phone": "+46700000003"},
    ]
    golden = _golden(con, {"c": one_delivery}, rules={"phone": "most_recent"})["c"]
    assert (golden["phone"], golden["phone_source"]) == ("+46700000001", "crm_contacts:2")


def test_source_priority_ranks_unlisted_sources_after_listed_ones(
    con: duckdb.DuckDBPyConnection,
) -> None:
    records = [
        {"unique_id": "support_desk:1", "loaded_at": "2024-05-01", "phone": "+46700000001"},
        {"unique_id": "support_desk:2", "loaded_at": "2024-05-02", "phone": "+46700000001"},
        {"unique_id": "crm_contacts:3", "loaded_at": "2020-01-01", "phone": "+46700000003"},
        {"unique_id": "webshop_accounts:4", "loaded_at": "2024-06-01", "phone": "+46700000004"},
    ]
    golden = _golden(
        con, {"c": records}, rules={"phone": "source_priority"}, source_priority=["crm_contacts"]
    )["c"]
    assert (golden["phone"], golden["phone_source"]) == ("+46700000003", "crm_contacts:3")
    rows = con.execute("SELECT field, rule, source_priority FROM golden_rules").fetchall()
    assert ("phone", "source_priority", ["crm_contacts"]) in rows
    assert ("email", "most_frequent", None) in rows


def test_lists_hold_every_distinct_email_phone_and_address(
    con: duckdb.DuckDBPyConnection,
) -> None:
    records = [
        *ANNA,
        {
            "unique_id": "pos_loyalty:5",
            "loaded_at": "2024-09-01",
            "phone": "+46701234567",
            "street": "storgatan 1",
            "street_display": "Storgatan 1",
            "postcode": "11122",
            "city": "stockholm",
            "city_display": "Stockholm",
            "country": "SE",
            "loyalty_card": "L123",
        },
        {
            "unique_id": "pos_loyalty:6",
            "loaded_at": "2024-09-01",
            "street": "kungsgatan 2",
            "street_display": "Kungsgatan 2",
            "city": "malmo",
            "city_display": "Malmö",
            "country": "SE",
        },
    ]
    golden = _golden(con, {"anna": records})["anna"]
    assert golden["emails"] == ["anna.lind@new.example", "anna@old.example"]
    assert golden["phones"] == ["+46701234567"]
    assert golden["addresses"] == [
        {"street": "Kungsgatan 2", "postcode": None, "city": "Malmö", "country": "SE"},
        {"street": "Storgatan 1", "postcode": "11122", "city": "Stockholm", "country": "SE"},
    ]
    assert golden["record_count"] == 5
    assert golden["sources"] == ["crm_contacts", "pos_loyalty", "webshop_accounts"]
    assert golden["source_records"] == sorted(r["unique_id"] for r in records)
    assert golden["last_loaded_at"] == datetime(2024, 9, 1)
    assert (golden["loyalty_card"], golden["loyalty_card_source"]) == ("L123", "pos_loyalty:5")
    assert golden["customer_number"] is None and golden["customer_number_source"] is None


@pytest.mark.parametrize("rule", RULES)
def test_ties_go_to_the_latest_record_then_the_greatest_unique_id(
    con: duckdb.DuckDBPyConnection, rule: str
) -> None:
    same_time = [
        {"unique_id": f"crm_contacts:{i}", "loaded_at": "2024-01-01", "email": f"{c}@x.example"}
        for i, c in (("a", "p"), ("c", "q"), ("b", "r"))
    ]
    first = _golden(con, {"c": same_time}, rules={"email": rule})["c"]
    again = _golden(con, {"c": list(reversed(same_time))}, rules={"email": rule})["c"]
    assert (first["email"], first["email_source"]) == ("q@x.example", "crm_contacts:c")
    assert (again["email"], again["email_source"]) == ("q@x.example", "crm_contacts:c")


def test_single_record_customer_takes_its_values_and_empty_lists(
    con: duckdb.DuckDBPyConnection,
) -> None:
    solo = {
        "unique_id": "webshop_accounts:7",
        "loaded_at": "2024-02-02",
        "first_name": "jorg",
        "first_name_display": "Jörg",
        "email": "jorg@example.com",
        "customer_number": "C-7",
    }
    golden = _golden(con, {"solo": [solo], "anna": ANNA}, default_rule="longest")["solo"]
    assert (golden["first_name"], golden["first_name_source"]) == ("Jörg", "webshop_accounts:7")
    assert (golden["email"], golden["email_source"]) == ("jorg@example.com", "webshop_accounts:7")
    assert golden["customer_number_source"] == "webshop_accounts:7"
    assert golden["last_name"] is None and golden["last_name_source"] is None
    assert golden["street"] is None and golden["address_source"] is None
    assert (golden["emails"], golden["phones"], golden["addresses"]) == (
        ["jorg@example.com"],
        [],
        [],
    )
    assert golden["record_count"] == 1
    assert golden["sources"] == ["webshop_accounts"]
    assert golden["source_records"] == ["webshop_accounts:7"]


def test_output_columns_are_stable(con: duckdb.DuckDBPyConnection) -> None:
    solo = {"unique_id": "pos_loyalty:1", "loaded_at": "2024-01-01", "email": "solo@example.com"}
    _golden(con, {"anna": ANNA, "solo": [solo]})
    columns = [row[0] for row in con.execute("DESCRIBE golden").fetchall()]
    assert columns == [
        "customer_id",
        "first_name",
        "first_name_source",
        "last_name",
        "last_name_source",
        "date_of_birth",
        "date_of_birth_source",
        "email",
        "email_source",
        "phone",
        "phone_source",
        "street",
        "postcode",
        "city",
        "country",
        "address_source",
        "loyalty_card",
        "loyalty_card_source",
        "customer_number",
        "customer_number_source",
        "emails",
        "phones",
        "addresses",
        "record_count",
        "sources",
        "source_records",
        "last_loaded_at",
    ]


def test_golden_fields_are_the_configurable_ones_except_national_id() -> None:
    assert set(GOLDEN_FIELDS) == set(GOLDEN_FIELD_NAMES) - {"national_id"}


@pytest.mark.parametrize(
    ("rules", "default_rule", "message"),
    [
        ({"email": "newest"}, "most_frequent", r"'email'.*'newest'.*most_frequent.*longest"),
        ({}, "oldest", r"'oldest'.*most_frequent.*longest"),
        ({"shoe_size": "longest"}, "most_frequent", r"'shoe_size'.*not a golden field"),
        ({"national_id": "most_recent"}, "most_frequent", r"keyed hash"),
    ],
)
def test_unknown_rules_and_fields_are_rejected(
    con: duckdb.DuckDBPyConnection, rules: dict[str, str], default_rule: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_rules(rules, default_rule)
    _write(con, {"anna": ANNA})
    with pytest.raises(ValueError, match=message):
        build_golden_customers(
            con,
            records_table="records",
            clusters_table="clusters",
            out_table="golden",
            rules=rules,
            default_rule=default_rule,
        )
