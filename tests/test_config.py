"""Project config: validation errors name the file, the source and the key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from linkage.config import REPO_ROOT, ConfigError, load_project
from orchestration.build import build_assets, build_resources


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "meld.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _source(**overrides) -> dict:
    source = {"path": "crm.csv", "id_column": "id", "fields": {"email": "mail"}}
    source.update(overrides)
    return source


def test_paths_resolve_relative_to_the_config_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "warehouse": "data/w.duckdb",
            "mlflow": {"tracking_uri": "sqlite:///data/mlflow.db", "experiment": "x"},
            "sources": {"crm": _source()},
        },
    )
    project = load_project(path)
    assert project.warehouse == tmp_path / "data" / "w.duckdb"
    assert project.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}"
    assert project.mlflow.artifact_location == str(tmp_path / "data" / "mlartifacts")
    assert project.resolve(project.sources["crm"].path) == tmp_path / "crm.csv"
    assert project.sources["crm"].fields["email"].column == "mail"


def test_date_field_with_format(tmp_path: Path) -> None:
    fields = {"date_of_birth": {"column": "dob", "format": "%d/%m/%Y"}}
    project = load_project(
        _write(tmp_path, {"warehouse": "w.duckdb", "sources": {"shop": _source(fields=fields)}})
    )
    assert project.sources["shop"].fields["date_of_birth"].format == "%d/%m/%Y"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"warehouse": "w.duckdb", "sources": {"crm": _source(fields={"shoe_size": "s"})}},
            ["sources.crm.fields", "shoe_size"],
        ),
        (
            {"warehouse": "w.duckdb", "sources": {"crm": _source(id_column="")}},
            ["sources.crm.id_column"],
        ),
        (
            {"warehouse": "w.duckdb", "sources": {"Robert'); DROP TABLE x;--": _source()}},
            ["sources"],
        ),
        (
            {"warehouse": "w.duckdb", "sources": {"crm": _source(default_country="Sweden")}},
            ["sources.crm.default_country"],
        ),
        ({"warehouse": "w.duckdb", "sources": {}}, ["sources"]),
        ({"sources": {"crm": _source()}}, ["warehouse"]),
        (
            {"warehouse": "w.duckdb", "sources": {"crm": _source(colour="red")}},
            ["sources.crm.colour"],
        ),
    ],
    ids=[
        "unknown-field",
        "empty-id-column",
        "hostile-source-name",
        "bad-country",
        "no-sources",
        "no-warehouse",
        "unknown-key",
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, config: dict, expected: list[str]) -> None:
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError) as error:
        load_project(path)
    message = str(error.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_dob_range(tmp_path: Path) -> None:
    config = {"warehouse": "w.duckdb", "sources": {"crm": _source()}}
    assert load_project(_write(tmp_path, config)).dob_range is None
    config["dob_range"] = ["1890-01-01", "2010-12-31"]
    project = load_project(_write(tmp_path, config))
    assert project.dob_range == (date(1890, 1, 1), date(2010, 12, 31))
    config["dob_range"] = ["2010-01-01", "1890-12-31"]
    with pytest.raises(ConfigError, match="dob_range"):
        load_project(_write(tmp_path, config))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_project(tmp_path / "nope.yaml")


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_project(path)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (_source(path="missing.csv"), ["sources.crm", "no file matches"]),
        (
            _source(fields={"email": "no_such_column"}),
            ["sources.crm", "no_such_column", "fields.email"],
        ),
        (_source(id_column="no_id"), ["sources.crm", "no_id", "id_column"]),
        (
            _source(custom_fields={"birth_place": "pob"}),
            ["sources.crm", "'pob'", "custom_fields.birth_place"],
        ),
    ],
    ids=["missing-file", "unknown-column", "unknown-id-column", "unknown-custom-field-column"],
)
def test_ingestion_errors_name_file_source_and_key(
    tmp_path: Path, source: dict, expected: list[str]
) -> None:
    (tmp_path / "crm.csv").write_text("id,mail\n1,a@example.com\n", encoding="utf-8")
    path = _write(tmp_path, {"warehouse": "w.duckdb", "sources": {"crm": source}})
    project = load_project(path)
    raw = [a for a in build_assets(project) if a.key.to_user_string() == "raw_crm"]
    with pytest.raises(dg.Failure) as error:
        dg.materialize(raw, resources=build_resources(project))
    message = error.value.description
    assert str(path) in message
    for part in expected:
        assert part in message


def test_example_config_with_every_option_is_valid() -> None:
    project = load_project(REPO_ROOT / "config" / "example.yaml")
    crm = project.sources["crm_contacts"]
    assert crm.encoding == "windows-1252" and crm.required_fields == ["date_of_birth"]
    assert crm.quality_rule("email", project.quality).blocking
    assert crm.quality_rule("phone", project.quality).min_valid_rate == 0.8
    assert crm.quality_rule("city", project.quality).min_valid_rate == 0.9
    assert project.sources["marketing_list"].database.url_env == "MARKETING_DB_URL"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            _source(database={"kind": "duckdb", "path": "x.duckdb", "table": "t"}),
            "exactly one of 'path' (files) or 'database'",
        ),
        (
            {
                "id_column": "id",
                "fields": {"email": "mail"},
                "database": {
                    "kind": "duckdb",
                    "path": "x.duckdb",
                    "table": "t",
                    "query": "SELECT 1",
                },
            },
            "exactly one of 'table' or 'query'",
        ),
        (
            {
                "id_column": "id",
                "fields": {"email": "mail"},
                "database": {"kind": "sqlalchemy", "url_env": "X; rm -rf /", "table": "t"},
            },
            "sources.crm.database.url_env",
        ),
        (
            {
                "id_column": "id",
                "fields": {"email": "mail"},
                "database": {"kind": "sqlalchemy", "table": "t"},
            },
            "needs 'url_env'",
        ),
        (_source(required_fields=["phone"]), "required_fields ['phone'] are not mapped"),
        (_source(quality={"shoe_size": {"min_valid_rate": 0.5}}), "unknown canonical field"),
        (_source(quality={"email": {"min_valid_rate": 1.5}}), "less than or equal to 1"),
        (_source(encoding="ebcdic"), "sources.crm.encoding"),
        (_source(delimiter=";;"), "sources.crm.delimiter"),
    ],
    ids=[
        "path-and-database",
        "table-and-query",
        "hostile-env-name",
        "sqlalchemy-without-env",
        "required-unmapped",
        "quality-unknown-field",
        "rate-above-one",
        "unknown-encoding",
        "long-delimiter",
    ],
)
def test_hostile_or_inconsistent_source_options_are_refused(
    tmp_path: Path, source: dict, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_project(_write(tmp_path, {"warehouse": "w.duckdb", "sources": {"crm": source}}))
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("custom_fields", "expected"),
    [
        ({"Birth Place": "pob"}, "must match"),
        ({"b" * 41: "pob"}, "must match"),
        ({"email": "pob"}, "clashes"),
        ({"address": "pob"}, "clashes"),
        ({"source_file": "pob"}, "clashes"),
        ({"unique_id": "pob"}, "clashes"),
        ({"tf_city": "pob"}, "clashes"),
        ({"birth_place": ""}, "give the source column"),
    ],
    ids=[
        "not-snake-case",
        "too-long",
        "canonical",
        "address",
        "lineage",
        "staged",
        "splink-prefix",
        "empty-column",
    ],
)
def test_custom_field_names_are_checked(tmp_path: Path, custom_fields: dict, expected: str) -> None:
    path = _write(
        tmp_path,
        {"warehouse": "w.duckdb", "sources": {"crm": _source(custom_fields=custom_fields)}},
    )
    with pytest.raises(ConfigError) as error:
        load_project(path)
    assert "sources.crm.custom_fields" in str(error.value)
    assert expected in str(error.value)


def test_custom_fields_are_listed_once_in_order_of_declaration(tmp_path: Path) -> None:
    sources = {
        "crm": _source(custom_fields={"birth_place": "pob", "occupation": "job"}),
        "shop": _source(custom_fields={"shoe_size": "size", "birth_place": "born_in"}),
        "pos": _source(),
    }
    project = load_project(_write(tmp_path, {"warehouse": "w.duckdb", "sources": sources}))
    assert project.custom_fields == ("birth_place", "occupation", "shoe_size")
    assert project.sources["shop"].custom_fields["birth_place"] == "born_in"
    assert project.sources["pos"].custom_fields == {}
