"""Tests for the deterministic demo data generator (its profiles: test_demo_profiles.py).

The fixtures generate the default profile, ``realistic``; what only holds without a
profile's errors (every phone valid) is tested on ``clean``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest
import yaml
from unidecode import unidecode

from linkage.demo.cli import main
from linkage.demo.generator import generate
from linkage.demo.persons import build_persons
from linkage.demo.phones import format_phone
from linkage.demo.project_file import project_config
from linkage.ingest.identifiers import normalise_identifier
from tests.demo_files import DOB_COLUMNS, FILES, read_source

PERSONS = 300
SEED = 7
IDENTIFIER_PERSONS = 2000
"""Enough persons that the rare wrong identifiers (a few per cent of a minority) occur."""
REPO_ROOT = Path(__file__).resolve().parents[1]

EXPECTED_COLUMNS = {
    "crm_contacts": [
        "contact_id",
        "given_name",
        "family_name",
        "birth_date",
        "email_address",
        "mobile",
        "street",
        "zip",
        "town",
        "country_code",
        "loyalty_card",
    ],
    "webshop_accounts": [
        "account_no",
        "full_name",
        "email",
        "phone",
        "shipping_address",
        "dob",
        "device_id",
    ],
    "support_tickets": [
        "ticket_contact_id",
        "name",
        "contact_email",
        "contact_phone",
        "country",
        "customer_no",
    ],
    "pos_loyalty": [
        "card_number",
        "first",
        "surname",
        "born",
        "phone_no",
        "postal_code",
        "city",
        "country",
    ],
}
IDENTITY_COLUMNS = {
    "crm_contacts": ["given_name", "family_name", "email_address", "mobile"],
    "webshop_accounts": ["full_name", "email", "phone"],
    "support_tickets": ["name", "contact_email", "contact_phone"],
    "pos_loyalty": ["first", "surname", "phone_no"],
}
COUNTRY_CODES = {"SE", "NO", "DE", "PL", "GB"}
TRANSLITERATION = str.maketrans({"ö": "oe", "ä": "ae", "ü": "ue", "å": "aa", "ø": "oe", "ß": "ss"})


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    generate(directory, PERSONS, SEED)
    return directory


@pytest.fixture(scope="module")
def sources(out: Path) -> dict[str, pd.DataFrame]:
    return {source: read_source(out, source) for source in FILES}


@pytest.fixture(scope="module")
def clean_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    directory = tmp_path_factory.mktemp("demo_clean")
    generate(directory, PERSONS, SEED, profile="clean")
    return {source: read_source(directory, source) for source in FILES}


@pytest.fixture(scope="module")
def truth(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "landing/truth.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return build_persons(PERSONS, SEED).set_index("person_id")


@pytest.fixture(scope="module")
def larger(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, pd.DataFrame], dict]:
    """Sources of IDENTIFIER_PERSONS persons and each record's person, by (source, id)."""
    directory = tmp_path_factory.mktemp("demo_identifiers")
    generate(directory, IDENTIFIER_PERSONS, SEED)
    truth = pd.read_csv(directory / "landing/truth.csv", dtype=str, keep_default_na=False)
    keys = zip(truth["source"], truth["record_id"], strict=True)
    owner = dict(zip(keys, truth["person_id"], strict=True))
    return {source: read_source(directory, source) for source in FILES}, owner


def with_person(
    records: pd.DataFrame, source: str, truth: pd.DataFrame, people: pd.DataFrame
) -> pd.DataFrame:
    """Records joined to the true person they describe."""
    id_column = EXPECTED_COLUMNS[source][0]
    links = truth[truth["source"] == source][["record_id", "person_id"]]
    joined = records.merge(links, left_on=id_column, right_on="record_id")
    return joined.join(people, on="person_id", rsuffix="_true")


def written_files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", PERSONS, SEED)
    generate(tmp_path / "b", PERSONS, SEED)
    first, second = written_files(tmp_path / "a"), written_files(tmp_path / "b")
    assert sorted(first) == sorted(
        [
            *FILES.values(),
            "landing/truth.csv",
            "landing/orders.csv",
            "landing/products.csv",
            "meld.yaml",
        ]
    )
    assert first == second


def test_orders_reference_real_source_records_of_one_person(tmp_path: Path) -> None:
    generate(tmp_path, PERSONS, SEED)
    truth = pd.read_csv(tmp_path / "landing" / "truth.csv", dtype=str)
    orders = pd.read_csv(tmp_path / "landing" / "orders.csv", dtype=str, keep_default_na=False)
    products = pd.read_csv(tmp_path / "landing" / "products.csv", dtype=str)
    assert len(orders) > PERSONS and orders["order_id"].is_unique
    assert set(orders["sku"]) <= set(products["sku"])
    owner = dict(zip(truth["source"] + ":" + truth["record_id"], truth["person_id"], strict=True))
    keys = orders["buyer_source"] + ":" + orders["buyer_record_id"]
    assert keys.isin(owner.keys()).all()
    online = orders[orders["channel"] == "online"]
    in_store = orders[orders["channel"] == "in_store"]
    assert (online["buyer_source"] == "webshop_accounts").all() and (online["store_id"] == "").all()
    assert in_store["store_id"].str.len().gt(0).all()
    assert all(
        staff.startswith(store)
        for staff, store in zip(in_store["staff_id"], in_store["store_id"], strict=True)
    )


def test_different_seed_writes_different_records(tmp_path: Path) -> None:
    generate(tmp_path / "a", PERSONS, SEED)
    generate(tmp_path / "b", PERSONS, SEED + 1)
    first, second = written_files(tmp_path / "a"), written_files(tmp_path / "b")
    for path in FILES.values():
        assert first[path] != second[path], path
    assert first["meld.yaml"] == second["meld.yaml"]


@pytest.mark.parametrize("source", list(FILES))
def test_source_has_exactly_the_documented_columns(
    sources: dict[str, pd.DataFrame], source: str
) -> None:
    assert list(sources[source].columns) == EXPECTED_COLUMNS[source]


def test_generate_returns_rows_written_per_source(tmp_path: Path) -> None:
    counts = generate(tmp_path, 120, 3)
    assert counts == {source: len(read_source(tmp_path, source)) for source in FILES}


def test_truth_covers_exactly_the_records_with_an_id(
    sources: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    assert list(truth.columns) == ["source", "record_id", "person_id"]
    for source, records in sources.items():
        ids = records[EXPECTED_COLUMNS[source][0]]
        expected = set(ids[ids.str.strip() != ""])
        assert set(truth.loc[truth["source"] == source, "record_id"]) == expected, source
    assert not truth.duplicated(["source", "record_id"]).any()


def test_truth_links_records_to_generated_persons(
    truth: pd.DataFrame, people: pd.DataFrame
) -> None:
    linked = set(truth["person_id"])
    assert linked <= set(people.index)
    assert len(linked) >= 0.99 * PERSONS  # everyone has a record, a few only without an id


@pytest.mark.parametrize("source", list(FILES))
def test_ids_are_unique_within_a_source(sources: dict[str, pd.DataFrame], source: str) -> None:
    ids = sources[source][EXPECTED_COLUMNS[source][0]]
    present = ids[ids != ""]
    assert present.is_unique
    assert len(present) >= 0.99 * len(ids)


@pytest.mark.parametrize("source", list(FILES))
def test_every_source_has_rows_to_quarantine(sources: dict[str, pd.DataFrame], source: str) -> None:
    records = sources[source]
    empty_id = records[EXPECTED_COLUMNS[source][0]] == ""
    no_identity = (records[IDENTITY_COLUMNS[source]] == "").all(axis=1)
    assert empty_id.sum() >= 1
    assert (no_identity & ~empty_id).sum() >= 1
    assert (empty_id | no_identity).mean() < 0.02


def test_about_3_3_records_per_person(sources: dict[str, pd.DataFrame]) -> None:
    per_person = sum(len(records) for records in sources.values()) / PERSONS
    assert 3.0 <= per_person <= 3.6


def test_clean_e164_phones_are_valid_numbers(clean_sources: dict[str, pd.DataFrame]) -> None:
    phones = pd.concat(
        [
            clean_sources["crm_contacts"]["mobile"],
            clean_sources["webshop_accounts"]["phone"],
            clean_sources["support_tickets"]["contact_phone"],
            clean_sources["pos_loyalty"]["phone_no"],
        ]
    )
    e164 = phones[phones.str.fullmatch(r"\+\d{8,15}")]
    assert len(e164) > 100
    valid = [phonenumbers.is_valid_number(phonenumbers.parse(number)) for number in e164]
    assert sum(valid) / len(valid) >= 0.99


@pytest.mark.parametrize(
    ("source", "phone", "country"),
    [("crm_contacts", "mobile", "country_code"), ("pos_loyalty", "phone_no", "country")],
)
def test_clean_phones_in_any_format_parse_with_the_record_country(
    clean_sources: dict[str, pd.DataFrame], source: str, phone: str, country: str
) -> None:
    records = clean_sources[source]
    region = records[country].str.upper()
    usable = records[(records[phone] != "") & region.isin(COUNTRY_CODES)]
    assert usable[phone].str.contains(r"^0|^\(", regex=True).any()  # national formats occur
    valid = [
        phonenumbers.is_valid_number(phonenumbers.parse(number, code.upper()))
        for number, code in zip(usable[phone], usable[country], strict=True)
    ]
    assert sum(valid) / len(valid) >= 0.98


def test_clean_mobiles_are_valid_mobile_numbers() -> None:
    people = build_persons(PERSONS, SEED, profile="clean")
    mobile_types = {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
    for number, country in zip(people["mobile"], people["country"], strict=True):
        parsed = phonenumbers.parse(number)
        assert phonenumbers.region_code_for_number(parsed) == country
        assert phonenumbers.number_type(parsed) in mobile_types, number


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("e164", "+46701234567"),
        ("intl_spaced", "+46 70 123 45 67"),
        ("intl_00", "0046 70 123 45 67"),
        ("national", "070-123 45 67"),
        ("national_compact", "0701234567"),
        ("trunk_paren", "(0)70 1234567"),
        ("dashed", "+46-70-123-45-67"),
    ],
)
def test_format_phone_writes_swedish_mobile_in_each_style(style: str, expected: str) -> None:
    assert format_phone("+46701234567", "SE", style) == expected


POSTCODE_PATTERNS = {
    "SE": r"\d{3} \d{2}",
    "NO": r"\d{4}",
    "DE": r"\d{5}",
    "PL": r"\d{2}-\d{3}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}",
}


def test_true_postcodes_follow_the_country_format(people: pd.DataFrame) -> None:
    for column in ("postcode", "old_postcode"):
        for country, pattern in POSTCODE_PATTERNS.items():
            codes = people.loc[people["country"] == country, column].dropna()
            assert codes.str.fullmatch(pattern).all(), (column, country)


def test_most_crm_postcodes_are_formatted_for_their_country(
    sources: dict[str, pd.DataFrame],
) -> None:
    crm = sources["crm_contacts"]
    crm = crm[crm["zip"] != ""]
    matches = [
        bool(re.fullmatch(POSTCODE_PATTERNS[country], code))
        for code, country in zip(crm["zip"], crm["country_code"], strict=True)
        if country in POSTCODE_PATTERNS
    ]
    assert 0.8 <= sum(matches) / len(matches) < 1.0  # formatted, with some noise


def test_webshop_names_mix_orders_and_titles(sources: dict[str, pd.DataFrame]) -> None:
    names = sources["webshop_accounts"]["full_name"]
    assert names.str.contains(", ").sum() >= 10
    assert names.str.match(r"(Dr\.?|Mrs?\.?|Ms|Miss|Herr|Frau|Pan|Pani) ").sum() >= 3


def test_some_names_lose_or_transliterate_diacritics(
    sources: dict[str, pd.DataFrame], truth: pd.DataFrame, people: pd.DataFrame
) -> None:
    lost = transliterated = 0
    for source, first, last in (
        ("crm_contacts", "given_name", "family_name"),
        ("pos_loyalty", "first", "surname"),
    ):
        joined = with_person(sources[source], source, truth, people)
        for written, true in ((first, "first_name"), (last, "last_name")):
            differs = joined[written] != joined[true]
            lost += (differs & (joined[written] == joined[true].map(unidecode))).sum()
            spelled_out = joined[true].str.translate(TRANSLITERATION)
            transliterated += (differs & (joined[written] == spelled_out)).sum()
    assert lost >= 3
    assert transliterated >= 1


def test_some_dates_of_birth_have_day_and_month_swapped(
    sources: dict[str, pd.DataFrame], truth: pd.DataFrame, people: pd.DataFrame
) -> None:
    swapped = 0
    for source, (column, fmt) in DOB_COLUMNS.items():
        joined = with_person(sources[source], source, truth, people)
        dob = pd.to_datetime(joined["date_of_birth"])
        candidates = (dob.dt.day <= 12) & (dob.dt.day != dob.dt.month)
        mirrored = pd.to_datetime(
            {"year": dob.dt.year, "month": dob.dt.day.where(candidates, 1), "day": dob.dt.month}
        ).dt.strftime(fmt)
        swapped += (candidates & (joined[column] == mirrored)).sum()
        assert (joined[column] == dob.dt.strftime(fmt)).mean() > 0.8, source
    assert swapped >= 1


def test_some_records_use_nicknames_or_old_details(
    sources: dict[str, pd.DataFrame], truth: pd.DataFrame, people: pd.DataFrame
) -> None:
    crm = with_person(sources["crm_contacts"], "crm_contacts", truth, people)
    support = with_person(sources["support_tickets"], "support_tickets", truth, people)
    old_email = crm["email_changed"] & (crm["email_address"].str.lower() == crm["alt_email"])
    old_address = crm["moved"] & crm["zip"].eq(crm["old_postcode"]) & crm["zip"].ne(crm["postcode"])
    upper_email = support["contact_email"].str.fullmatch(r"[^a-z]+@[^a-z]+")
    assert old_email.sum() >= 1
    assert old_address.sum() >= 1
    assert upper_email.sum() >= 1


def test_households_share_surname_and_address(
    sources: dict[str, pd.DataFrame], truth: pd.DataFrame, people: pd.DataFrame
) -> None:
    crm = with_person(sources["crm_contacts"], "crm_contacts", truth, people)
    crm = crm[(crm["family_name"] != "") & (crm["street"] != "") & (crm["zip"] != "")]
    shared = crm.groupby(["family_name", "street", "zip"])["person_id"].nunique()
    assert (shared >= 2).sum() >= 5
    households = people.dropna(subset=["household_id"]).groupby("household_id")
    assert 0.2 <= households.ngroups * 2 / PERSONS <= 0.3
    assert (households["first_name"].nunique() == 2).all()
    assert (households["street"].nunique() == 1).all()


def test_common_names_are_shared_by_different_people(people: pd.DataFrame) -> None:
    full_names = people["first_name"] + " " + people["last_name"]
    assert full_names.duplicated().any()
    assert people["last_name"].value_counts().iloc[0] >= 10


def test_config_points_at_written_files_and_columns(
    out: Path, sources: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    config = yaml.safe_load((out / "meld.yaml").read_text(encoding="utf-8"))
    assert config["warehouse"] == "warehouse.duckdb"
    assert config["mlflow"] == {"tracking_uri": "sqlite:///mlflow.db", "experiment": "meld-demo"}
    assert list(config["sources"]) == list(FILES)
    for name, source in config["sources"].items():
        assert (out / source["path"]).is_file()
        columns = set(sources[name].columns)
        assert source["id_column"] == EXPECTED_COLUMNS[name][0]
        for mapping in source["fields"].values():
            assert (mapping["column"] if isinstance(mapping, dict) else mapping) in columns
    assert (out / config["truth"]["path"]).is_file()
    assert config["truth"]["entity_column"] in truth.columns


def _quoted_whose(
    larger: tuple[dict[str, pd.DataFrame], dict],
    source: str,
    column: str,
    target: str,
    kind: str,
) -> Counter:
    """Whose record in ``target`` each value of ``source.column`` names: the record's own
    person's ("own"), someone else's ("other"), or no record's ("none")."""
    sources, owner = larger
    target_ids = sources[target][EXPECTED_COLUMNS[target][0]]
    named = {normalise_identifier(i, kind).value: owner[(target, i)] for i in target_ids if i}
    records = sources[source]
    id_column = EXPECTED_COLUMNS[source][0]
    quoting = records[(records[column] != "") & (records[id_column] != "")]
    whose = Counter()
    for record_id, value in zip(quoting[id_column], quoting[column], strict=True):
        person = named.get(normalise_identifier(value, kind).value)
        own = owner[(source, record_id)]
        whose["none" if person is None else "own" if person == own else "other"] += 1
    return whose


def test_crm_keeps_the_loyalty_card_of_a_minority_a_few_wrong(larger) -> None:
    sources, _ = larger
    cards = sources["crm_contacts"]["loyalty_card"]
    assert 0.15 <= (cards != "").mean() <= 0.4
    assert cards.str.contains(" ").any()  # some written in groups of four digits
    whose = _quoted_whose(larger, "crm_contacts", "loyalty_card", "pos_loyalty", "loyalty_card")
    assert whose["own"] >= 0.85 * whose.total()
    assert whose["other"] >= 1  # a partner's card: two people share one number
    assert whose["none"] >= 1  # mistyped or replaced


def test_support_tickets_quote_crm_customer_numbers_a_few_mistyped(larger) -> None:
    sources, _ = larger
    numbers = sources["support_tickets"]["customer_no"]
    assert 0.1 <= (numbers != "").mean() <= 0.4
    assert (numbers.str.contains(r"[ \-]") | numbers.str.startswith("c")).any()  # restyled
    whose = _quoted_whose(
        larger, "support_tickets", "customer_no", "crm_contacts", "customer_number"
    )
    assert whose["own"] >= 0.85 * whose.total()
    assert whose["other"] >= 1  # a digit wrong names another customer


def test_webshop_devices_are_shared_by_one_person_or_one_household(larger) -> None:
    sources, owner = larger
    people = build_persons(IDENTIFIER_PERSONS, SEED).set_index("person_id")
    shop = sources["webshop_accounts"]
    shop = shop[(shop["device_id"] != "") & (shop["account_no"] != "")]
    persons = [owner[("webshop_accounts", account)] for account in shop["account_no"]]
    shop = shop.assign(person=persons, household=people.loc[persons, "household_id"].to_numpy())
    shared = shop.groupby("device_id").filter(lambda accounts: len(accounts) > 1)
    by_device = shared.groupby("device_id")
    several_persons = by_device["person"].nunique() > 1
    assert (~several_persons).any()  # a person's second account on their usual device
    assert several_persons.any()  # partners on one device
    households = by_device["household"].agg(lambda h: h.notna().all() and h.nunique() == 1)
    assert households[several_persons].all()


def test_rows_without_identifying_fields_carry_no_identifier(
    sources: dict[str, pd.DataFrame],
) -> None:
    for source, column in (
        ("crm_contacts", "loyalty_card"),
        ("webshop_accounts", "device_id"),
        ("support_tickets", "customer_no"),
    ):
        records = sources[source]
        no_identity = (records[IDENTITY_COLUMNS[source]] == "").all(axis=1)
        assert no_identity.any(), source
        assert (records.loc[no_identity, column] == "").all(), source


def test_config_maps_record_ids_as_identifiers_and_no_national_id() -> None:
    sources = project_config()["sources"]
    assert sources["pos_loyalty"]["fields"]["loyalty_card"] == "card_number"
    assert sources["crm_contacts"]["fields"]["customer_number"] == "contact_id"
    assert sources["crm_contacts"]["fields"]["loyalty_card"] == "loyalty_card"
    assert sources["support_tickets"]["fields"]["customer_number"] == "customer_no"
    assert sources["webshop_accounts"]["fields"]["device_id"] == "device_id"
    # A national id would need a hashing key before the demo could run.
    assert not any("national_id" in source["fields"] for source in sources.values())


def test_shipped_demo_config_maps_the_generated_columns() -> None:
    shipped = yaml.safe_load((REPO_ROOT / "config/demo.yaml").read_text(encoding="utf-8"))
    generated = project_config()["sources"]
    assert list(shipped["sources"]) == list(generated)
    for name, source in generated.items():
        assert shipped["sources"][name]["fields"] == source["fields"], name


def test_main_writes_files_and_prints_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([str(tmp_path), "--persons", "50", "--seed", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7  # four sources, truth, config, total
    assert "profile realistic" in lines[-1]
    assert (tmp_path / "meld.yaml").is_file()


def test_generate_rejects_zero_persons(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path, 0, 1)
