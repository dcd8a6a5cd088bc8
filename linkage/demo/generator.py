"""Deterministic synthetic customer records for demos, tests and benchmarks.

The generator invents ``persons`` people in five countries and writes what four
source systems would hold about them, with the errors real systems have: typos,
nicknames, lost diacritics, swapped day and month, old addresses and e-mails,
phones in every format, missing values and a handful of unusable rows. It also
writes the ground truth (which record belongs to which person) and a project
config, ``meld.yaml``, that points Meld at the files.

Besides names, the sources carry identifiers the way real systems do, sparse and
not always right: the point-of-sale card number is a ``loyalty_card``; the CRM
records the loyalty card of a minority of its customers (a few mistyped, stale, or
the partner's card of a household); support tickets sometimes quote the CRM contact
id as ``customer_number`` (a few with a digit wrong, which then names someone
else); and web-shop accounts carry the ``device_id`` they were opened on, which a
person's second account and some households share. There are no national ids: they
would need a hashing key just to run the demo.

Layout of ``OUT``::

    meld.yaml
    landing/crm_contacts.csv
    landing/webshop_accounts.csv
    landing/support_tickets.jsonl
    landing/pos_loyalty.parquet
    landing/truth.csv

Randomness comes from ``numpy.random.default_rng`` seeded from the ``seed``
argument (one independent stream per stage) and from Faker, which is only used,
seeded, to build pools of names and street names once per locale. The same
arguments always give byte-identical files.

Usage::

    python -m linkage.demo.generator data/demo --persons 10000 --seed 42
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from faker import Faker
from unidecode import unidecode

from linkage.demo.orders import ORDERS_FILE, PRODUCTS_FILE, write_orders

__all__ = ["SOURCE_FILES", "build_persons", "format_phone", "generate", "main", "project_config"]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- #
# Tunable knobs
# --------------------------------------------------------------------------- #

REFERENCE_DATE = np.datetime64("2025-01-01")
"""Ages are computed against this fixed day so output never depends on today."""
MIN_AGE, MAX_AGE = 18, 90

COUNTRY_WEIGHTS: dict[str, float] = {"SE": 0.40, "NO": 0.15, "DE": 0.20, "PL": 0.10, "GB": 0.15}

# Zipf exponents: larger means fewer, more shared values.
ZIPF_FIRST_NAMES = 0.75
ZIPF_LAST_NAMES = 0.85
ZIPF_STREETS = 0.7
ZIPF_CITIES = 1.0
ZIPF_EMAIL_DOMAINS = 1.2

# Persons.
P_HOUSEHOLD = 0.25  # share of persons living with another person
P_PARTNER_OPPOSITE_GENDER = 0.85
P_FAMILY_EMAIL = 0.15  # share of households where both use the same e-mail
P_MOVED = 0.12  # persons with an older address still in some systems
P_EMAIL_CHANGED = 0.15  # persons with an older e-mail still in some systems

# Per record. Error rates are multiplied by the source's ``noise`` factor.
P_OLD_ADDRESS = 0.5  # of a mover's records, share showing the old address
P_OLD_EMAIL = 0.5  # of an e-mail changer's records, share showing the old e-mail
P_DUPLICATE_ACCOUNT_NEW_EMAIL = 0.7  # second webshop sign-up uses another e-mail
P_NICKNAME = 0.2  # of records of persons whose first name has a nickname
P_TYPO = 0.025  # one substitution, transposition or deletion
P_DIACRITICS_LOST = 0.15  # of names with diacritics: Jörg -> Jorg
P_TRANSLITERATED = 0.05  # of names with diacritics: Jörg -> Joerg
P_UPPER = 0.03
P_LOWER = 0.015
P_EXTRA_WHITESPACE = 0.02
P_DOB_SWAPPED = 0.02  # day and month swapped (only where the result is a valid date)
P_EMAIL_UPPER = 0.03
P_EMAIL_CAPITALISED = 0.02
P_STREET_ABBREVIATED = 0.15  # Hauptstraße -> Hauptstr., Station Road -> Station Rd
P_POSTCODE_UNFORMATTED = 0.08  # "123 45" -> "12345", "01067" -> "1067"
P_CITY_EXONYM = 0.05  # München -> Munich
P_COUNTRY_LOWER = 0.02
P_COUNTRY_AS_NAME = 0.05  # "Sverige" instead of "SE" (support and POS only)
P_ADDRESS_WITH_COUNTRY = 0.15  # webshop address line ends with ", Sweden"
P_FIRST_NAME_ONLY = 0.03  # support ticket signed with the first name only
P_UNUSABLE = 0.001  # per kind (empty id; all identifying fields empty), at least one each

# Identifiers quoted across systems (drawn after the records, from their own stream).
P_CRM_LOYALTY_CARD = 0.35  # of CRM records of loyalty cardholders: the card is on file
P_CARD_MISTYPED = 0.03  # of cards on file: one digit wrong
P_CARD_STALE = 0.03  # of cards on file: an old, replaced card no other system knows
P_CARD_OF_PARTNER = 0.04  # of cards on file of persons living with a cardholder: the partner's
P_CARD_GROUPED = 0.25  # cards on file written in groups of four digits
P_TICKET_CUSTOMER_NUMBER = 0.3  # of tickets of CRM customers: quotes the customer number
P_CUSTOMER_NUMBER_MISTYPED = 0.04  # of quoted customer numbers: one digit wrong
P_CUSTOMER_NUMBER_RESTYLED = 0.2  # quoted as "c0001234", "C-0001234" or "C 0001234"
P_WEBSHOP_DEVICE = 0.7  # web-shop accounts with the id of the device they were opened on
P_USUAL_DEVICE = 0.75  # of those: the person's usual device (else another one)
P_SHARED_DEVICE = 0.4  # households whose partners use one device

# --------------------------------------------------------------------------- #
# Reference data
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class City:
    """A city with its postcodes: a numeric range, or UK outward codes."""

    name: str
    low: int = 0
    high: int = 0
    outward: tuple[str, ...] = ()


@dataclass(frozen=True)
class CountrySpec:
    """Everything country-specific the generator needs."""

    code: str
    locale: str
    faker_locale: str
    names: tuple[str, ...]
    calling_code: str
    trunk: str
    mobile_prefixes: tuple[tuple[str, int], ...]
    """(prefix of the national significant number, its total length)."""
    phone_prefix_len: int
    phone_groups: tuple[int, ...]
    """National grouping of the digits after the prefix; () keeps them together."""
    cities: tuple[City, ...]
    common_last_names: tuple[str, ...]
    common_streets: tuple[str, ...]
    email_domains: tuple[str, ...]
    titles_male: tuple[str, ...]
    titles_female: tuple[str, ...]
    nicknames_male: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nicknames_female: dict[str, tuple[str, ...]] = field(default_factory=dict)
    street_abbreviations: tuple[tuple[str, str], ...] = ()
    excluded_mobile_ranges: tuple[str, ...] = ()
    """Starts of national numbers inside ``mobile_prefixes`` that belong elsewhere."""


COUNTRIES: dict[str, CountrySpec] = {
    "SE": CountrySpec(
        code="SE",
        locale="sv_SE",
        faker_locale="sv_SE",
        names=("Sweden", "Sverige"),
        calling_code="46",
        trunk="0",
        mobile_prefixes=(("70", 9), ("72", 9), ("73", 9), ("76", 9), ("79", 9)),
        phone_prefix_len=2,
        phone_groups=(3, 2, 2),
        cities=(
            City("Stockholm", 11120, 12999),
            City("Göteborg", 41101, 42699),
            City("Malmö", 21110, 21899),
            City("Uppsala", 75220, 75759),
            City("Västerås", 72210, 72599),
            City("Örebro", 70210, 70399),
            City("Linköping", 58220, 58999),
            City("Helsingborg", 25220, 25699),
            City("Jönköping", 55310, 55699),
            City("Norrköping", 60210, 60399),
            City("Lund", 22220, 22799),
            City("Umeå", 90320, 90799),
            City("Gävle", 80250, 80699),
            City("Borås", 50330, 50799),
            City("Södertälje", 15130, 15299),
            City("Karlstad", 65220, 65699),
            City("Växjö", 35230, 35599),
            City("Luleå", 97230, 97799),
            City("Östersund", 83130, 83299),
            City("Kiruna", 98130, 98199),
        ),
        common_last_names=(
            "Andersson",
            "Johansson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsson",
            "Olsson",
            "Persson",
            "Svensson",
            "Gustafsson",
        ),
        common_streets=("Storgatan", "Drottninggatan", "Kyrkogatan", "Skolgatan", "Sveavägen"),
        email_domains=(
            "gmail.com",
            "hotmail.com",
            "telia.com",
            "outlook.com",
            "live.se",
            "yahoo.se",
        ),
        titles_male=("Dr.",),
        titles_female=("Dr.",),
        nicknames_male={
            "Karl": ("Kalle",),
            "Lars": ("Lasse",),
            "Mikael": ("Micke",),
            "Fredrik": ("Fredde",),
            "Magnus": ("Mange",),
            "Joakim": ("Jocke",),
            "Per": ("Pelle",),
        },
        nicknames_female={
            "Elisabeth": ("Lisa", "Lisbeth"),
            "Katarina": ("Kajsa", "Kattis"),
            "Margareta": ("Maggan", "Greta"),
            "Kristina": ("Stina", "Kicki"),
            "Madeleine": ("Madde",),
            "Susanne": ("Sussie",),
        },
        street_abbreviations=(("gatan", "g."), ("vägen", "v.")),
    ),
    "NO": CountrySpec(
        code="NO",
        locale="nb_NO",
        faker_locale="no_NO",  # Faker calls Norwegian Bokmål no_NO
        names=("Norway", "Norge"),
        calling_code="47",
        trunk="",
        mobile_prefixes=tuple(
            (p, 8)
            for p in ("40", "41", "46", "47", "48", "90", "91", "92", "93", "94", "95", "97", "98")
        ),
        phone_prefix_len=3,
        phone_groups=(2, 3),
        cities=(
            City("Oslo", 150, 1295),
            City("Bergen", 5003, 5268),
            City("Trondheim", 7010, 7099),
            City("Stavanger", 4005, 4099),
            City("Drammen", 3001, 3048),
            City("Fredrikstad", 1601, 1639),
            City("Kristiansand", 4604, 4639),
            City("Sandnes", 4306, 4329),
            City("Tromsø", 9006, 9039),
            City("Sarpsborg", 1701, 1747),
            City("Skien", 3701, 3736),
            City("Ålesund", 6002, 6030),
            City("Tønsberg", 3103, 3127),
            City("Bodø", 8001, 8049),
            City("Hamar", 2301, 2322),
            City("Lillehammer", 2609, 2625),
        ),
        common_last_names=(
            "Hansen",
            "Johansen",
            "Olsen",
            "Larsen",
            "Andersen",
            "Pedersen",
            "Nilsen",
            "Kristiansen",
            "Jensen",
            "Karlsen",
        ),
        common_streets=("Storgata", "Kirkegata", "Karl Johans gate", "Strandveien", "Skolegata"),
        email_domains=("gmail.com", "hotmail.com", "online.no", "outlook.com", "live.no"),
        titles_male=("Dr.",),
        titles_female=("Dr.",),
        nicknames_male={
            "Alexander": ("Alex",),
            "Kristoffer": ("Kris",),
            "Thomas": ("Tommy",),
            "Fredrik": ("Fredde",),
        },
        nicknames_female={
            "Elisabeth": ("Lisa",),
            "Margrethe": ("Grete",),
            "Kristine": ("Stine",),
            "Ingeborg": ("Inga",),
            "Johanne": ("Hanne",),
        },
        street_abbreviations=(("gata", "gt."), ("gate", "gt."), ("veien", "vn.")),
    ),
    "DE": CountrySpec(
        code="DE",
        locale="de_DE",
        faker_locale="de_DE",
        names=("Germany", "Deutschland"),
        calling_code="49",
        trunk="0",
        mobile_prefixes=(
            ("151", 11),
            ("152", 11),
            ("157", 11),
            ("159", 11),
            ("160", 10),
            ("162", 10),
            *((f"17{d}", 10) for d in range(10)),
        ),
        phone_prefix_len=3,
        phone_groups=(),
        cities=(
            City("Berlin", 10115, 14199),
            City("Hamburg", 20095, 22769),
            City("München", 80331, 81929),
            City("Köln", 50667, 51149),
            City("Frankfurt am Main", 60306, 60599),
            City("Stuttgart", 70173, 70629),
            City("Düsseldorf", 40210, 40629),
            City("Leipzig", 4103, 4357),
            City("Dortmund", 44135, 44388),
            City("Essen", 45127, 45359),
            City("Bremen", 28195, 28779),
            City("Dresden", 1067, 1328),
            City("Hannover", 30159, 30669),
            City("Nürnberg", 90402, 90491),
            City("Duisburg", 47051, 47279),
            City("Bochum", 44787, 44894),
            City("Münster", 48143, 48167),
            City("Freiburg im Breisgau", 79098, 79117),
            City("Augsburg", 86150, 86199),
            City("Görlitz", 2826, 2829),
        ),
        common_last_names=(
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
        ),
        common_streets=(
            "Hauptstraße",
            "Schulstraße",
            "Gartenstraße",
            "Bahnhofstraße",
            "Dorfstraße",
        ),
        email_domains=("gmx.de", "web.de", "gmail.com", "t-online.de", "outlook.de", "yahoo.de"),
        titles_male=("Herr", "Dr.", "Herr Dr."),
        titles_female=("Frau", "Dr.", "Frau Dr."),
        nicknames_male={
            "Johann": ("Hans",),
            "Johannes": ("Hannes", "Hans"),
            "Friedrich": ("Fritz",),
            "Wolfgang": ("Wolf",),
            "Alexander": ("Alex",),
            "Maximilian": ("Max",),
            "Andreas": ("Andi",),
        },
        nicknames_female={
            "Elisabeth": ("Lisa", "Elli"),
            "Katharina": ("Kathi", "Katja"),
            "Margarete": ("Grete",),
            "Gabriele": ("Gabi",),
            "Christina": ("Tina",),
            "Susanne": ("Susi",),
        },
        street_abbreviations=(("straße", "str."), ("Straße", "Str."), ("strasse", "str.")),
    ),
    "PL": CountrySpec(
        code="PL",
        locale="pl_PL",
        faker_locale="pl_PL",
        names=("Poland", "Polska"),
        calling_code="48",
        trunk="",
        mobile_prefixes=tuple(
            (p, 9) for p in ("50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88")
        ),
        phone_prefix_len=3,
        phone_groups=(3, 3),
        cities=(
            City("Warszawa", 1, 4999),
            City("Kraków", 30001, 31999),
            City("Łódź", 90001, 94999),
            City("Wrocław", 50001, 54999),
            City("Poznań", 60001, 61999),
            City("Gdańsk", 80001, 80999),
            City("Szczecin", 70001, 71999),
            City("Bydgoszcz", 85001, 85999),
            City("Lublin", 20001, 20999),
            City("Białystok", 15001, 15999),
            City("Katowice", 40001, 40999),
            City("Gdynia", 81001, 81999),
            City("Częstochowa", 42200, 42299),
            City("Rzeszów", 35001, 35999),
            City("Toruń", 87100, 87199),
            City("Kielce", 25001, 25999),
            City("Gliwice", 44100, 44199),
            City("Olsztyn", 10001, 10999),
            City("Bielsko-Biała", 43300, 43399),
            City("Zielona Góra", 65001, 65999),
        ),
        common_last_names=(
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kowalczyk",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Woźniak",
        ),
        common_streets=("ul. Polna", "ul. Leśna", "ul. Słoneczna", "ul. Krótka", "ul. Kwiatowa"),
        email_domains=("gmail.com", "wp.pl", "o2.pl", "onet.pl", "interia.pl"),
        titles_male=("Pan", "Dr"),
        titles_female=("Pani", "Dr"),
        nicknames_male={
            "Aleksander": ("Olek",),
            "Wojciech": ("Wojtek",),
            "Tomasz": ("Tomek",),
            "Krzysztof": ("Krzysiek",),
            "Jakub": ("Kuba",),
            "Piotr": ("Piotrek",),
            "Stanisław": ("Staszek",),
        },
        nicknames_female={
            "Katarzyna": ("Kasia",),
            "Małgorzata": ("Gosia",),
            "Aleksandra": ("Ola",),
            "Magdalena": ("Magda",),
            "Joanna": ("Asia",),
            "Barbara": ("Basia",),
            "Elżbieta": ("Ela",),
        },
        street_abbreviations=(("ul. ", ""),),
    ),
    "GB": CountrySpec(
        code="GB",
        locale="en_GB",
        faker_locale="en_GB",
        names=("United Kingdom", "UK", "England"),
        calling_code="44",
        trunk="0",
        # 07700 0xxxxx-09xxxx is partly unallocated, so 077 starts at 0771.
        mobile_prefixes=tuple(
            (p, 10) for p in ("71", "72", "73", "74", "75", "78", *(f"77{d}" for d in range(1, 10)))
        ),
        excluded_mobile_ranges=("7457", "7509", "7524", "7781", "7797", "7829", "7839"),
        phone_prefix_len=4,
        phone_groups=(),
        cities=(
            City(
                "London",
                outward=("SW1A", "SW1V", "E1", "E14", "N1", "NW1", "SE1", "W1T", "WC1E", "SW19"),
            ),
            City("Birmingham", outward=("B1", "B5", "B15", "B29")),
            City("Manchester", outward=("M1", "M4", "M14", "M20")),
            City("Leeds", outward=("LS1", "LS6", "LS11")),
            City("Glasgow", outward=("G1", "G12", "G41")),
            City("Liverpool", outward=("L1", "L8", "L17")),
            City("Bristol", outward=("BS1", "BS6", "BS8")),
            City("Sheffield", outward=("S1", "S10", "S11")),
            City("Edinburgh", outward=("EH1", "EH3", "EH10")),
            City("Cardiff", outward=("CF10", "CF11", "CF24")),
            City("Leicester", outward=("LE1", "LE2")),
            City("Newcastle upon Tyne", outward=("NE1", "NE6")),
            City("Nottingham", outward=("NG1", "NG7")),
            City("Brighton", outward=("BN1", "BN2")),
            City("Oxford", outward=("OX1", "OX4")),
            City("Cambridge", outward=("CB1", "CB4")),
            City("York", outward=("YO1", "YO10")),
            City("Belfast", outward=("BT1", "BT9")),
        ),
        common_last_names=(
            "Smith",
            "Jones",
            "Williams",
            "Taylor",
            "Brown",
            "Davies",
            "Evans",
            "Wilson",
            "Thomas",
            "Johnson",
        ),
        common_streets=("High Street", "Station Road", "Main Street", "Park Road", "Church Road"),
        email_domains=(
            "gmail.com",
            "hotmail.co.uk",
            "yahoo.co.uk",
            "btinternet.com",
            "outlook.com",
        ),
        titles_male=("Mr", "Mr.", "Dr.", "Dr"),
        titles_female=("Mrs", "Ms", "Miss", "Dr."),
        nicknames_male={
            "William": ("Bill", "Will"),
            "Robert": ("Bob", "Rob"),
            "Richard": ("Rick", "Dick"),
            "James": ("Jim", "Jamie"),
            "Thomas": ("Tom",),
            "Michael": ("Mike",),
            "Edward": ("Ed", "Ted"),
            "Anthony": ("Tony",),
        },
        nicknames_female={
            "Elizabeth": ("Liz", "Beth", "Lizzie"),
            "Margaret": ("Maggie", "Peggy"),
            "Katherine": ("Kate", "Kathy"),
            "Jennifer": ("Jenny",),
            "Rebecca": ("Becky",),
            "Victoria": ("Vicky",),
        },
        street_abbreviations=(
            ("Street", "St"),
            ("Road", "Rd"),
            ("Avenue", "Ave"),
            ("Lane", "Ln"),
            ("Drive", "Dr"),
        ),
    ),
}

CITY_EXONYMS: dict[str, tuple[str, ...]] = {
    "Göteborg": ("Gothenburg",),
    "München": ("Munich",),
    "Köln": ("Cologne",),
    "Nürnberg": ("Nuremberg",),
    "Frankfurt am Main": ("Frankfurt", "Frankfurt/Main"),
    "Freiburg im Breisgau": ("Freiburg",),
    "Warszawa": ("Warsaw",),
    "Kraków": ("Cracow", "Krakow"),
    "Newcastle upon Tyne": ("Newcastle",),
}

TRANSLITERATION = str.maketrans(
    {
        "ö": "oe",
        "ä": "ae",
        "ü": "ue",
        "å": "aa",
        "ø": "oe",
        "æ": "ae",
        "ß": "ss",
        "Ö": "Oe",
        "Ä": "Ae",
        "Ü": "Ue",
        "Å": "Aa",
        "Ø": "Oe",
        "Æ": "Ae",
    }
)

GB_STREET_STEMS = (
    "High",
    "Church",
    "Station",
    "Mill",
    "Park",
    "Victoria",
    "Green",
    "Manor",
    "School",
    "Queen's",
    "King's",
    "London",
    "North",
    "Chapel",
    "Bridge",
    "Grange",
    "Albert",
    "Windsor",
)
GB_STREET_SUFFIXES = (
    "Street",
    "Road",
    "Lane",
    "Avenue",
    "Close",
    "Drive",
    "Way",
    "Gardens",
    "Crescent",
    "Place",
    "Grove",
    "Terrace",
)
GB_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

PHONE_FORMATS = (
    "e164",
    "intl_spaced",
    "intl_00",
    "national",
    "national_compact",
    "trunk_paren",
    "dashed",
)


@dataclass(frozen=True)
class SourcePlan:
    """How one source system samples and distorts persons.

    Attributes:
        name: Source system name, also the file stem under ``landing/``.
        p_present: Probability that a person has any record in the source.
        p_repeat: Probability, per further record, that the person has one more.
        max_records: Cap on records per person.
        noise: Multiplier on the per-record error rates.
        missing: Null rate per output column.
        phone_formats: Relative weights of ``PHONE_FORMATS``.
        identity_columns: Columns blanked in the unusable "no identity" rows.
    """

    name: str
    p_present: float
    p_repeat: float
    max_records: int
    noise: float
    missing: dict[str, float]
    phone_formats: dict[str, float]
    identity_columns: tuple[str, ...]


SOURCE_PLANS: dict[str, SourcePlan] = {
    "crm_contacts": SourcePlan(
        name="crm_contacts",
        p_present=0.75,
        p_repeat=0.05,
        max_records=3,
        noise=1.0,
        missing={
            "given_name": 0.005,
            "family_name": 0.005,
            "birth_date": 0.06,
            "email_address": 0.10,
            "mobile": 0.12,
            "street": 0.04,
            "zip": 0.04,
            "town": 0.03,
            "country_code": 0.03,
        },
        phone_formats={"e164": 4, "national": 3, "intl_spaced": 1, "national_compact": 1},
        identity_columns=("given_name", "family_name", "email_address", "mobile"),
    ),
    "webshop_accounts": SourcePlan(
        name="webshop_accounts",
        p_present=0.58,
        p_repeat=0.15,
        max_records=2,
        noise=1.2,
        missing={"full_name": 0.01, "email": 0.005, "phone": 0.25, "shipping_address": 0.08},
        phone_formats={"e164": 3, "intl_spaced": 3, "intl_00": 2, "dashed": 1, "national": 1},
        identity_columns=("full_name", "email", "phone"),
    ),
    "support_tickets": SourcePlan(
        name="support_tickets",
        p_present=0.42,
        p_repeat=0.55,
        max_records=8,
        noise=1.5,
        missing={"name": 0.03, "contact_email": 0.08, "contact_phone": 0.35, "country": 0.10},
        phone_formats={
            "e164": 2,
            "intl_spaced": 2,
            "intl_00": 1,
            "national": 2,
            "national_compact": 1,
            "trunk_paren": 1,
            "dashed": 1,
        },
        identity_columns=("name", "contact_email", "contact_phone"),
    ),
    "pos_loyalty": SourcePlan(
        name="pos_loyalty",
        p_present=0.78,
        p_repeat=0.2,
        max_records=3,
        noise=0.8,
        missing={
            "first": 0.01,
            "surname": 0.01,
            "born": 0.10,
            "phone_no": 0.15,
            "postal_code": 0.05,
            "city": 0.05,
            "country": 0.05,
        },
        phone_formats={"national": 4, "national_compact": 2, "trunk_paren": 1, "e164": 1},
        identity_columns=("first", "surname", "phone_no"),
    ),
}

SOURCE_FILES: dict[str, str] = {
    "crm_contacts": "landing/crm_contacts.csv",
    "webshop_accounts": "landing/webshop_accounts.csv",
    "support_tickets": "landing/support_tickets.jsonl",
    "pos_loyalty": "landing/pos_loyalty.parquet",
}
TRUTH_FILE = "landing/truth.csv"
CONFIG_FILE = "meld.yaml"

# --------------------------------------------------------------------------- #
# Seeds and small helpers
# --------------------------------------------------------------------------- #

_STAGES = ("pools", "persons", "allocation", *SOURCE_PLANS, "identifiers")
"""Stages in spawn order; new stages go last so that earlier ones keep their streams."""


def _stage_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per stage, so stages never shift each other."""
    children = np.random.SeedSequence(seed).spawn(len(_STAGES))
    return {
        stage: np.random.default_rng(child) for stage, child in zip(_STAGES, children, strict=True)
    }


def _py_random(rng: np.random.Generator) -> random.Random:
    """A seeded ``random.Random`` for per-item choices inside small subsets."""
    return random.Random(int(rng.integers(2**62)))


def _zipf_choice(
    rng: np.random.Generator, pool_size: int, size: int, exponent: float
) -> np.ndarray:
    """Indices into a pool ranked by popularity, drawn with Zipf-like weights."""
    weights = 1.0 / np.arange(1, pool_size + 1) ** exponent
    return rng.choice(pool_size, size=size, p=weights / weights.sum())


def _mask(rng: np.random.Generator, size: int, p: float) -> np.ndarray:
    return rng.random(size) < p


def _apply(values: np.ndarray, mask: np.ndarray, fn: Callable[[str], str]) -> np.ndarray:
    """Return a copy of ``values`` with ``fn`` applied where ``mask`` holds and not null."""
    out = values.copy()
    for i in np.flatnonzero(mask):
        if out[i] is not None:
            out[i] = fn(out[i])
    return out


def _pick(values: np.ndarray, condition: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Element-wise ``other`` where ``condition`` holds, else ``values`` (object arrays)."""
    out = values.copy()
    out[condition] = other[condition]
    return out


_MAX_DEDUPE_ROUNDS = 50


def _dedupe(
    values: np.ndarray, redraw: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Replace later duplicates by ``redraw(indices, current)`` until all values are unique.

    Raises:
        RuntimeError: If duplicates remain after ``_MAX_DEDUPE_ROUNDS`` rounds, which
            means ``redraw`` cannot produce enough distinct values.
    """
    values = values.copy()
    for _ in range(_MAX_DEDUPE_ROUNDS):
        duplicated = pd.Series(values).duplicated().to_numpy()
        if not duplicated.any():
            return values
        idx = np.flatnonzero(duplicated)
        values[idx] = redraw(idx, values[idx])
    raise RuntimeError(
        f"{int(duplicated.sum())} values still duplicated after {_MAX_DEDUPE_ROUNDS} rounds, "
        f"e.g. {values[duplicated][0]!r}"
    )


def _object_array(values: Iterable[object]) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


# --------------------------------------------------------------------------- #
# Pools built once per locale with Faker
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class NamePools:
    """Values ranked by popularity (most common first) for one country."""

    first_male: np.ndarray
    first_female: np.ndarray
    last: np.ndarray
    streets: np.ndarray


def _ranked(draws: Iterable[str], head: Sequence[str] = ()) -> list[str]:
    """Distinct ``draws``, most frequent first, after the values in ``head``."""
    counts = Counter(draws)
    ranked = sorted(counts, key=lambda value: -counts[value])  # stable: ties keep first seen
    return list(dict.fromkeys([*head, *ranked]))


def _with_nickname_names(ranked: list[str], formal: Iterable[str]) -> np.ndarray:
    """Place names that have nicknames at popular ranks so nicknames actually occur."""
    formal = list(formal)
    rest = [name for name in ranked if name not in formal]
    for i, name in enumerate(formal):
        rest.insert(min(4 + 7 * i, len(rest)), name)
    return _object_array(rest)


def _feminine_pl(surname: str) -> str:
    """Polish adjectival surnames change ending with gender: Kowalski -> Kowalska."""
    if surname.endswith(("ki", "ny")):
        return surname[:-1] + "a"
    return surname


def _street_pool(spec: CountrySpec, fake: Faker, rng: np.random.Generator) -> list[str]:
    if spec.code == "GB":
        stems = [*GB_STREET_STEMS, *(fake.last_name() for _ in range(300))]
        draws = [
            f"{stems[int(s)]} {GB_STREET_SUFFIXES[int(x)]}"
            for s, x in zip(
                _zipf_choice(rng, len(stems), 3000, 0.6),
                rng.integers(0, len(GB_STREET_SUFFIXES), 3000),
                strict=True,
            )
        ]
        return _ranked(draws, spec.common_streets)
    if spec.code == "PL":
        prefixes = rng.choice(["ul. ", "al. ", "pl. "], size=2000, p=[0.9, 0.06, 0.04])
        return _ranked((f"{p}{fake.street_name()}" for p in prefixes), spec.common_streets)
    return _ranked((fake.street_name() for _ in range(2000)), spec.common_streets)


def _build_pools(rng: np.random.Generator) -> dict[str, NamePools]:
    """Build name and street pools for every country with seeded Faker instances."""
    pools: dict[str, NamePools] = {}
    for spec in COUNTRIES.values():
        fake = Faker(spec.faker_locale)
        fake.seed_instance(int(rng.integers(2**31)))
        draw_last = fake.last_name_male if spec.code == "PL" else fake.last_name
        pools[spec.code] = NamePools(
            first_male=_with_nickname_names(
                _ranked(fake.first_name_male() for _ in range(2500)), spec.nicknames_male
            ),
            first_female=_with_nickname_names(
                _ranked(fake.first_name_female() for _ in range(2500)), spec.nicknames_female
            ),
            last=_object_array(_ranked((draw_last() for _ in range(3000)), spec.common_last_names)),
            streets=_object_array(_street_pool(spec, fake, rng)),
        )
    return pools


# --------------------------------------------------------------------------- #
# Persons
# --------------------------------------------------------------------------- #


def _pair_households(
    rng: np.random.Generator, country: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Choose (head, partner) index pairs living together, within one country."""
    heads, partners = [], []
    for code in COUNTRIES:
        idx = np.flatnonzero(country == code)
        pairs = int(round(len(idx) * P_HOUSEHOLD / 2))
        chosen = rng.choice(idx, size=2 * pairs, replace=False)
        heads.append(chosen[:pairs])
        partners.append(chosen[pairs:])
    return np.concatenate(heads), np.concatenate(partners)


def _first_names(
    rng: np.random.Generator,
    country: np.ndarray,
    gender: np.ndarray,
    pools: dict[str, NamePools],
    heads: np.ndarray,
    partners: np.ndarray,
) -> np.ndarray:
    """Zipf-drawn first names; partners never share the head's first name."""
    names = np.empty(len(country), dtype=object)
    for code, pool in pools.items():
        for sex, values in (("M", pool.first_male), ("F", pool.first_female)):
            idx = np.flatnonzero((country == code) & (gender == sex))
            chosen = _zipf_choice(rng, len(values), len(idx), ZIPF_FIRST_NAMES)
            names[idx] = values[chosen]
    for head, partner in zip(heads.tolist(), partners.tolist(), strict=True):
        if names[head] == names[partner]:
            pool = pools[country[partner]]
            values = pool.first_male if gender[partner] == "M" else pool.first_female
            position = int(np.flatnonzero(values == names[partner])[0])
            names[partner] = values[(position + 1) % len(values)]
    return names


def _last_names(
    rng: np.random.Generator,
    country: np.ndarray,
    gender: np.ndarray,
    pools: dict[str, NamePools],
    heads: np.ndarray,
    partners: np.ndarray,
) -> np.ndarray:
    """Zipf-drawn family names shared within households, gendered in Poland."""
    family = np.empty(len(country), dtype=object)
    for code, pool in pools.items():
        idx = np.flatnonzero(country == code)
        family[idx] = pool.last[_zipf_choice(rng, len(pool.last), len(idx), ZIPF_LAST_NAMES)]
    family[partners] = family[heads]
    feminine = np.flatnonzero((country == "PL") & (gender == "F"))
    family[feminine] = [_feminine_pl(name) for name in family[feminine]]
    return family


def _dates_of_birth(
    rng: np.random.Generator, size: int, heads: np.ndarray, partners: np.ndarray
) -> np.ndarray:
    """Ages 18-90 weighted towards working age; partners are of similar age."""
    youngest = REFERENCE_DATE - np.timedelta64(int(MIN_AGE * 365.25) + 1, "D")
    oldest = REFERENCE_DATE - np.timedelta64(int(MAX_AGE * 365.25) - 1, "D")
    span = (youngest - oldest).astype(np.int64)
    dob = oldest + (span * rng.beta(2.6, 2.0, size)).astype(np.int64).astype("timedelta64[D]")
    offset = rng.normal(0, 4 * 365, len(partners)).astype(np.int64).astype("timedelta64[D]")
    dob[partners] = np.maximum(np.minimum(dob[heads] + offset, youngest), oldest)
    return dob


def _format_postcode(code: str, number: int) -> str:
    if code == "SE":
        return f"{number // 100:03d} {number % 100:02d}"
    if code == "NO":
        return f"{number:04d}"
    if code == "DE":
        return f"{number:05d}"
    return f"{number // 1000:02d}-{number % 1000:03d}"  # PL


def _house_numbers(rng: np.random.Generator, code: str, size: int) -> list[str]:
    base = np.minimum(rng.geometric(1 / 25, size), 250).tolist()
    extra = rng.random(size).tolist()
    letters = rng.integers(0, 3, size).tolist()
    flats = rng.integers(1, 120, size).tolist()
    out = []
    for number, u, letter, flat in zip(base, extra, letters, flats, strict=True):
        if code == "PL" and u < 0.35:
            out.append(f"{number}/{flat}")
        elif u < 0.06:
            suffix = "abc"[letter]
            out.append(f"{number}{suffix}" if code == "DE" else f"{number}{suffix.upper()}")
        else:
            out.append(str(number))
    return out


def _addresses(
    rng: np.random.Generator, country: np.ndarray, pools: dict[str, NamePools]
) -> dict[str, np.ndarray]:
    """Street, house number, postcode and city for every person."""
    n = len(country)
    out = {key: np.empty(n, dtype=object) for key in ("street", "house_number", "postcode", "city")}
    for code, spec in COUNTRIES.items():
        idx = np.flatnonzero(country == code)
        streets = pools[code].streets
        out["street"][idx] = streets[_zipf_choice(rng, len(streets), len(idx), ZIPF_STREETS)]
        out["house_number"][idx] = _house_numbers(rng, code, len(idx))
        city_idx = _zipf_choice(rng, len(spec.cities), len(idx), ZIPF_CITIES)
        out["city"][idx] = [spec.cities[i].name for i in city_idx]
        if code == "GB":
            picks = rng.random(len(idx)).tolist()
            digits = rng.integers(0, 10, len(idx)).tolist()
            letters = rng.integers(0, len(GB_INWARD_LETTERS), (len(idx), 2)).tolist()
            out["postcode"][idx] = [
                f"{spec.cities[c].outward[int(u * len(spec.cities[c].outward))]} "
                f"{d}{GB_INWARD_LETTERS[a]}{GB_INWARD_LETTERS[b]}"
                for c, u, d, (a, b) in zip(city_idx.tolist(), picks, digits, letters, strict=True)
            ]
        else:
            low = np.array([c.low for c in spec.cities])[city_idx]
            high = np.array([c.high for c in spec.cities])[city_idx]
            numbers = low + (rng.random(len(idx)) * (high - low + 1)).astype(np.int64)
            out["postcode"][idx] = [_format_postcode(code, int(v)) for v in numbers]
    return out


def _random_mobiles(rng: np.random.Generator, spec: CountrySpec, size: int) -> np.ndarray:
    """Random E.164 mobiles of one country, outside its excluded ranges."""
    excluded = tuple(f"+{spec.calling_code}{start}" for start in spec.excluded_mobile_ranges)
    numbers = np.empty(size, dtype=object)
    todo = np.arange(size)
    while len(todo):
        prefixes = rng.integers(0, len(spec.mobile_prefixes), len(todo)).tolist()
        rest = rng.random(len(todo)).tolist()
        numbers[todo] = [
            f"+{spec.calling_code}{prefix}"
            f"{int(u * 10 ** (length - len(prefix))):0{length - len(prefix)}d}"
            for (prefix, length), u in zip(
                (spec.mobile_prefixes[p] for p in prefixes), rest, strict=True
            )
        ]
        todo = todo[[numbers[i].startswith(excluded) for i in todo]] if excluded else todo[:0]
    return numbers


def _mobiles(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """Unique, valid mobile numbers in E.164, one per person."""

    def draw(indices: np.ndarray, _current: np.ndarray | None = None) -> np.ndarray:
        numbers = np.empty(len(indices), dtype=object)
        for code, spec in COUNTRIES.items():
            sub = np.flatnonzero(country[indices] == code)
            numbers[sub] = _random_mobiles(rng, spec, len(sub))
        return numbers

    return _dedupe(draw(np.arange(len(country))), draw)


def _fold(name: str) -> str:
    """ASCII, lower-case, letters only: the way names end up in e-mail addresses."""
    return "".join(ch for ch in unidecode(name).lower() if ch.isalnum())


_EMAIL_PATTERNS = (
    ("{f}.{l}", 0.35),
    ("{f}{l}", 0.15),
    ("{i}.{l}", 0.10),
    ("{f}.{l}{yy}", 0.10),
    ("{f}{n}", 0.10),
    ("{l}.{f}", 0.05),
    ("{f}_{l}", 0.05),
    ("{f}{l}{yyyy}", 0.10),
)


def _emails(
    rng: np.random.Generator,
    country: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    dob: np.ndarray,
) -> np.ndarray:
    """One e-mail address per person, unique, built from the name."""
    folded = {name: _fold(name) for name in {*first.tolist(), *last.tolist()}}
    years = (dob.astype("datetime64[Y]").astype(np.int64) + 1970).tolist()
    patterns = [p for p, _ in _EMAIL_PATTERNS]
    weights = np.array([w for _, w in _EMAIL_PATTERNS])
    choice = rng.choice(len(patterns), len(first), p=weights / weights.sum()).tolist()
    numbers = rng.integers(1, 1000, len(first)).tolist()
    locals_ = [
        patterns[c].format(f=f, l=lst, i=f[0], yy=f"{y % 100:02d}", yyyy=y, n=k)
        for c, f, lst, y, k in zip(
            choice,
            (folded[name] or "x" for name in first.tolist()),
            (folded[name] or "x" for name in last.tolist()),
            years,
            numbers,
            strict=True,
        )
    ]
    domains = np.empty(len(first), dtype=object)
    for code, spec in COUNTRIES.items():
        idx = np.flatnonzero(country == code)
        picks = _zipf_choice(rng, len(spec.email_domains), len(idx), ZIPF_EMAIL_DOMAINS)
        domains[idx] = [spec.email_domains[i] for i in picks]
    return _object_array(
        f"{local}@{domain}" for local, domain in zip(locals_, domains, strict=True)
    )


def _unique_emails(rng: np.random.Generator, emails: np.ndarray) -> np.ndarray:
    def redraw(_indices: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Append a digit or two to the local part; repeats keep growing until unique."""
        suffixes = rng.integers(1, 100, len(current)).tolist()
        return _object_array(
            "{0}{2}@{1}".format(*email.split("@"), k)
            for email, k in zip(current, suffixes, strict=True)
        )

    return _dedupe(emails, redraw)


def build_persons(persons: int, seed: int) -> pd.DataFrame:
    """The true persons behind the generated records.

    ``generate`` calls this with the same arguments, so tests can compare the
    records with the persons they were derived from.

    Args:
        persons: Number of persons, at least 1.
        seed: Seed; the same seed gives the same persons.

    Returns:
        One row per person: ``person_id``, ``country``, ``gender``, ``first_name``,
        ``last_name``, ``date_of_birth`` (datetime64), ``email``, ``alt_email``
        (an older e-mail where ``email_changed``, else a second address used for
        duplicate sign-ups), ``email_changed``, ``mobile`` (E.164), ``street``,
        ``house_number``, ``postcode``, ``city``, ``moved``, the ``old_*`` address
        fields (null unless ``moved``) and ``household_id`` (null if living alone).

    Raises:
        ValueError: If ``persons`` is below 1.

    Examples:
        >>> people = build_persons(10, seed=1)
        >>> len(people), people["person_id"].iloc[0]
        (10, 'P0000001')
    """
    if persons < 1:
        raise ValueError(f"persons must be at least 1, got {persons}")
    rngs = _stage_rngs(seed)
    pools = _build_pools(rngs["pools"])
    rng = rngs["persons"]
    codes = list(COUNTRY_WEIGHTS)
    weights = np.array(list(COUNTRY_WEIGHTS.values()))
    country = np.array(codes, dtype=object)[rng.choice(len(codes), persons, p=weights)]
    gender = np.where(rng.random(persons) < 0.5, "F", "M").astype(object)
    heads, partners = _pair_households(rng, country)
    same = rng.random(len(partners)) >= P_PARTNER_OPPOSITE_GENDER
    gender[partners] = np.where(same, gender[heads], np.where(gender[heads] == "F", "M", "F"))

    first = _first_names(rng, country, gender, pools, heads, partners)
    last = _last_names(rng, country, gender, pools, heads, partners)
    dob = _dates_of_birth(rng, persons, heads, partners)
    address = _addresses(rng, country, pools)
    old = _addresses(rng, country, pools)
    moved = _mask(rng, persons, P_MOVED)
    moved[partners] = moved[heads]
    for key in address:  # partners live, and lived, with the head
        address[key][partners] = address[key][heads]
        old[key][partners] = old[key][heads]
        old[key][~moved] = None

    mobile = _mobiles(rng, country)
    both = _unique_emails(
        rng,
        np.concatenate(
            [_emails(rng, country, first, last, dob), _emails(rng, country, first, last, dob)]
        ),
    )
    email, alt_email = both[:persons], both[persons:]
    shared = _mask(rng, len(heads), P_FAMILY_EMAIL)
    email[partners[shared]] = email[heads[shared]]

    household = np.full(persons, None, dtype=object)
    household[heads] = household[partners] = [f"H{i + 1:07d}" for i in range(len(heads))]
    return pd.DataFrame(
        {
            "person_id": [f"P{i + 1:07d}" for i in range(persons)],
            "country": country,
            "gender": gender,
            "first_name": first,
            "last_name": last,
            "date_of_birth": dob,
            "email": email,
            "alt_email": alt_email,
            "email_changed": _mask(rng, persons, P_EMAIL_CHANGED),
            "mobile": mobile,
            **address,
            "moved": moved,
            **{f"old_{key}": values for key, values in old.items()},
            "household_id": household,
        }
    )


# --------------------------------------------------------------------------- #
# Record-level noise
# --------------------------------------------------------------------------- #

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    neighbours: dict[str, str] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for c, ch in enumerate(row):
            near = [row[j] for j in (c - 1, c + 1) if 0 <= j < len(row)]
            near += [_KEYBOARD_ROWS[k][c] for k in (r - 1, r + 1) if 0 <= k < 3 and c < 7]
            neighbours[ch] = "".join(near)
    return neighbours


KEYBOARD_NEIGHBOURS = _keyboard_neighbours()


def _typo(value: str, rnd: random.Random) -> str:
    """One substitution (a neighbouring key), transposition or deletion."""
    if len(value) < 3:
        return value
    pos = rnd.randrange(1, len(value) - 1)
    kind = rnd.randrange(3)
    if kind == 0:
        near = KEYBOARD_NEIGHBOURS.get(value[pos].lower(), "aeinorst")
        sub = rnd.choice(near)
        return value[:pos] + (sub.upper() if value[pos].isupper() else sub) + value[pos + 1 :]
    if kind == 1:
        return value[:pos] + value[pos + 1] + value[pos] + value[pos + 2 :]
    return value[:pos] + value[pos + 1 :]


def _whitespace(value: str, rnd: random.Random) -> str:
    kind = rnd.randrange(3)
    if kind == 0:
        return f" {value}"
    if kind == 1 and " " in value:
        return value.replace(" ", "  ", 1)
    return f"{value}  "


def _spelling_noise(values: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Lost or transliterated diacritics, then typos."""
    rnd = _py_random(rng)
    lost = _mask(rng, len(values), P_DIACRITICS_LOST * noise)
    values = _apply(values, lost, unidecode)
    transliterated = _mask(rng, len(values), P_TRANSLITERATED * noise) & ~lost
    values = _apply(values, transliterated, lambda v: v.translate(TRANSLITERATION))
    return _apply(values, _mask(rng, len(values), P_TYPO * noise), lambda v: _typo(v, rnd))


def _surface_noise(values: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Upper or lower case and stray whitespace."""
    rnd = _py_random(rng)
    draw = rng.random(len(values))
    upper = draw < P_UPPER * noise
    lower = (draw >= P_UPPER * noise) & (draw < (P_UPPER + P_LOWER) * noise)
    values = _apply(values, upper, str.upper)
    values = _apply(values, lower, str.lower)
    spaced = _mask(rng, len(values), P_EXTRA_WHITESPACE * noise)
    return _apply(values, spaced, lambda v: _whitespace(v, rnd))


def _nicknames(
    first: np.ndarray, country: np.ndarray, rng: np.random.Generator, p: float
) -> np.ndarray:
    rnd = _py_random(rng)
    out = first.copy()
    for i in np.flatnonzero(_mask(rng, len(first), p)):
        spec = COUNTRIES[country[i]]
        options = spec.nicknames_male.get(out[i]) or spec.nicknames_female.get(out[i])
        if options:
            out[i] = rnd.choice(options)
    return out


# --------------------------------------------------------------------------- #
# Record fields
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Draws:
    """What a source needs to build its records."""

    people: dict[str, np.ndarray]
    owners: np.ndarray
    occurrence: np.ndarray
    rng: np.random.Generator
    plan: SourcePlan

    @property
    def size(self) -> int:
        return len(self.owners)

    def column(self, name: str) -> np.ndarray:
        return self.people[name][self.owners]


def _record_names(d: _Draws) -> tuple[np.ndarray, np.ndarray]:
    """First and last names with nicknames, diacritics and typos (no case noise yet)."""
    country = d.column("country")
    first = _nicknames(d.column("first_name"), country, d.rng, P_NICKNAME)
    first = _spelling_noise(first, d.rng, d.plan.noise)
    last = _spelling_noise(d.column("last_name"), d.rng, d.plan.noise)
    return first, last


def _record_dobs(d: _Draws, template: str) -> np.ndarray:
    """Dates of birth formatted with ``template``; some have day and month swapped."""
    dob = d.column("date_of_birth").astype("datetime64[D]")
    years = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dob.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dob - dob.astype("datetime64[M]")).astype(np.int64) + 1
    swap = _mask(d.rng, d.size, P_DOB_SWAPPED * d.plan.noise) & (days <= 12) & (days != months)
    months, days = np.where(swap, days, months), np.where(swap, months, days)
    return _object_array(
        template.format(y=y, m=m, d=dd)
        for y, m, dd in zip(years.tolist(), months.tolist(), days.tolist(), strict=True)
    )


def _record_emails(d: _Draws, extra_alt: np.ndarray | None = None) -> np.ndarray:
    """Current or older e-mail per record, sometimes upper-cased or capitalised."""
    use_alt = d.column("email_changed") & _mask(d.rng, d.size, P_OLD_EMAIL)
    if extra_alt is not None:
        use_alt |= extra_alt
    emails = _pick(d.column("email"), use_alt, d.column("alt_email"))
    draw = d.rng.random(d.size)
    upper = draw < P_EMAIL_UPPER * d.plan.noise
    capital = (draw >= P_EMAIL_UPPER * d.plan.noise) & (
        draw < (P_EMAIL_UPPER + P_EMAIL_CAPITALISED) * d.plan.noise
    )
    emails = _apply(emails, upper, str.upper)
    return _apply(emails, capital, _capitalise_local_part)


def _capitalise_local_part(email: str) -> str:
    """``anna.svensson@gmail.com`` -> ``Anna.Svensson@gmail.com``."""
    local, _, domain = email.partition("@")
    return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain


def _group(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    if sum(sizes) != len(digits):
        return digits
    parts, start = [], 0
    for size in sizes:
        parts.append(digits[start : start + size])
        start += size
    return sep.join(parts)


def format_phone(e164: str, country: str, style: str) -> str:
    """Write an E.164 mobile number the way people and systems do.

    Args:
        e164: Number in E.164, e.g. ``"+46701234567"``.
        country: ISO code of the number's country.
        style: One of ``PHONE_FORMATS``.

    Returns:
        The formatted number.

    Examples:
        >>> format_phone("+46701234567", "SE", "national")
        '070-123 45 67'
        >>> format_phone("+46701234567", "SE", "intl_00")
        '0046 70 123 45 67'
        >>> format_phone("+4741234567", "NO", "trunk_paren")
        '(+47) 412 34567'
    """
    spec = COUNTRIES[country]
    nsn = e164[len(spec.calling_code) + 1 :]
    prefix, rest = nsn[: spec.phone_prefix_len], nsn[spec.phone_prefix_len :]
    grouped = _group(rest, spec.phone_groups, " ")
    cc, trunk = spec.calling_code, spec.trunk
    if style == "e164":
        return e164
    if style == "intl_spaced":
        return f"+{cc} {prefix} {grouped}"
    if style == "intl_00":
        return f"00{cc} {prefix} {grouped}"
    if style == "national":
        return f"{trunk}{prefix}{'-' if country == 'SE' else ' '}{grouped}"
    if style == "national_compact":
        return f"{trunk}{nsn}"
    if style == "trunk_paren":
        return f"({trunk}){prefix} {rest}" if trunk else f"(+{cc}) {prefix} {rest}"
    if style == "dashed":
        return f"+{cc}-{prefix}-{_group(rest, spec.phone_groups, '-')}"
    raise ValueError(f"unknown phone style {style!r}; expected one of {PHONE_FORMATS}")


def _record_phones(d: _Draws) -> np.ndarray:
    styles = list(d.plan.phone_formats)
    weights = np.array(list(d.plan.phone_formats.values()), dtype=float)
    chosen = d.rng.choice(len(styles), d.size, p=weights / weights.sum()).tolist()
    return _object_array(
        format_phone(number, code, styles[s])
        for number, code, s in zip(d.column("mobile"), d.column("country"), chosen, strict=True)
    )


def _abbreviate(street: str, code: str) -> str:
    for long, short in COUNTRIES[code].street_abbreviations:
        if long in street:
            return street.replace(long, short, 1)
    return street


def _unformat_postcode(postcode: str, code: str) -> str:
    if code in ("DE", "NO"):
        return postcode.lstrip("0") or postcode  # lost leading zero
    return postcode.replace(" ", "").replace("-", "")


@dataclass(frozen=True)
class _Address:
    street_line: np.ndarray
    postcode: np.ndarray
    city: np.ndarray


def _record_addresses(d: _Draws) -> _Address:
    """Current or older address per record with abbreviations and format noise."""
    country = d.column("country")
    old = d.column("moved") & _mask(d.rng, d.size, P_OLD_ADDRESS)
    street, house, postcode, city = (
        _pick(d.column(key), old, d.column(f"old_{key}"))
        for key in ("street", "house_number", "postcode", "city")
    )
    abbreviated = _mask(d.rng, d.size, P_STREET_ABBREVIATED)
    street = _object_array(
        _abbreviate(s, c) if a else s for s, c, a in zip(street, country, abbreviated, strict=True)
    )
    street = _spelling_noise(street, d.rng, d.plan.noise * 0.5)
    line = _object_array(
        f"{h} {s}" if c == "GB" else f"{s} {h}"
        for s, h, c in zip(street, house, country, strict=True)
    )
    unformatted = _mask(d.rng, d.size, P_POSTCODE_UNFORMATTED * d.plan.noise)
    postcode = _object_array(
        _unformat_postcode(p, c) if u else p
        for p, c, u in zip(postcode, country, unformatted, strict=True)
    )
    rnd = _py_random(d.rng)
    exonym = _mask(d.rng, d.size, P_CITY_EXONYM)
    city = _apply(city, exonym, lambda v: rnd.choice(CITY_EXONYMS.get(v, (v,))))
    city = _spelling_noise(city, d.rng, d.plan.noise * 0.5)
    return _Address(line, postcode, city)


def _record_countries(d: _Draws, p_name: float) -> np.ndarray:
    rnd = _py_random(d.rng)
    country = d.column("country").copy()
    as_name = _mask(d.rng, d.size, p_name)
    country = _apply(country, as_name, lambda v: rnd.choice(COUNTRIES[v].names))
    lower = _mask(d.rng, d.size, P_COUNTRY_LOWER * d.plan.noise)
    return _apply(country, lower, str.lower)


def _full_names(
    d: _Draws, first: np.ndarray, last: np.ndarray, p_reversed: float, p_title: float
) -> np.ndarray:
    """Full names as ``First Last``, ``Last, First`` or ``Title First Last``."""
    rnd = _py_random(d.rng)
    draw = d.rng.random(d.size).tolist()
    names = []
    for f, last_name, u, code, sex in zip(
        first, last, draw, d.column("country"), d.column("gender"), strict=True
    ):
        if u < p_reversed:
            names.append(f"{last_name}, {f}")
        elif u < p_reversed + p_title:
            spec = COUNTRIES[code]
            title = rnd.choice(spec.titles_male if sex == "M" else spec.titles_female)
            names.append(f"{title} {f} {last_name}")
        else:
            names.append(f"{f} {last_name}")
    return _surface_noise(_object_array(names), d.rng, d.plan.noise)


# --------------------------------------------------------------------------- #
# Sources
# --------------------------------------------------------------------------- #


def _crm_contacts(d: _Draws) -> dict[str, np.ndarray]:
    """CRM contacts; ``loyalty_card`` is added later by :class:`_Identifiers`."""
    first, last = _record_names(d)
    address = _record_addresses(d)
    return {
        "contact_id": _object_array(f"C{i + 1:07d}" for i in range(d.size)),
        "given_name": _surface_noise(first, d.rng, d.plan.noise),
        "family_name": _surface_noise(last, d.rng, d.plan.noise),
        "birth_date": _record_dobs(d, "{y:04d}-{m:02d}-{d:02d}"),
        "email_address": _record_emails(d),
        "mobile": _record_phones(d),
        "street": _surface_noise(address.street_line, d.rng, d.plan.noise),
        "zip": address.postcode,
        "town": _surface_noise(address.city, d.rng, d.plan.noise),
        "country_code": _record_countries(d, 0.0),
    }


def _webshop_line(street: str, postcode: str, city: str, code: str) -> str:
    if code == "GB":
        return f"{street}, {city} {postcode}"
    return f"{street}, {postcode} {city}"


def _webshop_accounts(d: _Draws) -> dict[str, np.ndarray]:
    first, last = _record_names(d)
    duplicate_new_email = (d.occurrence > 0) & _mask(d.rng, d.size, P_DUPLICATE_ACCOUNT_NEW_EMAIL)
    address = _record_addresses(d)
    country = d.column("country")
    with_country = _mask(d.rng, d.size, P_ADDRESS_WITH_COUNTRY).tolist()
    lines = [
        _webshop_line(s, p, c, code) + (f", {COUNTRIES[code].names[0]}" if w else "")
        for s, p, c, code, w in zip(
            address.street_line, address.postcode, address.city, country, with_country, strict=True
        )
    ]
    ids = _unique_ints(d.rng, d.size, 16**10)
    return {
        "account_no": _object_array(f"WS-{v:010x}" for v in ids.tolist()),
        "full_name": _full_names(d, first, last, p_reversed=0.2, p_title=0.08),
        "email": _record_emails(d, duplicate_new_email),
        "phone": _record_phones(d),
        "shipping_address": _surface_noise(_object_array(lines), d.rng, d.plan.noise * 0.5),
        "dob": _record_dobs(d, "{d:02d}/{m:02d}/{y:04d}"),
    }


def _support_tickets(d: _Draws) -> dict[str, np.ndarray]:
    first, last = _record_names(d)
    full = _full_names(d, first, last, p_reversed=0.05, p_title=0.0)
    first_only = _mask(d.rng, d.size, P_FIRST_NAME_ONLY)
    full[first_only] = first[first_only]
    ids = _unique_ints(d.rng, d.size, 10**8)
    return {
        "ticket_contact_id": _object_array(f"TC{v:08d}" for v in ids.tolist()),
        "name": full,
        "contact_email": _record_emails(d),
        "contact_phone": _record_phones(d),
        "country": _record_countries(d, P_COUNTRY_AS_NAME),
    }


def _pos_loyalty(d: _Draws) -> dict[str, np.ndarray]:
    first, last = _record_names(d)
    address = _record_addresses(d)
    ids = _unique_ints(d.rng, d.size, 10**12)
    return {
        "card_number": _object_array(f"6{v:012d}" for v in ids.tolist()),
        "first": _surface_noise(first, d.rng, d.plan.noise),
        "surname": _surface_noise(last, d.rng, d.plan.noise),
        "born": _record_dobs(d, "{d:02d}.{m:02d}.{y:04d}"),
        "phone_no": _record_phones(d),
        "postal_code": address.postcode,
        "city": _surface_noise(address.city, d.rng, d.plan.noise),
        "country": _record_countries(d, P_COUNTRY_AS_NAME),
    }


_SOURCE_BUILDERS: dict[str, Callable[[_Draws], dict[str, np.ndarray]]] = {
    "crm_contacts": _crm_contacts,
    "webshop_accounts": _webshop_accounts,
    "support_tickets": _support_tickets,
    "pos_loyalty": _pos_loyalty,
}


def _unique_ints(rng: np.random.Generator, size: int, high: int) -> np.ndarray:
    values = rng.integers(0, high, size, dtype=np.int64)
    return _dedupe(values, lambda idx, _: rng.integers(0, high, len(idx), dtype=np.int64))


def _record_counts(rng: np.random.Generator, persons: int) -> dict[str, np.ndarray]:
    """Records per person and source; everyone has at least one record somewhere."""
    counts = {}
    for name, plan in SOURCE_PLANS.items():
        present = _mask(rng, persons, plan.p_present)
        extra = np.minimum(rng.geometric(1 - plan.p_repeat, persons) - 1, plan.max_records - 1)
        counts[name] = present * (1 + extra)
    nowhere = sum(counts.values()) == 0
    counts["crm_contacts"][nowhere] = 1
    return counts


def _owners(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled person index per record and the record's rank among that person's."""
    owners = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    occurrence = np.arange(len(owners)) - starts
    order = rng.permutation(len(owners))
    return owners[order], occurrence[order]


def _spoil_rows(columns: dict[str, np.ndarray], plan: SourcePlan, rng: np.random.Generator) -> None:
    """Add missing values and the unusable rows the pipeline must quarantine."""
    size = len(next(iter(columns.values())))
    for column, rate in plan.missing.items():
        columns[column][_mask(rng, size, rate)] = None
    per_kind = min(max(1, round(size * P_UNUSABLE)), size // 2)
    chosen = rng.choice(size, 2 * per_kind, replace=False)
    id_column = next(iter(columns))
    empty_ids = chosen[:per_kind]
    columns[id_column][empty_ids] = [None if i % 2 else "" for i in range(per_kind)]
    for column in plan.identity_columns:
        columns[column][chosen[per_kind:]] = None


@dataclass(frozen=True)
class _Source:
    """One source's records, their ground truth, and the person index of each record."""

    records: pd.DataFrame
    truth: pd.DataFrame
    owners: np.ndarray


def _build_source(
    plan: SourcePlan,
    people: dict[str, np.ndarray],
    counts: np.ndarray,
    rng: np.random.Generator,
) -> _Source:
    """Records of one source and its ground truth rows."""
    owners, occurrence = _owners(rng, counts)
    draws = _Draws(people, owners, occurrence, rng, plan)
    columns = _SOURCE_BUILDERS[plan.name](draws)
    _spoil_rows(columns, plan, rng)
    records = pd.DataFrame(columns)
    ids = records.iloc[:, 0]
    has_id = ids.notna() & (ids != "")
    truth = pd.DataFrame(
        {
            "source": plan.name,
            "record_id": ids[has_id].to_numpy(),
            "person_id": people["person_id"][owners][has_id.to_numpy()],
        }
    )
    return _Source(records, truth, owners)


# --------------------------------------------------------------------------- #
# Identifiers quoted across sources
# --------------------------------------------------------------------------- #


def _first_id_per_person(source: _Source, column: str, persons: int) -> np.ndarray:
    """Each person's first non-empty ``column`` value in ``source`` (None if they have none)."""
    ids = source.records[column]
    present = (ids.notna() & (ids != "")).to_numpy()
    first = pd.Series(ids.to_numpy()[present]).groupby(source.owners[present]).first()
    out = np.full(persons, None, dtype=object)
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def _partner_index(household: np.ndarray) -> np.ndarray:
    """The index of the person each person lives with, -1 for persons living alone."""
    partner = np.full(len(household), -1, dtype=np.int64)
    members = np.flatnonzero(pd.notna(household))
    order = members[np.argsort(household[members].astype(str), kind="stable")]
    pairs = order.reshape(-1, 2)  # every household is two persons
    partner[pairs[:, 0]], partner[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
    return partner


def _digit_typo(value: str, rnd: random.Random, first: int) -> str:
    """One digit at or after position ``first`` replaced by another digit."""
    pos = rnd.randrange(first, len(value))
    digit = rnd.choice([d for d in "0123456789" if d != value[pos]])
    return value[:pos] + digit + value[pos + 1 :]


def _without_identity(source: _Source, plan: SourcePlan) -> np.ndarray:
    """Rows spoiled to have no identifying field: they get no identifier either."""
    columns = source.records
    return np.logical_and.reduce(
        [np.equal(columns[c].to_numpy(), None) for c in plan.identity_columns]
    )


def _crm_loyalty_cards(
    crm: _Source, card_of: np.ndarray, partner: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The loyalty card on file for a minority of cardholders' CRM records.

    A few cards on file are wrong: one digit off, an old card that was replaced, or
    the card of the partner the person lives with (a family card): then two people
    share a card number, and only names and dates of birth can tell them apart.
    """
    rnd = _py_random(rng)
    owners = crm.owners
    cards = card_of[owners]
    on_file = pd.notna(cards) & _mask(rng, len(owners), P_CRM_LOYALTY_CARD)
    cards = np.where(on_file, cards, None)
    draw = rng.random(len(owners))
    mistyped = on_file & (draw < P_CARD_MISTYPED)
    stale = on_file & (draw >= P_CARD_MISTYPED) & (draw < P_CARD_MISTYPED + P_CARD_STALE)
    cards = _apply(cards, mistyped, lambda v: _digit_typo(v, rnd, 1))
    replaced = rng.integers(0, 10**12, len(owners), dtype=np.int64)
    cards[stale] = [f"6{v:012d}" for v in replaced[stale].tolist()]
    partners = partner[owners]
    partner_card = np.where(partners >= 0, card_of[np.maximum(partners, 0)], None)
    family = (
        on_file
        & ~mistyped
        & ~stale
        & pd.notna(partner_card)
        & _mask(rng, len(owners), P_CARD_OF_PARTNER)
    )
    cards = _pick(cards, family, partner_card)
    grouped = _mask(rng, len(owners), P_CARD_GROUPED)
    return _apply(cards, grouped, lambda v: " ".join(v[i : i + 4] for i in range(0, len(v), 4)))


def _restyle_customer_number(value: str, rnd: random.Random) -> str:
    style = rnd.randrange(3)
    if style == 0:
        return value.lower()
    return f"{value[0]}{'-' if style == 1 else ' '}{value[1:]}"


def _quoted_customer_numbers(
    tickets: _Source, number_of: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The CRM customer number quoted on a minority of CRM customers' tickets.

    A few have a digit wrong; CRM numbers are dense, so most of those name another
    customer.
    """
    rnd = _py_random(rng)
    numbers = number_of[tickets.owners]
    quoted = pd.notna(numbers) & _mask(rng, len(numbers), P_TICKET_CUSTOMER_NUMBER)
    numbers = np.where(quoted, numbers, None)
    mistyped = _mask(rng, len(numbers), P_CUSTOMER_NUMBER_MISTYPED)
    numbers = _apply(numbers, mistyped, lambda v: _digit_typo(v, rnd, len(v) - 4))
    restyled = _mask(rng, len(numbers), P_CUSTOMER_NUMBER_RESTYLED)
    return _apply(numbers, restyled, lambda v: _restyle_customer_number(v, rnd))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POSITIONS = [i for i in range(36) if i not in (8, 13, 18, 23)]


def _device_ids(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random device ids written as UUIDs (``8-4-4-4-12`` lower-case hex digits)."""
    text = np.full((size, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = _HEX_DIGITS[rng.integers(0, 16, (size, 32), dtype=np.uint8)]
    return text.view("S36").ravel().astype("U36").astype(object)


def _webshop_devices(shop: _Source, partner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The device each account was opened on, for most accounts.

    A person's accounts mostly come from their usual device; in some households both
    partners use one device, so a device id alone does not make one person.
    """
    persons, size = len(partner), len(shop.owners)
    usual = _device_ids(rng, persons)
    shared = (partner >= 0) & (np.arange(persons) < partner) & _mask(rng, persons, P_SHARED_DEVICE)
    usual[partner[shared]] = usual[shared]
    devices = usual[shop.owners]
    other = ~_mask(rng, size, P_USUAL_DEVICE)
    devices[other] = _device_ids(rng, int(other.sum()))
    return np.where(_mask(rng, size, P_WEBSHOP_DEVICE), devices, None)


class _Identifiers:
    """Adds the identifier columns that quote another source's ids, source by source.

    Sources are built in :data:`BUILD_ORDER`, so a source's ids are known before one
    that quotes them: the CRM keeps point-of-sale loyalty cards, support tickets quote
    CRM customer numbers. Only each person's first id is kept between sources, not
    the records. The record ids of the CRM and the point-of-sale system are identifiers
    themselves, mapped a second time in ``meld.yaml``. Rows spoiled to have no
    identifying field get no identifier either.
    """

    def __init__(self, people: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        self.persons = len(people["person_id"])
        self.partner = _partner_index(people["household_id"])
        self.rng = rng
        self.card_of = np.full(self.persons, None, dtype=object)
        self.number_of = np.full(self.persons, None, dtype=object)

    def add(self, name: str, source: _Source) -> None:
        """Add ``name``'s identifier column to ``source.records`` (in place)."""
        if name == "pos_loyalty":
            self.card_of = _first_id_per_person(source, "card_number", self.persons)
            return
        if name == "crm_contacts":
            column = "loyalty_card"
            values = _crm_loyalty_cards(source, self.card_of, self.partner, self.rng)
            self.number_of = _first_id_per_person(source, "contact_id", self.persons)
        elif name == "webshop_accounts":
            column, values = "device_id", _webshop_devices(source, self.partner, self.rng)
        else:
            column = "customer_no"
            values = _quoted_customer_numbers(source, self.number_of, self.rng)
        values[_without_identity(source, SOURCE_PLANS[name])] = None
        source.records[column] = values


BUILD_ORDER: tuple[str, ...] = (
    "pos_loyalty",
    "crm_contacts",
    "webshop_accounts",
    "support_tickets",
)
"""Each source after those whose ids it quotes (see :class:`_Identifiers`). Every source
draws from its own stream, so the order changes nothing else."""


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def _write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    keys = list(frame.columns)
    # One encoder for all rows: json.dumps(..., ensure_ascii=False) builds one per call.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in frame.itertuples(index=False, name=None):
            handle.write(encode(dict(zip(keys, row, strict=True))))
            handle.write("\n")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.table(
        {column: pa.array(frame[column].tolist(), type=pa.string()) for column in frame.columns}
    )
    pq.write_table(table, path, compression="zstd")


_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    ".csv": _write_csv,
    ".jsonl": _write_jsonl,
    ".parquet": _write_parquet,
}


def project_config() -> dict[str, object]:
    """The ``meld.yaml`` written next to the data, with paths relative to it."""

    def dob(column: str, fmt: str) -> dict[str, str]:
        return {"column": column, "format": fmt}

    return {
        "warehouse": "warehouse.duckdb",
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "meld-demo"},
        "sources": {
            "crm_contacts": {
                "path": SOURCE_FILES["crm_contacts"],
                "id_column": "contact_id",
                "default_country": "SE",
                "fields": {
                    "first_name": "given_name",
                    "last_name": "family_name",
                    "date_of_birth": dob("birth_date", "%Y-%m-%d"),
                    "email": "email_address",
                    "phone": "mobile",
                    "street": "street",
                    "postcode": "zip",
                    "city": "town",
                    "country": "country_code",
                    "customer_number": "contact_id",
                    "loyalty_card": "loyalty_card",
                },
            },
            "webshop_accounts": {
                "path": SOURCE_FILES["webshop_accounts"],
                "id_column": "account_no",
                "default_country": "SE",
                "fields": {
                    "full_name": "full_name",
                    "email": "email",
                    "phone": "phone",
                    "address": "shipping_address",
                    "date_of_birth": dob("dob", "%d/%m/%Y"),
                    "device_id": "device_id",
                },
            },
            "support_tickets": {
                "path": SOURCE_FILES["support_tickets"],
                "id_column": "ticket_contact_id",
                "default_country": "SE",
                "fields": {
                    "full_name": "name",
                    "email": "contact_email",
                    "phone": "contact_phone",
                    "country": "country",
                    "customer_number": "customer_no",
                },
            },
            "pos_loyalty": {
                "path": SOURCE_FILES["pos_loyalty"],
                "id_column": "card_number",
                "default_country": "SE",
                "fields": {
                    "first_name": "first",
                    "last_name": "surname",
                    "date_of_birth": dob("born", "%d.%m.%Y"),
                    "phone": "phone_no",
                    "postcode": "postal_code",
                    "city": "city",
                    "country": "country",
                    "loyalty_card": "card_number",
                },
            },
        },
        "truth": {
            "path": TRUTH_FILE,
            "source_column": "source",
            "id_column": "record_id",
            "entity_column": "person_id",
        },
        "relationships": {
            "orders": {"path": ORDERS_FILE},
            "products": {"path": PRODUCTS_FILE},
        },
    }


def generate(out_dir: Path, persons: int, seed: int) -> dict[str, int]:
    """Write the four demo sources, the ground truth and ``meld.yaml`` to ``out_dir``.

    Args:
        out_dir: Directory to write to; created if missing, files are overwritten.
        persons: Number of persons behind the records (about 3.3 records each).
        seed: Seed; the same arguments give byte-identical files.

    Returns:
        Records written per source, including the unusable rows.

    Raises:
        ValueError: If ``persons`` is below 1.

    Examples:
        >>> from pathlib import Path
        >>> import tempfile
        >>> counts = generate(Path(tempfile.mkdtemp()), persons=50, seed=1)
        >>> sorted(counts)
        ['crm_contacts', 'pos_loyalty', 'support_tickets', 'webshop_accounts']
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "landing").mkdir(parents=True, exist_ok=True)
    people_frame = build_persons(persons, seed)
    people = {column: people_frame[column].to_numpy() for column in people_frame.columns}
    rngs = _stage_rngs(seed)
    counts = _record_counts(rngs["allocation"], persons)
    identifiers = _Identifiers(people, rngs["identifiers"])
    written: dict[str, int] = {}
    truths: dict[str, pd.DataFrame] = {}
    for name in BUILD_ORDER:
        source = _build_source(SOURCE_PLANS[name], people, counts[name], rngs[name])
        identifiers.add(name, source)
        path = out_dir / SOURCE_FILES[name]
        _WRITERS[path.suffix](source.records, path)
        written[name] = len(source.records)
        truths[name] = source.truth
        logger.info("wrote %s: %d records", path, len(source.records))
    truth = pd.concat([truths[name] for name in SOURCE_PLANS], ignore_index=True)
    _write_csv(truth, out_dir / TRUTH_FILE)
    write_orders(truth, out_dir, seed)
    written = {name: written[name] for name in SOURCE_PLANS}
    with (out_dir / CONFIG_FILE).open("w", encoding="utf-8") as handle:
        yaml.safe_dump(project_config(), handle, sort_keys=False, allow_unicode=True)
    logger.info(
        "generated %d records of %d persons in %.1f s",
        sum(written.values()),
        persons,
        time.perf_counter() - started,
    )
    return written


def _print_file_line(path: Path, what: str) -> None:
    print(f"{path}: {what}, {path.stat().st_size / 1e6:.1f} MB")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m linkage.demo.generator OUT [--persons N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m linkage.demo.generator",
        description="Write deterministic synthetic customer records for Meld.",
    )
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--persons", type=int, default=10_000, help="persons (default 10000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    if args.persons < 1:
        parser.error(f"--persons must be at least 1, got {args.persons}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    started = time.perf_counter()
    counts = generate(args.out, args.persons, args.seed)
    for name, rows in counts.items():
        _print_file_line(args.out / SOURCE_FILES[name], f"{rows:,} records")
    with (args.out / TRUTH_FILE).open(encoding="utf-8") as handle:
        truth_rows = sum(1 for _ in handle) - 1
    _print_file_line(args.out / TRUTH_FILE, f"{truth_rows:,} ground-truth rows")
    _print_file_line(args.out / CONFIG_FILE, f"{len(SOURCE_FILES)} sources")
    total = sum(counts.values())
    print(
        f"{total:,} records of {args.persons:,} persons (seed {args.seed}) "
        f"in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
