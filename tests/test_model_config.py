"""The model is configuration: comparisons, rules, custom fields and fixed m/u from YAML."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from linkage.config import ConfigError, ProjectConfig, load_project
from linkage.model.blocking import describe
from linkage.model.scoring import predict_pairs
from linkage.model.settings import ModelSpec, model_settings
from linkage.model.training_options import TrainingOptions
from orchestration.build import build_assets, build_resources
from training.train import train_linkage_model

DATA = Path(__file__).parent / "data" / "model"
SNAPSHOT = json.loads((DATA / "default_settings.json").read_text(encoding="utf-8"))
"""Settings and rules of the default model, saved before the model became configurable."""

ALL_COLUMNS = SNAPSHOT["all"]["columns"]


def _settings_dict(spec: ModelSpec, columns: list[str]) -> dict:
    built = model_settings(columns, spec)
    settings = built.settings.create_settings_dict("duckdb")
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def _comparisons(spec: ModelSpec, columns: list[str]) -> dict[str, list[dict]]:
    settings = _settings_dict(spec, columns)
    return {c["output_column_name"]: c["comparison_levels"] for c in settings["comparisons"]}


def _project(tmp_path: Path, model: dict | None = None, **source_extra) -> Path:
    source = {
        "path": "crm.csv",
        "id_column": "id",
        "fields": {"first_name": "fn", "last_name": "ln", "email": "mail", "city": "town"},
        **source_extra,
    }
    config = {"warehouse": "w.duckdb", "sources": {"crm": source}}
    if model is not None:
        config["model"] = model
    path = tmp_path / "meld.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


PLAIN = ModelSpec(robust_comparisons=False)
"""The default model with the plain comparisons it had before the tolerant ones."""


@pytest.mark.parametrize("case", sorted(SNAPSHOT))
def test_plain_model_is_the_model_before_it_became_configurable(case: str) -> None:
    expected = SNAPSHOT[case]
    built = model_settings(expected["columns"], PLAIN)
    assert _settings_dict(PLAIN, expected["columns"]) == expected["settings"]
    assert describe(built.prediction_rules) == expected["prediction_rules"]
    assert describe(built.deterministic_rules) == expected["deterministic_rules"]
    assert describe(built.training_rules) == expected["training_rules"]
    assert built.fixed_levels == []


def test_a_model_section_with_only_todays_keys_gives_the_default_model(tmp_path: Path) -> None:
    today = {"match_threshold": 0.9, "deterministic_recall": 0.8, "u_max_pairs": 1e5, "seed": 7}
    spec = load_project(_project(tmp_path, today)).model_spec()
    assert spec == ModelSpec()
    plain = load_project(_project(tmp_path, {**today, "robust_comparisons": False}))
    assert _settings_dict(plain.model_spec(), ALL_COLUMNS) == SNAPSHOT["all"]["settings"]


def test_config_comparisons_replace_or_drop_the_default_of_their_column(tmp_path: Path) -> None:
    model = {
        "comparisons": {
            "email": {"function": "EmailComparison"},
            "city": {
                "function": "JaroWinklerAtThresholds",
                "args": {"score_threshold_or_thresholds": [0.9, 0.8]},
                "term_frequency_adjustments": True,
            },
            "first_name": {"preset": "default"},
            "customer_number": "off",
        },
        "prediction_rules": [["email"], ["first_name", "last_name"]],
    }
    # YAML 1.1 reads the key `off` as false: `phone: {off: true}` must still drop phone.
    path = _project(tmp_path, model)
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "  comparisons:\n", "  comparisons:\n    phone: {off: true}\n"
        ),
        encoding="utf-8",
    )
    spec = load_project(path).model_spec()
    comparisons = _comparisons(spec, ALL_COLUMNS)
    default = _comparisons(ModelSpec(), ALL_COLUMNS)

    assert "phone" not in comparisons and "customer_number" not in comparisons
    assert comparisons["first_name"] == default["first_name"]
    assert [level["label_for_charts"] for level in comparisons["email"]] == [
        "email is NULL",
        "Exact match on email",
        "Exact match on username",
        "Jaro-Winkler distance of email >= 0.88",
        "Jaro-Winkler >0.88 on username",
        "All other comparisons",
    ]
    assert [level["label_for_charts"] for level in comparisons["city"]][1:3] == [
        "Exact match on city",
        "Jaro-Winkler distance of city >= 0.9",
    ]
    assert comparisons["city"][1]["tf_adjustment_column"] == "city"
    # city has its own comparison now, so the address comparison no longer scores it.
    address_sql = " ".join(level["sql_condition"] for level in comparisons["address"])
    assert "street_l" in address_sql and "city_l" not in address_sql
    built = model_settings(ALL_COLUMNS, spec)
    assert describe(built.prediction_rules) == ["email", "first_name & last_name"]


def test_a_custom_field_without_a_comparison_gets_exact_match_with_term_frequencies(
    tmp_path: Path,
) -> None:
    path = _project(tmp_path, None, custom_fields={"birth_place": "pob", "occupation": "job"})
    path.write_text(
        path.read_text(encoding="utf-8")
        + "model:\n  comparisons:\n    occupation: {function: LevenshteinAtThresholds}\n",
        encoding="utf-8",
    )
    project = load_project(path)
    assert project.custom_fields == ("birth_place", "occupation")
    spec = project.model_spec()
    comparisons = _comparisons(spec, [*ALL_COLUMNS, "birth_place", "occupation"])
    assert list(comparisons)[-2:] == ["birth_place", "occupation"]
    assert [level["label_for_charts"] for level in comparisons["birth_place"]] == [
        "birth_place is NULL",
        "Exact match on birth_place",
        "All other comparisons",
    ]
    assert comparisons["birth_place"][1]["tf_adjustment_column"] == "birth_place"
    assert "Levenshtein distance of occupation <= 1" in [
        level["label_for_charts"] for level in comparisons["occupation"]
    ]
    # A custom field with no data is left out like any other column.
    assert "birth_place" not in _comparisons(spec, ALL_COLUMNS)


def test_fixed_levels_carry_splink_fix_flags_by_label_or_gamma(tmp_path: Path) -> None:
    model = {
        "fixed": {
            "email": {"Exact match on email": {"m": 0.95, "u": 0.0001}},
            "first_name": {1: {"m": 0.01}},
        }
    }
    spec = load_project(_project(tmp_path, model)).model_spec()
    built = model_settings(ALL_COLUMNS, spec)
    comparisons = _comparisons(spec, ALL_COLUMNS)
    exact_email = comparisons["email"][1]
    assert exact_email["label_for_charts"] == "Exact match on email"
    assert (exact_email["m_probability"], exact_email["u_probability"]) == (0.95, 0.0001)
    assert exact_email["fix_m_probability"] and exact_email["fix_u_probability"]
    # gamma 1 is the level just above "All other comparisons".
    jaro = comparisons["first_name"][-2]
    assert jaro["m_probability"] == 0.01 and jaro["fix_m_probability"]
    assert "u_probability" not in jaro and not jaro["fix_u_probability"]
    assert {(f.comparison, f.label, f.m, f.u) for f in built.fixed_levels} == {
        ("email", "Exact match on email", 0.95, 0.0001),
        ("first_name", "Jaro-Winkler distance of first_name >= 0.7", 0.01, None),
    }
    # Nothing else is fixed.
    fixed_flags = [
        level
        for levels in comparisons.values()
        for level in levels
        if level["fix_m_probability"] or level["fix_u_probability"]
    ]
    assert len(fixed_flags) == 2


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            {"comparisons": {"email": {"function": "os.system"}}},
            ["model.comparisons.email.function", "unknown comparison function 'os.system'"],
        ),
        (
            {"comparisons": {"email": {"function": "CustomComparison"}}},
            ["model.comparisons.email.function", "'CustomComparison'"],
        ),
        (
            {"comparisons": {"city": {"function": "JaroWinklerAtThresholds", "args": {"x": 1}}}},
            ["model.comparisons.city", "do not fit its parameters", "score_threshold"],
        ),
        (
            {
                "comparisons": {
                    "city": {
                        "function": "JaroWinklerAtThresholds",
                        "args": {"score_threshold_or_thresholds": [1.5]},
                    }
                }
            },
            ["model.comparisons.city", "between 0 and 1"],
        ),
        (
            {"comparisons": {"city": {"function": "PostcodeComparison", "args": {"lat_col": "x"}}}},
            ["model.comparisons.city", "name columns"],
        ),
        (
            {"comparisons": {"shoe_size": {"function": "ExactMatch"}}},
            ["model.comparisons.shoe_size", "unknown field"],
        ),
        (
            {"comparisons": {"address": {"function": "ExactMatch"}}},
            ["model.comparisons.address", "give a part its own comparison"],
        ),
        (
            {"prediction_rules": [["email"], ["first_name", "shoe_size"]]},
            ["model.prediction_rules[1]", "shoe_size"],
        ),
        (
            {"training_rules": [["birth_place"]]},
            ["model.training_rules[0]", "birth_place"],
        ),
        ({"deterministic_rules": [[]]}, ["model.deterministic_rules.0"]),
        (
            {"fixed": {"email": {"Exact match on email": {"m": 0}}}},
            ["model.fixed.email.Exact match on email.m", "greater than 0"],
        ),
        (
            {"fixed": {"email": {"Exact match on email": {"u": 1.5}}}},
            ["model.fixed.email.Exact match on email.u", "less than or equal to 1"],
        ),
        (
            {"fixed": {"email": {"Exact match on email": {}}}},
            ["model.fixed.email.Exact match on email", "give m, u or both"],
        ),
        (
            {"fixed": {"email": {"Exact on mail": {"m": 0.9}}}},
            ["model.fixed.email", "no level 'Exact on mail'", "2: Exact match on email"],
        ),
        (
            {"fixed": {"email": {-1: {"m": 0.9}}}},
            ["model.fixed.email", "null level"],
        ),
        (
            {"fixed": {"email": {"Exact match on email": {"m": 0.9}, 2: {"u": 0.1}}}},
            ["model.fixed.email", "fixed twice"],
        ),
        (
            {"comparisons": {"phone": "off"}, "fixed": {"phone": {1: {"m": 0.9}}}},
            ["model.fixed.phone", "no comparison 'phone'"],
        ),
    ],
    ids=[
        "hostile-function",
        "custom-comparison",
        "unknown-arg",
        "bad-arg-value",
        "arg-names-column",
        "unknown-comparison-field",
        "address-function",
        "unknown-rule-column",
        "undeclared-custom-field-in-rule",
        "empty-rule",
        "m-zero",
        "u-above-one",
        "nothing-fixed",
        "unknown-level",
        "null-level",
        "level-fixed-twice",
        "fixed-comparison-off",
    ],
)
def test_model_config_errors_name_the_key(tmp_path: Path, model: dict, expected: list[str]) -> None:
    path = _project(tmp_path, model)
    with pytest.raises(ConfigError) as error:
        load_project(path)
    message = str(error.value)
    assert str(path) in message
    for part in expected:
        assert part in message


@pytest.fixture(scope="module")
def birth_place_project(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> ProjectConfig:
    """Three hand-made sources: crm and shop map birth_place (spelled differently), pos
    does not; ingested into customer_records."""
    from tests.projects import write_project_file

    folder = tmp_path_factory.mktemp("birth_place")
    for name in ("crm.csv", "shop.csv", "pos.csv"):
        shutil.copy(DATA / name, folder / name)
    config = {
        "sources": {
            "crm": {
                "path": "crm.csv",
                "id_column": "id",
                "fields": {
                    "first_name": "given_name",
                    "last_name": "family_name",
                    "date_of_birth": {"column": "birth_date", "format": "%Y-%m-%d"},
                    "email": "email",
                },
                "custom_fields": {"birth_place": "town_of_birth"},
            },
            "shop": {
                "path": "shop.csv",
                "id_column": "account",
                "fields": {
                    "full_name": "name",
                    "date_of_birth": {"column": "dob", "format": "%d/%m/%Y"},
                    "email": "mail",
                },
                "custom_fields": {"birth_place": "birthplace"},
            },
            "pos": {
                "path": "pos.csv",
                "id_column": "card",
                "default_country": "SE",
                "fields": {"first_name": "first", "last_name": "surname", "phone": "phone_no"},
            },
        }
    }
    project = write_project_file(
        folder, config, mlflow_uri=mlflow_uri, experiment="test-birth-place"
    )
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        selection=dg.AssetSelection.groups("ingestion"),
    )
    assert result.success
    return project


@pytest.mark.slow
def test_custom_fields_are_staged_folded_and_null_where_unmapped(
    birth_place_project: ProjectConfig,
) -> None:
    con = duckdb.connect(str(birth_place_project.warehouse), read_only=True)
    try:
        values = dict(
            con.execute(
                "SELECT unique_id, birth_place FROM customer_records "
                "WHERE unique_id IN ('crm:c3', 'shop:s3', 'crm:c9', 'pos:p1')"
            ).fetchall()
        )
        staged = con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'staged_shop' AND column_name = 'birth_place'"
        ).fetchall()
        pos_columns = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'staged_pos'"
            ).fetchall()
        }
    finally:
        con.close()
    raw = {
        line.split(",")[0]: line.rstrip("\n").split(",")[-1]
        for path in ("crm.csv", "shop.csv")
        for line in (DATA / path).read_text(encoding="utf-8").splitlines(keepends=True)[1:]
    }
    assert raw["s3"] == "  GÖTEBORG " and values["shop:s3"] == "goteborg"
    assert raw["c3"] == "Göteborg" and values["crm:c3"] == "goteborg"
    assert raw["c9"] == "" and values["crm:c9"] is None
    assert values["pos:p1"] is None and "birth_place" not in pos_columns
    assert staged == [("VARCHAR",)]
    con = duckdb.connect(str(birth_place_project.warehouse), read_only=True)
    try:
        profiled = con.execute(
            "SELECT source_system FROM data_quality_profile WHERE field = 'birth_place' ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert profiled == [("crm",), ("shop",)]  # custom fields get a quality profile too


def _true_pair_weights(con: duckdb.DuckDBPyConnection, model: dict, table: str) -> dict:
    predict_pairs(con, records_table="customer_records", model=model, floor=0.0, out_table=table)
    return dict(
        con.execute(
            f"SELECT p.unique_id_l || '|' || p.unique_id_r, p.match_weight FROM {table} AS p "
            "JOIN customer_records AS l ON l.unique_id = p.unique_id_l "
            "JOIN customer_records AS r ON r.unique_id = p.unique_id_r "
            # Ids are <letter><person>: c12 and s12 are the same person.
            "WHERE substr(l.source_record_id, 2) = substr(r.source_record_id, 2) "
            "AND l.birth_place = r.birth_place"
        ).fetchall()
    )


@pytest.mark.slow
def test_a_custom_field_is_compared_and_moves_scores(
    birth_place_project: ProjectConfig, tmp_path: Path
) -> None:
    spec = birth_place_project.model_spec()
    without = ModelSpec.from_config(
        {"comparisons": {"birth_place": {"off": True}}}, birth_place_project.custom_fields
    )
    con = duckdb.connect(str(birth_place_project.warehouse))
    try:
        compared = train_linkage_model(
            con, "customer_records", TrainingOptions(model=spec), tmp_path / "a"
        )
        ignored = train_linkage_model(
            con, "customer_records", TrainingOptions(model=without), tmp_path / "b"
        )
        with_weights = _true_pair_weights(con, compared.model, "pairs_with")
        without_weights = _true_pair_weights(con, ignored.model, "pairs_without")
    finally:
        con.close()
    assert "birth_place" in compared.comparisons and "birth_place" not in ignored.comparisons
    levels = {c["output_column_name"]: c for c in compared.model["comparisons"]}["birth_place"][
        "comparison_levels"
    ]
    exact = levels[1]
    assert exact["label_for_charts"] == "Exact match on birth_place"
    assert exact["tf_adjustment_column"] == "birth_place"
    assert exact["m_probability"] > exact["u_probability"]
    pairs = sorted(set(with_weights) & set(without_weights))
    assert len(pairs) >= 20
    gained = sum(with_weights[p] - without_weights[p] for p in pairs) / len(pairs)
    assert gained > 1.0


@pytest.mark.slow
def test_the_linkage_model_asset_trains_the_configured_model_and_logs_fixed_levels(
    birth_place_project: ProjectConfig,
) -> None:
    from mlflow.tracking import MlflowClient

    from tests.projects import write_project_file

    config = yaml.safe_load(birth_place_project.config_path.read_text(encoding="utf-8"))
    config["model"] = {
        "comparisons": {"birth_place": {"function": "LevenshteinAtThresholds"}},
        "fixed": {"birth_place": {"Exact match on birth_place": {"m": 0.9, "u": 0.125}}},
    }
    project = write_project_file(
        birth_place_project.base_dir,
        {k: v for k, v in config.items() if k not in {"warehouse", "mlflow"}},
        mlflow_uri=birth_place_project.mlflow.tracking_uri,
        experiment="test-birth-place-fixed",
        name="fixed.yaml",
    )
    assert project.warehouse == birth_place_project.warehouse
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        selection=dg.AssetSelection.assets("linkage_model"),
    )
    assert result.success
    metadata = result.asset_materializations_for_node("linkage_model")[0].metadata
    model = json.loads(Path(metadata["model_json"].value).read_text(encoding="utf-8"))
    levels = {c["output_column_name"]: c for c in model["comparisons"]}["birth_place"]
    exact = levels["comparison_levels"][1]
    assert (exact["m_probability"], exact["u_probability"]) == (0.9, 0.125)
    assert "Levenshtein distance of birth_place <= 1" in [
        level["label_for_charts"] for level in levels["comparison_levels"]
    ]
    params = MlflowClient(project.mlflow.tracking_uri).get_run(metadata["mlflow_run_id"].value)
    logged = params.data.params
    assert logged["fixed.birth_place.exact_match_on_birth_place.m"] == "0.9"
    assert logged["fixed.birth_place.exact_match_on_birth_place.u"] == "0.125"
