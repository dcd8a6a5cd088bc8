"""Tests for the demo generator's profiles: clean, realistic (the default) and hostile.

The error rates are measured on the written files against the true persons, the way
Meld would meet them: phones with ``phonenumbers``, names and dates as strings.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from linkage.config import load_project
from linkage.demo.cli import main
from linkage.demo.country_tables import COUNTRIES
from linkage.demo.generator import generate
from linkage.demo.invalid_phones import made_up_numbers, with_invalid_numbers
from linkage.demo.knobs import PROFILES
from linkage.demo.noise import KEYBOARD_NEIGHBOURS
from linkage.demo.persons import build_persons
from linkage.demo.project_file import project_config
from linkage.demo.record_errors import (
    OCR_CONFUSIONS,
    doubled_letter,
    initial,
    keyboard_typo,
    mistyped_date,
    ocr_confusion,
)
from linkage.demo.source_plans import SOURCE_PLANS, profiled_plan
from tests.demo_files import (
    DOB_COLUMNS,
    FILES,
    ID_COLUMNS,
    PHONE_COLUMNS,
    content_digest,
    owners,
    read_source,
)

PERSONS = 1000
SEED = 11
PINNED_PERSONS, PINNED_SEED = 300, 7
PINNED_CLEAN_DIGEST = "760bcdf143d95e60791dffd1745447337f8acaf01d5b0d8c02cf29ea15234bfa"
"""``content_digest`` of what the generator wrote for 300 persons, seed 7, before it had
profiles; ``clean`` must keep writing exactly that."""
NAME_COLUMNS = {"crm_contacts": ("given_name", "family_name"), "pos_loyalty": ("first", "surname")}
SPARSE_OTHER_COLUMNS = {
    "crm_contacts": ("birth_date", "street", "zip", "town", "country_code"),
    "webshop_accounts": ("shipping_address", "dob"),
    "pos_loyalty": ("born", "postal_code", "city", "country"),
}
"""Columns a sparse row lacks, besides the identifiers quoted from other systems."""
CONTACT_COLUMNS = {
    "crm_contacts": ("email_address", "mobile"),
    "webshop_accounts": ("email", "phone"),
    "pos_loyalty": ("phone_no",),
}
INTERNATIONAL = r"^\(?\+|^00(?:46|47|49|48|44)"
"""Phones written with their country code, which read the same in any region."""


def _is_invalid(number: str, region: str = "SE") -> bool:
    try:
        return not phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return True


def _e164(number: str, region: str = "SE") -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    zeros = "0" * (parsed.number_of_leading_zeros or 0)
    return f"+{parsed.country_code}{zeros}{parsed.national_number}"


def _one_substitution(written: str, true: str) -> tuple[str, str] | None:
    """The (true, written) characters of a one-character substitution, else None."""
    if len(written) != len(true):
        return None
    diffs = [(t, w) for t, w in zip(true, written, strict=True) if t != w]
    return diffs[0] if len(diffs) == 1 else None


def _is_keyboard_typo(written: str, true: str) -> bool:
    diff = _one_substitution(written.lower(), true.lower())
    return diff is not None and diff[1] in KEYBOARD_NEIGHBOURS.get(diff[0], "")


def _is_ocr_confusion(written: str, true: str) -> bool:
    return any(
        true[:pos] + read + true[pos + len(seen) :] == written
        for seen, read in OCR_CONFUSIONS
        for pos in range(len(true))
        if true.startswith(seen, pos)
    )


def _is_doubled_letter(written: str, true: str) -> bool:
    written, true = written.lower(), true.lower()
    return any(true[: i + 1] + true[i:] == written for i in range(len(true)))


def _is_date_digit_error(written: str, true: str) -> bool:
    """One digit wrong or two digits transposed, not the day and month swapped."""
    if len(written) != len(true):
        return False
    diffs = [i for i, (w, t) in enumerate(zip(written, true, strict=True)) if w != t]
    if len(diffs) == 1:
        return True
    return len(diffs) == 2 and (written[diffs[0]], written[diffs[1]]) == (
        true[diffs[1]],
        true[diffs[0]],
    )


def _swapped_day_and_month(date: pd.Timestamp, fmt: str) -> str | None:
    """The date written with day and month swapped (a base error), if that is a date."""
    try:
        return dt.date(date.year, date.day, date.month).strftime(fmt)
    except ValueError:
        return None


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


def _joined(out: Path, people: pd.DataFrame, owner: dict) -> dict[str, pd.DataFrame]:
    """Each source's records with an id, joined to their true person's columns."""
    joined = {}
    for source in FILES:
        records = read_source(out, source)
        records = records[records[ID_COLUMNS[source]] != ""]
        person = [owner[(source, i)] for i in records[ID_COLUMNS[source]]]
        truth = people.loc[person].reset_index().add_prefix("true_")
        joined[source] = pd.concat([records.reset_index(drop=True), truth], axis=1)
    return joined


def _name_pairs(joined: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    pairs = []
    for source, (first, last) in NAME_COLUMNS.items():
        records = joined[source]
        for column, true in ((first, "true_first_name"), (last, "true_last_name")):
            present = records[records[column] != ""]
            pairs += list(zip(present[column].str.strip(), present[true], strict=True))
    return pairs


def _phone_measures(joined: dict[str, pd.DataFrame]) -> dict[str, float]:
    written = pd.concat([joined[s][PHONE_COLUMNS[s]] for s in FILES])
    international = written[written.str.match(INTERNATIONAL)]
    shop = joined["webshop_accounts"]
    shop = shop[shop["phone"] != ""]
    national = ~shop["phone"].str.match(INTERNATIONAL)
    foreign = national & (shop["true_country"] != "SE")
    return {
        "invalid_phones": _share([_is_invalid(n) for n in international]),
        "national_phones_without_country": float(national.mean()),
        "foreign_national_phones_without_country": float(foreign.mean()),
    }


def _name_measures(joined: dict[str, pd.DataFrame]) -> dict[str, float]:
    pairs = _name_pairs(joined)
    firsts = pd.concat([joined[s][NAME_COLUMNS[s][0]] for s in NAME_COLUMNS])
    return {
        "keyboard_typos": _share([_is_keyboard_typo(w, t) for w, t in pairs]),
        "ocr_confusions": _share([_is_ocr_confusion(w, t) for w, t in pairs]),
        "doubled_letters": _share([_is_doubled_letter(w, t) for w, t in pairs]),
        "swapped_case": _share(
            [len(w) > 1 and w[0].islower() and w[1:].isupper() for w, _ in pairs]
        ),
        "initials": float(firsts.str.strip().str.fullmatch(r"[A-Z]\.?").mean()),
    }


def _record_measures(joined: dict[str, pd.DataFrame]) -> dict[str, float]:
    dates: list[bool] = []
    for source, (column, fmt) in DOB_COLUMNS.items():
        records = joined[source][joined[source][column] != ""]
        true = pd.to_datetime(records["true_date_of_birth"])
        swapped = [_swapped_day_and_month(d, fmt) for d in true]
        dates += [
            w != s and _is_date_digit_error(w, t)
            for w, t, s in zip(records[column], true.dt.strftime(fmt), swapped, strict=True)
        ]
    sparse: list[bool] = []
    for source, others in SPARSE_OTHER_COLUMNS.items():
        records = joined[source]
        contacts = (records[list(CONTACT_COLUMNS[source])] != "").sum(axis=1)
        sparse += ((contacts == 1) & (records[list(others)] == "").all(axis=1)).tolist()
    crm = joined["crm_contacts"][joined["crm_contacts"]["email_address"] != ""]
    emails = [
        _is_keyboard_typo(w, t) or _is_keyboard_typo(w, alt)
        for w, t, alt in zip(
            crm["email_address"], crm["true_email"], crm["true_alt_email"], strict=True
        )
    ]
    return {
        "dob_digit_errors": _share(dates),
        "sparse_rows": _share(sparse),
        "email_typos": _share(emails),
    }


def measure(out: Path, profile: str) -> dict[str, float]:
    """The share of values or records with each kind of error, in the written files."""
    people = build_persons(PERSONS, SEED, profile).set_index("person_id")
    joined = _joined(out, people, owners(out))
    return _phone_measures(joined) | _name_measures(joined) | _record_measures(joined)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for profile in PROFILES:
        folders[profile] = tmp_path_factory.mktemp(profile)
        generate(folders[profile], PERSONS, SEED, profile=profile)
    return folders


@pytest.fixture(scope="module")
def measured(generated: dict[str, Path]) -> dict[str, dict[str, float]]:
    return {profile: measure(out, profile) for profile, out in generated.items()}


REALISTIC_RANGES = {
    "invalid_phones": (0.28, 0.40),  # about a third
    "national_phones_without_country": (0.33, 0.47),
    "foreign_national_phones_without_country": (0.15, 0.35),
    "keyboard_typos": (0.015, 0.04),
    "ocr_confusions": (0.001, 0.01),
    "doubled_letters": (0.002, 0.012),
    "swapped_case": (0.001, 0.01),
    "initials": (0.015, 0.05),
    "dob_digit_errors": (0.02, 0.05),
    "sparse_rows": (0.035, 0.08),
    "email_typos": (0.004, 0.02),
}
"""Measured on 1,000 persons (seed 11) and on 10,000 (seed 42), with room for chance."""
ERRORS_ONLY_IN_PROFILES = (
    "invalid_phones",
    "ocr_confusions",
    "doubled_letters",
    "swapped_case",
    "initials",
    "dob_digit_errors",
    "sparse_rows",
    "email_typos",
)


@pytest.mark.parametrize("metric", sorted(REALISTIC_RANGES))
def test_realistic_has_the_errors_of_real_customer_data(
    measured: dict[str, dict[str, float]], metric: str
) -> None:
    low, high = REALISTIC_RANGES[metric]
    assert low <= measured["realistic"][metric] <= high


@pytest.mark.parametrize("metric", sorted(REALISTIC_RANGES))
def test_hostile_has_more_of_every_error_than_realistic_and_realistic_than_clean(
    measured: dict[str, dict[str, float]], metric: str
) -> None:
    clean, realistic, hostile = (measured[p][metric] for p in ("clean", "realistic", "hostile"))
    assert clean < realistic
    assert hostile >= 1.3 * realistic


@pytest.mark.parametrize("metric", ERRORS_ONLY_IN_PROFILES)
def test_clean_has_none_of_the_errors_profiles_add(
    measured: dict[str, dict[str, float]], metric: str
) -> None:
    assert measured["clean"][metric] == 0


def test_clean_writes_exactly_what_the_generator_wrote_before_profiles(tmp_path: Path) -> None:
    generate(tmp_path, PINNED_PERSONS, PINNED_SEED, profile="clean")
    assert content_digest(tmp_path) == PINNED_CLEAN_DIGEST


@pytest.mark.parametrize("profile", list(PROFILES))
def test_same_seed_and_profile_write_identical_files(tmp_path: Path, profile: str) -> None:
    generate(tmp_path / "a", 120, SEED, profile=profile)
    generate(tmp_path / "b", 120, SEED, profile=profile)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 8
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_profiles_keep_the_records_and_their_truth_and_change_values(
    generated: dict[str, Path],
) -> None:
    truths = {p: (out / "landing/truth.csv").read_bytes() for p, out in generated.items()}
    assert truths["clean"] == truths["realistic"] == truths["hostile"]
    digests = {content_digest(out) for out in generated.values()}
    assert len(digests) == 3


def test_realistic_keeps_each_clean_value_unless_an_error_replaced_it(
    generated: dict[str, Path],
) -> None:
    clean = read_source(generated["clean"], "crm_contacts")
    realistic = read_source(generated["realistic"], "crm_contacts")
    for column in ("given_name", "family_name", "birth_date", "zip", "town"):
        same = clean[column] == realistic[column]
        blanked = realistic[column] == ""  # sparse rows
        assert (same | blanked).mean() >= 0.9, column
        assert not same.all(), column


def test_a_person_writes_one_number_in_all_records_and_only_made_up_ones_are_shared(
    generated: dict[str, Path],
) -> None:
    people = build_persons(PERSONS, SEED, "realistic").set_index("person_id")
    joined = _joined(generated["realistic"], people, owners(generated["realistic"]))
    for source, records in joined.items():
        written = records[records[PHONE_COLUMNS[source]].str.match(INTERNATIONAL)]
        pairs = zip(written[PHONE_COLUMNS[source]], written["true_mobile"], strict=True)
        assert all(_e164(number) == _e164(true) for number, true in pairs), source
    shared = set(people.loc[people["mobile"].duplicated(), "mobile"])
    assert shared
    assert shared <= {n for code in COUNTRIES for n in made_up_numbers(code)}


def test_foreign_national_numbers_in_the_source_without_country_are_read_wrongly(
    generated: dict[str, Path],
) -> None:
    config = project_config()["sources"]
    without_country = [name for name, source in config.items() if "country" not in source["fields"]]
    assert without_country == ["webshop_accounts"]
    region = config["webshop_accounts"]["default_country"]
    people = build_persons(PERSONS, SEED, "realistic").set_index("person_id")
    joined = _joined(generated["realistic"], people, owners(generated["realistic"]))[
        "webshop_accounts"
    ]
    national = joined[(joined["phone"] != "") & ~joined["phone"].str.match(INTERNATIONAL)]
    foreign = national[national["true_country"] != region]
    assert len(foreign) >= 50
    assert foreign["true_country"].nunique() == len(COUNTRIES) - 1
    read = [_e164(number, region) for number in foreign["phone"]]
    assert not any(r == true for r, true in zip(read, foreign["true_mobile"], strict=True))
    own = national[national["true_country"] == region]
    assert all(_e164(n, region) == t for n, t in zip(own["phone"], own["true_mobile"], strict=True))


def test_generated_config_loads_and_describes_the_written_files(
    generated: dict[str, Path],
) -> None:
    project = load_project(generated["realistic"] / "meld.yaml")
    assert list(project.sources) == list(FILES)
    for name, source in project.sources.items():
        path = generated["realistic"] / source.path
        assert path.is_file() and path.name == Path(FILES[name]).name
        columns = read_source(generated["realistic"], name).columns
        for mapping in project_config()["sources"][name]["fields"].values():
            assert (mapping["column"] if isinstance(mapping, dict) else mapping) in columns


@pytest.mark.parametrize("code", list(COUNTRIES))
def test_invalid_numbers_are_invalid_in_every_country(code: str) -> None:
    people = build_persons(400, SEED, "clean")
    mobile = people["mobile"].to_numpy()[people["country"].to_numpy() == code]
    country = np.full(len(mobile), code, dtype=object)
    numbers = with_invalid_numbers(np.random.default_rng(SEED), country, mobile, 1.0)
    assert all(_is_invalid(number) for number in numbers)
    assert not set(numbers) & set(mobile)
    assert made_up_numbers(code)


def test_profiled_plan_rewrites_phones_nationally_only_without_a_country_column() -> None:
    plan = SOURCE_PLANS["webshop_accounts"]
    assert profiled_plan(plan, PROFILES["clean"], has_country=False) == plan
    realistic = profiled_plan(plan, PROFILES["realistic"], has_country=False)
    own_share = plan.phone_formats["national"] / sum(plan.phone_formats.values())
    expected = (PROFILES["realistic"].national_phone_share - own_share) / (1 - own_share)
    assert realistic.to_national_phones == pytest.approx(expected)
    assert profiled_plan(plan, PROFILES["realistic"], has_country=True).to_national_phones == 0
    hostile = profiled_plan(plan, PROFILES["hostile"], has_country=True)
    assert hostile.noise > plan.noise
    assert all(hostile.missing[k] > v for k, v in plan.missing.items())


@pytest.mark.parametrize(
    ("date", "seed"),
    [((1985, 3, 12), s) for s in range(20)] + [((2000, 2, 29), s) for s in range(5)],
)
def test_a_mistyped_date_is_a_date_with_one_digit_wrong_or_two_swapped(
    date: tuple[int, int, int], seed: int
) -> None:
    mistyped = mistyped_date(*date, random.Random(seed))
    written, true = (f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in (mistyped, date))
    dt.date(*mistyped)
    assert _is_date_digit_error(written, true)


def test_name_errors_are_the_ones_people_and_scanners_make() -> None:
    rnd = random.Random(5)
    assert _is_keyboard_typo(keyboard_typo("Svensson", rnd), "Svensson")
    assert ocr_confusion("Bjørn", rnd) == "Bjøm"
    assert ocr_confusion("Claus", rnd) in {"daus", "C1aus"}
    assert ocr_confusion("Xyz", rnd) == "Xyz"
    assert _is_doubled_letter(doubled_letter("Anna", rnd), "Anna")
    assert initial("john", rnd) in {"J", "J."}


def test_main_writes_the_profile_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            str(tmp_path / "cli"),
            "--persons",
            str(PINNED_PERSONS),
            "--seed",
            str(PINNED_SEED),
            "--profile",
            "clean",
        ]
    )
    assert "profile clean" in capsys.readouterr().out.splitlines()[-1]
    assert content_digest(tmp_path / "cli") == PINNED_CLEAN_DIGEST


def test_main_rejects_an_unknown_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--profile", "tidy"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tidy'" in capsys.readouterr().err
    assert not (tmp_path / "meld.yaml").exists()


def test_generate_rejects_an_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="unknown demo profile 'tidy'; expected one of clean, realistic, hostile"
    ):
        generate(tmp_path / "out", 10, 1, profile="tidy")
    assert not (tmp_path / "out").exists()
