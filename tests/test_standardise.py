"""Tests for the pure standardisation functions in ``linkage.ingest.standardise``."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import pkgutil
from collections.abc import Callable
from datetime import date
from types import ModuleType

import pytest

from linkage.ingest import standardise
from linkage.ingest.standardise.cleaned import Cleaned
from linkage.ingest.standardise.contact import standardise_email, standardise_phone
from linkage.ingest.standardise.dates import parse_date
from linkage.ingest.standardise.names import split_full_name, standardise_name
from linkage.ingest.standardise.places import (
    parse_address,
    standardise_country,
    standardise_postcode,
    standardise_street,
)
from linkage.ingest.standardise.text import clean_display, fold_for_matching

STANDARDISE_MODULES = [
    standardise,
    *(
        importlib.import_module(f"{standardise.__name__}.{info.name}")
        for info in pkgutil.iter_modules(standardise.__path__)
    ),
]


@pytest.mark.parametrize("module", STANDARDISE_MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: ModuleType) -> None:
    results = doctest.testmod(module)
    assert results.failed == 0


def test_every_standardise_function_shows_examples() -> None:
    attempted = sum(doctest.testmod(m).attempted for m in STANDARDISE_MODULES)
    assert attempted >= 49  # as many as the single module held before the split


def test_cleaned_is_immutable() -> None:
    cleaned = Cleaned("x", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cleaned.value = "y"  # type: ignore[misc]


CLEANED_FUNCTIONS: list[Callable[[str | None], Cleaned]] = [
    standardise_name,
    standardise_email,
    lambda raw: standardise_phone(raw, "SE"),
    lambda raw: parse_date(raw, None),
    lambda raw: parse_date(raw, "%d.%m.%Y"),
    lambda raw: standardise_postcode(raw, "GB"),
    lambda raw: standardise_postcode(raw, None),
]


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n", "\u00a0\u200b"])
@pytest.mark.parametrize("function", CLEANED_FUNCTIONS)
def test_missing_input_is_missing_not_a_problem(
    function: Callable[[str | None], Cleaned], raw: str | None
) -> None:
    assert function(raw) == Cleaned(None, None)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_input_gives_no_parts(raw: str | None) -> None:
    assert fold_for_matching(raw) is None
    assert clean_display(raw) is None
    assert split_full_name(raw) == (None, None)
    assert parse_address(raw) == (None, None, None)
    assert standardise_street(raw) is None
    assert standardise_country(raw) is None


# --- fold_for_matching ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jörg", "jorg"),
        ("Łukasz", "lukasz"),
        ("Ærø", "aero"),
        ("Straße", "strasse"),
        ("Øyvind", "oyvind"),
        ("Żółć Ångström", "zolc angstrom"),
        ("  Anna   Karin\t", "anna karin"),
        ("Anna - Karin", "anna-karin"),
        ("Anna--Karin", "anna-karin"),
        ("O’Brien", "o'brien"),
        ("D´Angelo", "d'angelo"),
        ("Smith,John", "smith john"),
        ("J.R.R. Tolkien", "j r r tolkien"),
        ("ﬁnn", "finn"),  # NFKC ligature
        ("Ｊｏｒｇ １２", "jorg 12"),  # full-width
        ("-Anna-", "anna"),
        ("Hans\u00adPeter", "hanspeter"),  # soft hyphen
        ("???", None),
        ("- '", None),
        ("", None),
    ],
)
def test_fold_for_matching(raw: str, expected: str | None) -> None:
    assert fold_for_matching(raw) == expected


# --- clean_display -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("JÖRG MÜLLER", "Jörg Müller"),
        ("anna-karin", "Anna-Karin"),
        ("o'brien", "O'Brien"),
        ("O’BRIEN", "O’Brien"),
        ("d'angelo", "D'Angelo"),
        ("king's road", "King's Road"),
        ("LUDWIG VAN BEETHOVEN", "Ludwig van Beethoven"),
        ("anna von der leyen", "Anna von der Leyen"),
        ("maria de la cruz", "Maria de La Cruz"),
        ("VAN MORRISON", "Van Morrison"),  # a particle first stays capitalised
        ("MORRISON VAN", "Morrison Van"),  # and so does one at the end
        ("FRANKFURT AM MAIN", "Frankfurt am Main"),
        ("STRATFORD-UPON-AVON", "Stratford-upon-Avon"),
        ("MCDONALD", "McDonald"),
        ("j.r.r. tolkien", "J.R.R. Tolkien"),
        ("JOHN SMITH III", "John Smith III"),
        ("12A HIGH STREET", "12A High Street"),
        ("HAUPTSTRAßE 5", "Hauptstraße 5"),
        ("ŁUKASZ ŻÓŁĆ", "Łukasz Żółć"),
        ("ÆRØ", "Ærø"),
        ("  Jörg\u00a0  Müller\u200b ", "Jörg Müller"),
        ("Jo\u0308rg", "Jörg"),  # decomposed umlaut becomes NFC
        ("McDonald", "McDonald"),  # mixed case is kept
        ("Ludwig VAN beethoven", "Ludwig VAN beethoven"),
        ("iPhone", "iPhone"),
        ("12345", "12345"),
    ],
)
def test_clean_display(raw: str, expected: str) -> None:
    assert clean_display(raw) == expected


# --- standardise_name ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jörg", "jorg"),
        ("  ŁUKASZ ", "lukasz"),
        ("Dr. Jörg", "jorg"),
        ("Dr Jörg", "jorg"),
        ("Prof. Dr. Anna-Karin", "anna-karin"),
        ("Herr Müller", "muller"),
        ("Frau Schmidt", "schmidt"),
        ("Mr Smith", "smith"),
        ("Mrs. Smith", "smith"),
        ("Ms Smith", "smith"),
        ("Miss Smith", "smith"),
        ("Sir Elton", "elton"),
        ("Pan Kowalski", "kowalski"),
        ("Pani Zofia", "zofia"),
        ("Fru Andersson", "andersson"),
        ("Hr. Hansen", "hansen"),
        ("Smith Jr.", "smith"),
        ("Smith, Jr.", "smith"),
        ("Smith Sr", "smith"),
        ("Smith III", "smith"),
        ("Smith II", "smith"),
        ("Smith PhD", "smith"),
        ("Smith Ph.D.", "smith"),
        ("Smith MD", "smith"),
        ("Dr. Smith, M.D.", "smith"),
        ("O’Brien", "o'brien"),
        ("Øyvind", "oyvind"),
        ("Anna Karin", "anna karin"),
        ("J.", "j"),
        ("Pan", "pan"),  # a lone title that is also a surname is kept
        ("Drake", "drake"),  # a name starting with a title's letters is not a title
        ("Misson", "misson"),
    ],
)
def test_standardise_name(raw: str, expected: str) -> None:
    assert standardise_name(raw) == Cleaned(expected, None)


@pytest.mark.parametrize(
    "raw",
    ["12345", "Anna2", "???", "--", "Mr", "Dr.", "Frau", "Jr.", "N/A", "unknown", "NULL",
     "okänd", "john@example.com"],
)  # fmt: skip
def test_standardise_name_flags_junk(raw: str) -> None:
    assert standardise_name(raw) == Cleaned(None, "invalid_name")


# --- split_full_name -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jörg Müller", ("Jörg", "Müller")),
        ("John Paul Smith", ("John", "Smith")),
        ("Ludwig van Beethoven", ("Ludwig", "van Beethoven")),
        ("Anna von der Leyen", ("Anna", "von der Leyen")),
        ("Maria de la Cruz", ("Maria", "de la Cruz")),
        ("Marine Le Pen", ("Marine", "Le Pen")),
        ("Karl-Theodor zu Guttenberg", ("Karl-Theodor", "zu Guttenberg")),
        ("Hilma af Klint", ("Hilma", "af Klint")),
        ("Rembrandt Harmenszoon van Rijn", ("Rembrandt", "van Rijn")),
        ("Smith, John", ("John", "Smith")),
        ("Smith, John Paul", ("John", "Smith")),
        ("Smith,John", ("John", "Smith")),
        ("van Beethoven, Ludwig", ("Ludwig", "van Beethoven")),
        ("VAN BEETHOVEN, LUDWIG", ("Ludwig", "van Beethoven")),
        ("Dr. Jörg Müller", ("Jörg", "Müller")),
        ("Prof. Dr. Jörg Müller", ("Jörg", "Müller")),
        ("Herr Müller, Jörg", ("Jörg", "Müller")),
        ("Müller, Dr. Jörg", ("Jörg", "Müller")),
        ("Smith Jr., John", ("John", "Smith")),
        ("John Smith, Jr.", ("John", "Smith")),
        ("John Smith Jr", ("John", "Smith")),
        ("Smith, John, PhD", ("John", "Smith")),
        ("Pani Anna Kowalska", ("Anna", "Kowalska")),
        ("Mr & Mrs Smith", (None, "Smith")),
        ("J. Smith", ("J.", "Smith")),
        ("Smith, J.R.", ("J.R.", "Smith")),  # dotted initials, not the suffix Jr.
        ("John Smith Jr.", ("John", "Smith")),
        ("J.Smith", ("J.", "Smith")),
        ("Smith, J. R.", ("J.", "Smith")),
        ("Madonna", (None, "Madonna")),
        ("Dr. Müller", (None, "Müller")),
        ("Müller, Dr.", (None, "Müller")),
        ("JÖRG MÜLLER", ("Jörg", "Müller")),
        ("jörg müller", ("Jörg", "Müller")),
        ("Jörg MÜLLER", ("Jörg", "Müller")),
        ("ANNA VON DER LEYEN", ("Anna", "von der Leyen")),
        ("o'brien, seán", ("Seán", "O'Brien")),
        ("  Anna-Karin    Öberg  ", ("Anna-Karin", "Öberg")),
        ("Mr", (None, None)),
        (" , ", (None, None)),
    ],
)
def test_split_full_name(raw: str, expected: tuple[str | None, str | None]) -> None:
    assert split_full_name(raw) == expected


# --- standardise_email ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john.doe@example.com", "john.doe@example.com"),
        ("  John.Doe@Example.COM ", "john.doe@example.com"),
        ("mailto:john@x.com", "john@x.com"),
        ("MAILTO: john@x.com", "john@x.com"),
        ("<john@x.com>", "john@x.com"),
        ("mailto:<John@X.com>", "john@x.com"),
        ("John Doe <JD@Example.org>", "jd@example.org"),
        ("anna+news@firma.se", "anna+news@firma.se"),
        ("jörg@münchen.de", "jörg@münchen.de"),
        ("user@xn--mnchen-3ya.de", "user@münchen.de"),
        ("o'brien@example.co.uk", "o'brien@example.co.uk"),
    ],
)
def test_standardise_email(raw: str, expected: str) -> None:
    assert standardise_email(raw) == Cleaned(expected, None)


@pytest.mark.parametrize(
    "raw",
    ["a@b", "john..doe@x.com", "name@", "@x.com", "john doe@x.com", "john@@x.com", "john",
     ".john@x.com", "john.@x.com", "john@x..com", "john@-x.com", "x@localhost", "mailto:",
     "<>", "john@x.com;jane@y.com"],
)  # fmt: skip
def test_standardise_email_flags_invalid(raw: str) -> None:
    assert standardise_email(raw) == Cleaned(None, "invalid_email")


# --- standardise_phone ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # Sweden
        ("+46701234567", None, "+46701234567"),
        ("070-123 45 67", "SE", "+46701234567"),
        ("070-123 45 67", "se", "+46701234567"),
        ("0046 70 123 45 67", None, "+46701234567"),
        ("0046 70 123 45 67", "SE", "+46701234567"),
        ("+46 (0)70 123 45 67", None, "+46701234567"),
        ("0046 (0)70 123 45 67", None, "+46701234567"),
        ("(0)70 1234567", "SE", "+46701234567"),
        ("+460701234567", None, "+46701234567"),
        ("08-123 456 78", "SE", "+46812345678"),
        ("Tel: 070-123 45 67 (mobil)", "SE", "+46701234567"),
        ("070-123 45 67 ext. 12", "SE", "+46701234567"),
        ("070 123 45 67 ankn. 12", "SE", "+46701234567"),
        ("０７０－１２３ ４５ ６７", "SE", "+46701234567"),
        ("070-123 45 67", "Sweden", "+46701234567"),
        # Norway
        ("912 34 567", "NO", "+4791234567"),
        ("+47 912 34 567", None, "+4791234567"),
        ("0047 22 00 12 34", "NO", "+4722001234"),
        ("+47 (0)22 00 12 34", None, "+4722001234"),  # Norway has no trunk prefix
        # Germany
        ("0151 23456789", "DE", "+4915123456789"),
        ("00 49 151 23456789", None, "+4915123456789"),
        ("+49 (0)30 1234567", None, "+49301234567"),
        ("030/1234567", "DE", "+49301234567"),
        ("030 1234567 Durchwahl 12", "DE", "+49301234567"),
        # Poland
        ("512 345 678", "PL", "+48512345678"),
        ("+48 22 123 45 67", None, "+48221234567"),
        ("0048512345678", None, "+48512345678"),
        ("22 123 45 67 wew. 204", "PL", "+48221234567"),
        ("+48 (0)22 123 45 67", None, "+48221234567"),  # Poland has no trunk prefix
        # United Kingdom
        ("07911 123456", "GB", "+447911123456"),
        ("07911 123456", "uk", "+447911123456"),
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 7911 123456 x123", None, "+447911123456"),
        # A foreign number in international format parses whatever the region.
        ("+49 151 23456789", "SE", "+4915123456789"),
    ],
)
def test_standardise_phone(raw: str, region: str | None, expected: str) -> None:
    assert standardise_phone(raw, region) == Cleaned(expected, None)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("070-123 45 67", None),  # national number without a region
        ("070-123 45 67", "XX"),  # unknown region
        ("070-123 45", "SE"),  # too short
        ("070-123 45 67 89", "SE"),  # too long
        ("+46 70 123 45 67 / 08-123 456", "SE"),  # two numbers
        ("912 34 56", "NO"),
        ("+47 912 34 5678", None),
        ("0151 2345", "DE"),
        ("+48 512 345 67", None),
        ("+48 512 345 6789", None),
        ("07911 12345", "GB"),
        ("+44 7911 1234567", None),
        ("07911 123456", "SE"),  # a British number read as Swedish
        ("12", "SE"),
        ("no phone", "SE"),
        ("+", None),
    ],
)
def test_standardise_phone_flags_invalid(raw: str, region: str | None) -> None:
    assert standardise_phone(raw, region) == Cleaned(None, "invalid_phone")


# --- parse_date ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        ("1980-02-01", None, date(1980, 2, 1)),
        (" 1980-02-01 ", None, date(1980, 2, 1)),
        ("1980-02-01 00:00:00", None, date(1980, 2, 1)),
        ("1980-02-01T00:00:00", None, date(1980, 2, 1)),
        ("1980-02-01T13:45:10.123+01:00", None, date(1980, 2, 1)),
        ("1980-02-01T13:45Z", None, date(1980, 2, 1)),
        ("01/02/1980", None, date(1980, 2, 1)),
        ("1/2/1980", None, date(1980, 2, 1)),
        ("01.02.1980", None, date(1980, 2, 1)),
        ("01.02.1980 12:30", None, date(1980, 2, 1)),
        ("19800201", None, date(1980, 2, 1)),
        ("01-02-1980", None, date(1980, 2, 1)),
        ("29/02/1980", None, date(1980, 2, 29)),  # leap year
        ("29.02.2000", None, date(2000, 2, 29)),  # divisible by 400: leap
        ("02/01/1980", "%m/%d/%Y", date(1980, 2, 1)),
        ("01 Feb 1980", "%d %b %Y", date(1980, 2, 1)),
        ("80-02-01", "%y-%m-%d", date(1980, 2, 1)),
        ("1980-02-01 00:00:00", "%Y-%m-%d %H:%M:%S", date(1980, 2, 1)),
        ("1980-02-01 00:00:00", "%Y-%m-%d", date(1980, 2, 1)),
    ],
)
def test_parse_date(raw: str, fmt: str | None, expected: date) -> None:
    assert parse_date(raw, fmt) == Cleaned(expected, None)


@pytest.mark.parametrize(
    ("raw", "fmt", "problem"),
    [
        ("31/02/1980", None, "impossible_date"),
        ("29/02/1981", None, "impossible_date"),  # not a leap year
        ("29.02.1900", None, "impossible_date"),  # divisible by 100: not leap
        ("31.04.1980", None, "impossible_date"),
        ("1980-13-01", None, "impossible_date"),
        ("00/01/1980", None, "impossible_date"),
        ("19800230", None, "impossible_date"),
        ("1980-02-30 00:00:00", None, "impossible_date"),
        ("02/31/1980", "%m/%d/%Y", "impossible_date"),
        ("13/13/1980", "%d/%m/%Y", "impossible_date"),
        ("garbage", None, "unparseable_date"),
        ("1980", None, "unparseable_date"),
        ("1980021", None, "unparseable_date"),  # compact dates need all 8 digits
        ("1980/02/01", None, "unparseable_date"),
        ("01/02/80", None, "unparseable_date"),
        ("1980-02-01 junk", None, "unparseable_date"),
        ("1980-02-01", "%d/%m/%Y", "unparseable_date"),  # fmt is strict
        ("Febtember 1980", "%B %Y", "unparseable_date"),
    ],
)
def test_parse_date_problems(raw: str, fmt: str | None, problem: str) -> None:
    assert parse_date(raw, fmt) == Cleaned(None, problem)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("31.12.1899", Cleaned(None, "date_out_of_range")),
        ("01.01.1900", Cleaned(date(1900, 1, 1), None)),  # bounds are inclusive
        ("2024-12-31", Cleaned(date(2024, 12, 31), None)),
        ("2025-01-01", Cleaned(None, "date_out_of_range")),
        ("31/02/2030", Cleaned(None, "impossible_date")),  # impossible beats out of range
    ],
)
def test_parse_date_range(raw: str, expected: Cleaned[date]) -> None:
    assert parse_date(raw, None, earliest=date(1900, 1, 1), latest=date(2024, 12, 31)) == expected


def test_parse_date_open_ended_range() -> None:
    assert parse_date("1850-01-01", None, latest=date(2000, 1, 1)) == Cleaned(date(1850, 1, 1))
    assert parse_date("1850-01-01", None, earliest=date(1900, 1, 1)).problem == "date_out_of_range"


# --- standardise_postcode ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("12345", "SE", "12345"),
        ("123 45", "SE", "12345"),
        ("SE-123 45", "SE", "12345"),
        ("se-123 45", "se", "12345"),
        ("S-123 45", "Sweden", "12345"),
        ("0154", "NO", "0154"),
        ("NO-0154", "NO", "0154"),
        ("10115", "DE", "10115"),
        ("D-10115", "DE", "10115"),
        ("01067", "Deutschland", "01067"),
        ("00-001", "PL", "00-001"),
        ("00001", "PL", "00-001"),
        ("00 001", "PL", "00-001"),
        ("PL-00-001", "PL", "00-001"),
        ("SW1A 1AA", "GB", "SW1A 1AA"),
        ("sw1a1aa", "GB", "SW1A 1AA"),
        ("  sw1a   1aa ", "UK", "SW1A 1AA"),
        ("LS1 4AP", "GB", "LS1 4AP"),
        ("M1 1AE", "GB", "M1 1AE"),
        ("B33 8TH", "GB", "B33 8TH"),
        ("CR2 6XH", "GB", "CR2 6XH"),
        ("DN55 1PT", "GB", "DN55 1PT"),
        ("W1A 0AX", "GB", "W1A 0AX"),
        ("EC1A 1BB", "GB", "EC1A 1BB"),
        ("GIR 0AA", "GB", "GIR 0AA"),
        ("75008", "FR", "75008"),  # a country without rules: only tidied
        (" ab  12 ", None, "AB 12"),
        ("sw1a 1aa", "Atlantis", "SW1A 1AA"),
    ],
)
def test_standardise_postcode(raw: str, country: str | None, expected: str) -> None:
    assert standardise_postcode(raw, country) == Cleaned(expected, None)


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("1234", "SE"),
        ("123456", "SE"),
        ("12-345", "SE"),
        ("154", "NO"),
        ("01540", "NO"),
        ("1011", "DE"),
        ("101155", "DE"),
        ("NO-10115", "DE"),  # another country's prefix
        ("0-001", "PL"),
        ("00-0011", "PL"),
        ("12345", "GB"),
        ("SW1A", "GB"),
        ("Q1 1AA", "GB"),  # Q never starts a postcode
        ("SW1A 1CA", "GB"),  # C never appears in the inward code
        ("SW1A 1AAA", "GB"),
    ],
)
def test_standardise_postcode_flags_wrong_shape(raw: str, country: str) -> None:
    assert standardise_postcode(raw, country) == Cleaned(None, "invalid_postcode")


# --- parse_address -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("Storgatan 12, 123 45 Stockholm", None, ("Storgatan 12", "123 45", "Stockholm")),
        ("Storgatan 12, SE-123 45 Stockholm", None, ("Storgatan 12", "123 45", "Stockholm")),
        ("Storgatan 12, 12345 Stockholm", "SE", ("Storgatan 12", "12345", "Stockholm")),
        ("Storgatan 12 12345 Stockholm", None, ("Storgatan 12", "12345", "Stockholm")),
        ("Storgatan 12 123 45 Stockholm", "SE", ("Storgatan 12", "123 45", "Stockholm")),
        ("  Storgatan   12 ,  123 45   Stockholm  ", None, ("Storgatan 12", "123 45", "Stockholm")),
        ("Storgatan 12, 123 45 Stockholm, Sweden", None, ("Storgatan 12", "123 45", "Stockholm")),
        ("Storgatan 12, 12345 Stockholm SE", None, ("Storgatan 12", "12345", "Stockholm")),
        ("STORGATAN 12, 123 45 STOCKHOLM", None, ("Storgatan 12", "123 45", "Stockholm")),
        (
            "Storgatan 12 lgh 1101, 123 45 Stockholm",
            None,
            ("Storgatan 12 lgh 1101", "123 45", "Stockholm"),
        ),
        ("Box 123, 123 45 Stockholm", None, ("Box 123", "123 45", "Stockholm")),
        ("123 45 Stockholm", None, (None, "123 45", "Stockholm")),
        ("Hauptstraße 5, 10115 Berlin", None, ("Hauptstraße 5", "10115", "Berlin")),
        ("Hauptstraße 5, D-10115 Berlin", "DE", ("Hauptstraße 5", "10115", "Berlin")),
        ("Hauptstraße 5, 10115 Berlin, Deutschland", None, ("Hauptstraße 5", "10115", "Berlin")),
        ("Hauptstraße 5 10115 Berlin Deutschland", None, ("Hauptstraße 5", "10115", "Berlin")),
        (
            "Mainzer Landstraße 50, 60325 Frankfurt am Main",
            None,
            ("Mainzer Landstraße 50", "60325", "Frankfurt am Main"),
        ),
        ("Am Markt 1, 06108 Halle (Saale)", None, ("Am Markt 1", "06108", "Halle (Saale)")),
        ("ul. Kwiatowa 3, 00-001 Warszawa", None, ("ul. Kwiatowa 3", "00-001", "Warszawa")),
        (
            "ul. Kwiatowa 3/5, 00-001 Warszawa, Polska",
            "PL",
            ("ul. Kwiatowa 3/5", "00-001", "Warszawa"),
        ),
        ("ul. Długa 7 31-147 Kraków", None, ("ul. Długa 7", "31-147", "Kraków")),
        ("Karl Johans gate 7, 0154 Oslo", None, ("Karl Johans gate 7", "0154", "Oslo")),
        # "Ås" and "Bø" fold to the codes of American Samoa and Bolivia: towns, not countries.
        ("Drøbakveien 1, 1430 Ås", None, ("Drøbakveien 1", "1430", "Ås")),
        ("Gullbringvegen 36, 3800 Bø", None, ("Gullbringvegen 36", "3800", "Bø")),
        ("Karl Johans gate 7, 0154 Oslo, Norge", "NO", ("Karl Johans gate 7", "0154", "Oslo")),
        ("12 High Street, London SW1A 1AA", None, ("12 High Street", "SW1A 1AA", "London")),
        ("12 High Street, London, SW1A 1AA", None, ("12 High Street", "SW1A 1AA", "London")),
        (
            "Flat 3, 12 High Street, Leeds LS1 4AP",
            None,
            ("Flat 3, 12 High Street", "LS1 4AP", "Leeds"),
        ),
        ("12 high street, london sw1a1aa", "GB", ("12 High Street", "SW1A 1AA", "London")),
        (
            "12 High Street, London SW1A 1AA, United Kingdom",
            None,
            ("12 High Street", "SW1A 1AA", "London"),
        ),
        (
            "12 High Street, London SW1A 1AA, Great Britain",
            None,
            ("12 High Street", "SW1A 1AA", "London"),
        ),
        (
            "12 High Street, London SW1A 1AA, England",
            None,
            ("12 High Street", "SW1A 1AA", "London"),
        ),
        # Without a comma the city cannot be told from the street.
        ("12 High Street London SW1A 1AA", None, ("12 High Street London", "SW1A 1AA", None)),
        ("Flat 3, 12 High Street SW1A 1AA", None, ("Flat 3, 12 High Street", "SW1A 1AA", None)),
        ("SW1A 1AA", None, (None, "SW1A 1AA", None)),
    ],
)
def test_parse_address(
    raw: str, country: str | None, expected: tuple[str | None, str | None, str | None]
) -> None:
    assert parse_address(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("10 Downing Street, London", None),
        ("Somewhere without a postcode", None),
        ("Hauptstraße 1234 Berlin", None),  # no comma and no house number before "1234"
        ("Storgatan 123 45 Stockholm", None),  # is 123 a house number or part of a postcode?
        ("Karl Johans gate 7, 0154 Oslo", "SE"),  # four digits are not a Swedish postcode
        ("Storgatan 12, 123 45 Stockholm", "GB"),
        ("12 High Street, London SW1A 1AA", "DE"),
        ("Storgatan 12, 123 45 Stockholm, Södermalm", None),
    ],
)
def test_parse_address_without_postcode_keeps_the_whole_line(raw: str, country: str | None) -> None:
    assert parse_address(raw, country) == (clean_display(raw), None, None)


# --- standardise_street --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hauptstraße 5", "hauptstrasse 5"),
        ("Hauptstr. 5", "hauptstrasse 5"),
        ("Kirkegt. 21", "kirkegt 21"),
        ("Kirkegata 21", "kirkegt 21"),  # Norwegian gata/gate/gt. are one street
        ("Drammensveien 12", "drammensvn 12"),
        ("Drammensvn. 12", "drammensvn 12"),
        ("Hauptstr 5", "hauptstrasse 5"),
        ("HAUPTSTRASSE 5", "hauptstrasse 5"),
        ("Haupt-Straße 5", "hauptstrasse 5"),
        ("Haupt Str. 5", "hauptstrasse 5"),
        ("Berliner Straße 5", "berlinerstrasse 5"),
        ("Storgatan 12", "storgatan 12"),
        ("Storg. 12", "storgatan 12"),
        ("Drottningg. 5", "drottninggatan 5"),
        ("Bldg. 5", "bldg 5"),  # too short a stem to be a Swedish "-g." street
        ("Kungsgatan 12 B", "kungsgatan 12b"),
        ("ul. Kwiatowa 3", "kwiatowa 3"),
        ("ULICA Kwiatowa 3", "kwiatowa 3"),
        ("Ul.", "ul"),
        ("Karl Johans gate 7", "karl johans gate 7"),
        ("12 High St.", "12 high street"),
        ("12 High St", "12 high street"),
        ("Baker Rd", "baker road"),
        ("12 Park Ave", "12 park avenue"),
        ("St John's Road", "st john's road"),  # a leading St is Saint
        ("  Øster   Allé  4 ", "oster alle 4"),
        ("...", None),
    ],
)
def test_standardise_street(raw: str, expected: str | None) -> None:
    assert standardise_street(raw) == expected


def test_street_variants_fold_to_one_matching_form() -> None:
    variants = ["Hauptstraße 5", "Hauptstr. 5", "HAUPTSTR 5", "Haupt-Str. 5", "hauptstrasse 5"]
    assert {standardise_street(variant) for variant in variants} == {"hauptstrasse 5"}


# --- standardise_country -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SE", "SE"),
        ("se", "SE"),
        ("Sweden", "SE"),
        ("Sverige", "SE"),
        ("SWE", "SE"),
        ("Norway", "NO"),
        ("Norge", "NO"),
        ("NO", "NO"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("Tyskland", "DE"),
        ("Poland", "PL"),
        ("Polska", "PL"),
        ("United Kingdom", "GB"),
        ("the United Kingdom", "GB"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("GB", "GB"),
        ("Großbritannien", "GB"),
        ("  sverige ", "SE"),
        ("FR", "FR"),
    ],
)
def test_standardise_country(raw: str, expected: str) -> None:
    assert standardise_country(raw) == expected


@pytest.mark.parametrize("raw", ["Atlantis", "France", "ZZ", "S", "123", "Europe"])
def test_standardise_country_unknown_is_none(raw: str) -> None:
    assert standardise_country(raw) is None
