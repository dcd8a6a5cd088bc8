"""Identifiers as exact-match evidence: comparisons, blocking, weights, and privacy.

The records are made here, already standardised the way staging leaves them (national
ids as keyed hashes), so the model code is tested on its own.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.ingest.identifiers import hash_national_id, keyed_hash
from linkage.model.blocking import DETERMINISTIC_RULES, PREDICTION_RULES, usable_rules
from linkage.model.comparisons import default_comparisons, identifier_comparison
from linkage.model.settings import build_settings
from linkage.model.training_options import TrainingOptions
from linkage.model.vetoes import apply_link_vetoes
from training.mlflow_store import MlflowTarget
from training.pyfunc import model_input_columns, score_pairs_frame
from training.tracking import log_training_run
from training.train import PRIVATE_TF_COLUMNS, train_linkage_model

KEY = b"test-key-one"
OTHER_KEY = b"test-key-two"

FIRST_NAMES = (
    "anna",
    "eva",
    "maria",
    "karin",
    "sara",
    "lena",
    "emma",
    "elin",
    "ida",
    "julia",
    "lars",
    "erik",
    "per",
    "johan",
    "karl",
    "nils",
    "anders",
    "olof",
    "sven",
    "jonas",
    "mikael",
    "henrik",
    "david",
    "oskar",
    "felix",
    "hugo",
    "axel",
    "adam",
    "liam",
    "noah",
)
LAST_NAMES = (
    "andersson",
    "johansson",
    "karlsson",
    "nilsson",
    "eriksson",
    "larsson",
    "olsson",
    "persson",
    "svensson",
    "gustafsson",
    "pettersson",
    "jonsson",
    "jansson",
    "hansson",
    "bengtsson",
    "lindberg",
    "lindqvist",
    "berg",
    "lund",
    "holm",
    "strom",
    "sandberg",
    "forsberg",
    "sjoberg",
    "wallin",
    "engstrom",
    "lundin",
    "nyberg",
    "bjork",
    "hedlund",
)
CITIES = ("stockholm", "goteborg", "malmo", "uppsala", "lund", "umea", "orebro", "gavle")
RECORD_COLUMNS = (
    "unique_id",
    "source_system",
    "entity",
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "postcode",
    "city",
    "national_id",
    "loyalty_card",
    "customer_number",
    "device_id",
)


def _typo(value: str, rng: np.random.Generator) -> str:
    """Two neighbouring letters swapped."""
    position = int(rng.integers(1, len(value) - 1))
    return value[:position] + value[position + 1] + value[position] + value[position + 2 :]


def _name(value: str, pool: tuple[str, ...], rng: np.random.Generator) -> str:
    """A name as a record shows it: mostly as is, sometimes with a typo, rarely another
    name altogether (a nickname, a married name)."""
    draw = rng.random()
    if draw < 0.04:
        return pool[int(rng.integers(len(pool)))]
    return _typo(value, rng) if draw < 0.12 else value


def _record(person: dict, rng: np.random.Generator, source: str, number: int, **fields) -> dict:
    """One record of ``person`` in ``source``: noisy names, most birth dates."""
    row = dict.fromkeys(RECORD_COLUMNS)
    row.update(
        unique_id=f"{source}:{person['id']}-{number}",
        source_system=source,
        entity=f"P{person['id']}",
        first_name=_name(person["first"], FIRST_NAMES, rng),
        last_name=_name(person["last"], LAST_NAMES, rng),
        date_of_birth=person["dob"] if rng.random() < 0.85 else None,
    )
    row.update(fields)
    return row


def _hand_made_records(persons: int = 300, seed: int = 3) -> pd.DataFrame:
    """Standardised records of ``persons`` people in a CRM, a loyalty system and a help desk.

    Every cardholder's point-of-sale record carries their loyalty card and 40% of their
    CRM records do too; CRM records carry the customer number and half the tickets
    quote it; half the CRM records and 30% of the tickets hold the national id, hashed
    with :data:`KEY`.
    ``device_id`` exists but is always empty. Names have a typo now and then, or are
    another name; dates of birth, e-mails and phones are often missing.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(persons):
        person = {
            "id": index,
            "first": FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))],
            "last": LAST_NAMES[int(rng.integers(len(LAST_NAMES)))],
            "dob": dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 60 * 365))),
        }
        email = f"{person['first']}.{person['last']}{index}@mail.test"
        phone = f"+4670{index:07d}"
        postcode = f"{int(rng.integers(10000, 10060))}"
        city = CITIES[int(rng.integers(len(CITIES)))]
        card = f"7{index:09d}" if rng.random() < 0.7 else None
        customer = f"K{index:06d}"
        national = hash_national_id(f"{person['dob']:%Y%m%d}{index:04d}", KEY).value
        if rng.random() < 0.8:
            rows.append(
                _record(
                    person,
                    rng,
                    "crm",
                    0,
                    email=email if rng.random() < 0.7 else None,
                    phone=phone if rng.random() < 0.4 else None,
                    postcode=postcode,
                    city=city,
                    customer_number=customer,
                    loyalty_card=card if rng.random() < 0.4 else None,
                    national_id=national if rng.random() < 0.5 else None,
                )
            )
        if card is not None:
            rows.append(
                _record(
                    person,
                    rng,
                    "pos",
                    0,
                    phone=phone if rng.random() < 0.5 else None,
                    postcode=postcode,
                    city=city,
                    loyalty_card=card,
                )
            )
        for ticket in range(int(rng.integers(0, 3))):
            rows.append(
                _record(
                    person,
                    rng,
                    "tickets",
                    ticket,
                    email=email if rng.random() < 0.7 else None,
                    date_of_birth=None,
                    customer_number=customer if rng.random() < 0.5 else None,
                    national_id=national if rng.random() < 0.3 else None,
                )
            )
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


# --------------------------------------------------------------------------- #
# Pure functions: which comparisons and rules exist
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("identifier", IDENTIFIER_FIELDS)
def test_identifier_comparison_is_missing_same_or_different(identifier: str) -> None:
    comparison = identifier_comparison(identifier).get_comparison("duckdb")
    levels = comparison.comparison_levels
    words = identifier.replace("_", " ")
    assert [level.is_null_level for level in levels] == [True, False, False]
    assert levels[1].sql_condition == f'"{identifier}_l" = "{identifier}_r"'
    assert levels[2].sql_condition == "ELSE"
    assert not any(level._has_tf_adjustments for level in levels)
    assert words in levels[1].label_for_charts.lower()
    assert comparison.output_column_name == identifier


def test_only_identifiers_with_data_get_a_comparison_and_a_blocking_rule() -> None:
    available = ["first_name", "last_name", "email", "loyalty_card", "national_id"]
    names = [c.get_comparison("duckdb").output_column_name for c in default_comparisons(available)]
    assert names == ["first_name", "last_name", "email", "national_id", "loyalty_card"]
    rules = usable_rules(PREDICTION_RULES, available)
    assert ("loyalty_card",) in rules and ("national_id",) in rules
    assert not {("customer_number",), ("device_id",), ("cookie_id",)} & set(rules)
    # Identifier rules come last: the other rules keep their numbers in MLflow.
    assert rules[-2:] == [("national_id",), ("loyalty_card",)]


def test_no_identifier_decides_lambda() -> None:
    assert not {column for rule in DETERMINISTIC_RULES for column in rule} & set(IDENTIFIER_FIELDS)


def test_identifiers_are_never_shipped_as_term_frequencies() -> None:
    assert set(IDENTIFIER_FIELDS) <= PRIVATE_TF_COLUMNS


def test_an_identifier_and_one_other_field_are_enough_to_match_on() -> None:
    settings = build_settings(["first_name", "customer_number"]).get_settings("duckdb")
    assert [c.output_column_name for c in settings.comparisons] == [
        "first_name",
        "customer_number",
    ]


def test_national_ids_hashed_with_different_keys_differ() -> None:
    ours, theirs = hash_national_id("19850101-1234", KEY), hash_national_id("198501011234", KEY)
    assert ours.value == theirs.value and len(ours.value) == 64
    assert keyed_hash("198501011234", KEY) != keyed_hash("198501011234", OTHER_KEY)


# --------------------------------------------------------------------------- #
# A real model trained on the hand-made records
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return _hand_made_records()


@pytest.fixture(scope="module")
def trained(records: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    """The training result over the hand-made records, and its artifact folder."""
    folder = tmp_path_factory.mktemp("identifier_model")
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    try:
        table = records.drop(columns=["entity"])
        con.register("frame", table)
        con.execute("CREATE TABLE customer_records AS SELECT * FROM frame")
        con.unregister("frame")
        result = train_linkage_model(
            con, "customer_records", TrainingOptions(seed=1), folder / "artifacts"
        )
    finally:
        con.close()
    return result, folder


def _pair(left: pd.Series, right: pd.Series, columns: list[str]) -> dict:
    """Left and right columns of a pair; a missing date of birth is taken from the other
    side (the MLflow scorer cannot take missing dates), which changes no difference
    between two otherwise equal pairs."""
    pair = {f"{c}_l": left[c] for c in columns} | {f"{c}_r": right[c] for c in columns}
    if "date_of_birth" in columns:
        dob = left["date_of_birth"] if pd.notna(left["date_of_birth"]) else right["date_of_birth"]
        dob = dob if pd.notna(dob) else dt.date(1970, 1, 1)
        for side in ("_l", "_r"):
            if pd.isna(pair[f"date_of_birth{side}"]):
                pair[f"date_of_birth{side}"] = dob
    return pair


def _weights(model: dict, pairs: list[dict]) -> list[float]:
    return score_pairs_frame(model, pd.DataFrame(pairs))["match_weight"].tolist()


@pytest.mark.slow
def test_comparisons_exist_only_for_identifiers_with_data(trained) -> None:
    result, _ = trained
    assert {"national_id", "loyalty_card", "customer_number"} <= set(result.comparisons)
    assert "device_id" not in result.comparisons  # the column is there, always empty
    assert "cookie_id" not in result.comparisons  # no such column
    assert {"loyalty_card", "customer_number", "national_id"} <= set(result.prediction_rules)
    deterministic = " ".join(result.deterministic_rules)
    assert not [identifier for identifier in IDENTIFIER_FIELDS if identifier in deterministic]


@pytest.mark.slow
def test_a_shared_loyalty_card_or_customer_number_raises_the_match_weight(
    trained, records: pd.DataFrame
) -> None:
    result, _ = trained
    columns = model_input_columns(result.model)
    by_id = records.set_index("unique_id")
    crm = by_id[by_id["source_system"] == "crm"]
    pos_card = by_id[(by_id["source_system"] == "pos")]
    card_pairs = crm[crm["loyalty_card"].notna()].join(
        pos_card.reset_index().set_index("entity")[["unique_id"]], on="entity", how="inner"
    )
    crm_row, pos_id = card_pairs.iloc[0], card_pairs.iloc[0]["unique_id"]
    with_card = _pair(crm_row, by_id.loc[pos_id], columns)
    without_card = {**with_card, "loyalty_card_r": None}
    tickets = by_id[(by_id["source_system"] == "tickets") & by_id["customer_number"].notna()]
    ticket = tickets.iloc[0]
    crm_of_ticket = crm[crm["entity"] == ticket["entity"]].iloc[0]
    with_number = _pair(crm_of_ticket, ticket, columns)
    without_number = {**with_number, "customer_number_r": None}

    weights = _weights(result.model, [with_card, without_card, with_number, without_number])
    assert weights[0] > weights[1] + 5
    assert weights[2] > weights[3] + 5


@pytest.mark.slow
def test_national_ids_hashed_with_another_key_count_as_different(trained) -> None:
    result, _ = trained
    columns = model_input_columns(result.model)
    person = {c: None for c in columns} | {"first_name": "anna", "last_name": "berg"}
    base = _pair(pd.Series(person), pd.Series(person), columns)

    def national(left: str, right: str) -> dict:
        return {**base, "national_id_l": left, "national_id_r": right}

    same_key = national(keyed_hash("198501011234", KEY), keyed_hash("198501011234", KEY))
    other_key = national(keyed_hash("198501011234", KEY), keyed_hash("198501011234", OTHER_KEY))
    other_person = national(keyed_hash("198501011234", KEY), keyed_hash("197002025678", KEY))
    weights = _weights(result.model, [same_key, other_key, other_person])
    assert weights[0] > weights[1] + 5
    assert weights[1] == pytest.approx(weights[2])


@pytest.mark.slow
def test_a_shared_card_does_not_link_against_names_and_birth_dates(trained) -> None:
    """A card on file in the wrong record (a partner's, a typo that hits someone) is
    outweighed by names that differ, and vetoed when first names and birth dates
    conflict, whatever the card says."""
    result, _ = trained
    columns = model_input_columns(result.model)
    empty = {c: None for c in columns}
    anna = empty | {
        "first_name": "anna",
        "last_name": "berg",
        "date_of_birth": dt.date(1970, 5, 17),
        "postcode": "10010",
        "city": "lund",
        "loyalty_card": "7000000042",
    }
    strangers = _pair(
        pd.Series(anna),
        pd.Series(
            anna
            | {"first_name": "oskar", "last_name": "holm", "date_of_birth": dt.date(1991, 2, 3)}
            | {"postcode": "10050", "city": "umea"}
        ),
        columns,
    )
    partners = _pair(
        pd.Series(anna),
        pd.Series(anna | {"first_name": "johan", "date_of_birth": dt.date(1968, 9, 30)}),
        columns,
    )
    scored = score_pairs_frame(result.model, pd.DataFrame([strangers, partners]))
    assert scored["match_probability"].iloc[0] < 0.5

    con = duckdb.connect()
    try:
        frame = pd.DataFrame([strangers, partners]).assign(
            match_probability=scored["match_probability"].to_numpy()
        )
        con.register("frame", frame)
        con.execute("CREATE TABLE pairs AS SELECT * FROM frame")
        counts = apply_link_vetoes(con, "pairs")
        vetoes = [row[0] for row in con.execute("SELECT link_veto FROM pairs").fetchall()]
    finally:
        con.close()
    assert counts == {"first_name_and_date_of_birth_conflict": 2}
    assert vetoes == ["first_name_and_date_of_birth_conflict"] * 2


@pytest.mark.slow
def test_no_identifier_value_reaches_mlflow(
    trained, records: pd.DataFrame, mlflow_uri: str, experiment_name: str, tmp_path: Path
) -> None:
    result, folder = trained
    model_path = tmp_path / "model.json"
    model_path.write_text(json.dumps(result.model), encoding="utf-8")
    target = MlflowTarget(
        tracking_uri=mlflow_uri,
        experiment=experiment_name,
        artifact_location=str(tmp_path / "mlartifacts"),
        registered_model=f"meld-{experiment_name}",
    )
    tracked = log_training_run(
        target,
        result,
        TrainingOptions(seed=1),
        model_path,
        tf_paths=result.term_frequencies,
        threshold=0.95,
        floor=0.2,
        tags={"dagster_run_id": "test"},
    )
    assert not set(result.term_frequencies) & set(IDENTIFIER_FIELDS)

    values = {
        str(value)
        for column in ("national_id", "loyalty_card", "customer_number")
        for value in records[column].dropna()
    }
    assert len(values) > 300
    run = MlflowClient(mlflow_uri).get_run(tracked.run_id)
    logged = [*run.data.params, *run.data.params.values(), *run.data.tags.values()]
    logged += list(run.data.metrics)
    assert not [text for text in logged if any(value in text for value in values)]

    files = [path for path in (tmp_path / "mlartifacts").rglob("*") if path.is_file()]
    assert any(path.name == "model.json" for path in files)
    assert any(path.suffix == ".html" for path in files)
    for path in files:
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).astype(str).to_csv()
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
        leaked = [value for value in values if value in text]
        assert not leaked, f"{path.relative_to(tmp_path)} holds identifier values {leaked[:3]}"
