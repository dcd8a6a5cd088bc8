"""Roles: the ``roles:`` config, the role views in the warehouse, and the read commands.

The views are checked on a real warehouse: the demo's 150 persons ingested, clustered
by their known person (no model is trained: mastering only needs customers), and the
mastering assets materialized, ``role_views`` among them.
"""

from __future__ import annotations

import doctest
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

import linkage.config.roles
import linkage.privacy.role_policy
import linkage.privacy.role_sql
from linkage.config import ConfigError, ProjectConfig, load_project
from linkage.privacy.role_policy import ROLE_FIELDS, Role, RoleError, role_view_columns
from linkage.privacy.role_sql import NON_PERSONAL_COLUMNS, column_field, masked_value
from linkage.privacy.roles import ROLE_VIEW_TABLES, publish_role_views
from linkage.tables import CUSTOMER_CLUSTERS, ROLE_VIEWS
from orchestration.build import build_assets, build_resources
from orchestration.cli import main
from tests.projects import demo_sources, ingested_demo_project, write_project_file

PERSONAL = ("first_name", "last_name", "email", "phone", "street")


# --- config -------------------------------------------------------------------------


def _config(tmp_path: Path, demo: Path, roles: dict | None) -> Path:
    config = {"warehouse": "w.duckdb", "allow_paths_outside_project": True, **demo_sources(demo)}
    if roles is not None:
        config["roles"] = roles
    path = tmp_path / "roles.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_without_a_roles_section_the_built_in_roles_apply_and_analyst_is_default(
    tmp_path: Path, small_demo: Path
) -> None:
    roles = load_project(_config(tmp_path, small_demo, None)).roles
    assert [r.name for r in roles.all_roles()] == ["steward", "service", "marketing", "analyst"]
    analyst = roles.role(None)
    assert analyst.name == "analyst" and roles.role("").name == "analyst"
    assert all(analyst.visibility(f) == "hidden" for f in PERSONAL)
    assert analyst.visibility("date_of_birth") == analyst.visibility("postcode") == "masked"
    assert roles.role("steward").sees_everything
    marketing = roles.role("marketing")
    assert marketing.visibility("email") == "clear"
    assert marketing.visibility("date_of_birth") == "hidden"
    service = roles.role("service")
    assert {service.visibility(f) for f in ("email", "phone", "loyalty_card")} == {"masked"}
    with pytest.raises(RoleError, match="unknown role 'boss'.*analyst, marketing"):
        roles.role("boss")


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"default_role": "nobody"}, "default_role 'nobody' is not a declared role"),
        ({"roles": {"a": {}}}, "default_role 'analyst' is not a declared role"),
        (
            {"default_role": "a", "roles": {"a": {"fields": {"emial": "clear"}}}},
            "roles.roles.a.fields: unknown field(s) ['emial']",
        ),
        (
            {"default_role": "a", "roles": {"a": {"fields": {"email": "shown"}}}},
            "roles.roles.a.fields.email: Input should be 'clear', 'masked' or 'hidden'",
        ),
        (
            {"default_role": "a", "roles": {"a": {"fields": {"full_name": "clear"}}}},
            "'full_name' is split during staging",
        ),
        ({"default_role": "A-1", "roles": {"A-1": {}}}, "role name(s) ['A-1']"),
        ({"roles": {"analyst": {"feilds": {}}}}, "roles.roles.analyst.feilds: Extra inputs"),
    ],
)
def test_a_wrong_roles_section_is_a_config_error_naming_the_key(
    tmp_path: Path, small_demo: Path, roles: dict, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_project(_config(tmp_path, small_demo, roles))
    assert expected in str(error.value)


def test_declared_roles_replace_the_built_in_ones_and_may_name_custom_fields(
    tmp_path: Path, small_demo: Path
) -> None:
    sources = demo_sources(small_demo)
    sources["sources"]["crm_contacts"]["custom_fields"] = {"birth_place": "town"}
    config = {
        "warehouse": "w.duckdb",
        "allow_paths_outside_project": True,
        **sources,
        "roles": {
            "default_role": "clerk",
            "roles": {"clerk": {"fields": {"birth_place": "masked", "email": "clear"}}},
        },
    }
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    project = load_project(path)
    clerk = project.roles.role(None)
    assert [r.name for r in project.roles.all_roles()] == ["clerk"]
    columns = role_view_columns(clerk, project.custom_fields)
    assert columns["birth_place"] == "masked" and columns["email"] == "clear"
    assert columns["phone"] == "hidden", "fields not named follow other_fields (hidden)"


def test_mask_never_shows_more_than_the_role() -> None:
    role = Role("r", {"email": "clear", "phone": "hidden", "postcode": "masked"})
    masked = role.masked()
    assert masked.visibility("email") == "masked"
    assert masked.visibility("phone") == "hidden"
    assert masked.visibility("postcode") == "masked"
    assert not Role("s", other_fields="clear").masked().sees_everything


def test_module_examples_hold() -> None:
    modules = (linkage.privacy.role_policy, linkage.privacy.role_sql, linkage.config.roles)
    results = [doctest.testmod(m) for m in modules]
    assert sum(r.attempted for r in results) >= 8
    assert sum(r.failed for r in results) == 0


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("email", "Anna.Berg@Example.com", "A***@Example.com"),
        ("emails", "no-at-sign", "***"),
        ("phone", "+46 70 123 45 67", "***67"),
        ("phone", "1234", "***"),
        ("date_of_birth", date(1984, 3, 2), 1984),
        ("postcode", "111 22", "11***"),
        ("first_name_display", "Åsa", "Å***"),
        ("loyalty_card", "6107965249778", "***78"),
        ("unique_id", "pos_loyalty:6107965249778", "pos_loyalty:***78"),
        ("email_source", "crm_contacts:C1", "crm_contacts:***"),
        ("source_record_id", "WS-a34bdb2f4f", "***4f"),
        ("order_count", 3, 3),
    ],
)
def test_masks_reduce_each_field_to_its_documented_form(
    column: str, value: Any, expected: Any
) -> None:
    role = Role("masked", other_fields="masked")
    assert masked_value(role, column, value) == (True, expected)


def test_derived_matching_aids_are_shown_in_clear_or_not_at_all() -> None:
    role = Role("r", {"first_name": "masked", "phone": "clear"})
    assert masked_value(role, "first_name_phonetic", "ANN") == (False, None)
    assert masked_value(role, "phone_national", "701234567") == (True, "701234567")


# --- views on a real warehouse ------------------------------------------------------


@pytest.fixture(scope="module")
def mastered(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> ProjectConfig:
    """The demo ingested, clustered by the known person of each record, and mastered
    (golden records, households, customer_360 and the role views)."""
    folder = tmp_path_factory.mktemp("roles")
    project = ingested_demo_project(
        folder, small_demo, mlflow_uri=mlflow_uri, experiment="test-roles"
    )
    truth = project.resolve(project.truth.path) if project.truth else None
    assert truth is not None
    con = duckdb.connect(str(project.warehouse))
    try:
        con.execute(
            f"CREATE TABLE {CUSTOMER_CLUSTERS} AS SELECT r.source_system, r.source_record_id, "
            "r.unique_id, 'cus_' || left(md5(t.person_id), 16) AS customer_id, "
            "count(*) OVER (PARTITION BY t.person_id) AS customer_record_count "
            "FROM customer_records AS r JOIN read_csv(?, all_varchar = true) AS t "
            "ON t.source = r.source_system AND t.record_id = r.source_record_id",
            [str(truth)],
        )
    finally:
        con.close()
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        selection=dg.AssetSelection.groups("mastering"),
    )
    assert result.success
    views = result.asset_materializations_for_node(ROLE_VIEWS)[0].metadata
    assert views["default_role"].value == "analyst"
    return project


@contextmanager
def _read(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _views(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = ? ORDER BY 1", [schema]
    ).fetchall()
    return [r[0] for r in rows]


def _personal_values(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every name, e-mail, phone and street of the customers, as stored."""
    columns = ("first_name_display", "last_name_display", "email", "phone", "street_display")
    values: set[str] = set()
    for column in columns:
        rows = con.execute(f"SELECT DISTINCT {column} FROM customer_records").fetchall()
        values |= {r[0] for r in rows if r[0]}
    assert len(values) > 400
    return values


def _strings(value: Any) -> set[str]:
    """Every text value inside rows of lists and structs."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def test_analyst_views_leave_out_names_contacts_and_street(mastered: ProjectConfig) -> None:
    with _read(mastered.warehouse) as con:
        views = _views(con, "role_analyst")
        assert {"golden_customers", "customer_360", "customer_records", "households"} <= set(views)
        assert "customer_orders" not in views, "no orders table, no view, no error"
        personal = _personal_values(con)
        for view in views:
            relation = con.sql(f"SELECT * FROM role_analyst.{view}")
            assert not set(relation.columns) & {*PERSONAL, "emails", "phones", "street_display"}
            leaked = _strings(relation.fetchall()) & personal
            assert not leaked, f"role_analyst.{view} shows personal values"
        years = con.execute(
            "SELECT DISTINCT typeof(date_of_birth) FROM role_analyst.golden_customers"
        ).fetchall()
        assert years == [("BIGINT",)]
        assert con.execute(
            "SELECT count(*) FROM role_analyst.golden_customers AS a "
            "JOIN main.golden_customers AS g USING (customer_id) "
            "WHERE a.date_of_birth <> year(g.date_of_birth) "
            "OR a.postcode <> left(g.postcode, 2) || '***'"
        ).fetchall() == [(0,)]


def test_steward_views_show_the_tables_as_they_are(mastered: ProjectConfig) -> None:
    with _read(mastered.warehouse) as con:
        for view in _views(con, "role_steward"):
            shown = con.sql(f"SELECT * FROM role_steward.{view} ORDER BY ALL").fetchall()
            stored = con.sql(f"SELECT * FROM main.{view} ORDER BY ALL").fetchall()
            assert shown == stored, view


def test_single_values_are_masked_exactly_as_the_views_mask_them(
    mastered: ProjectConfig,
) -> None:
    """``meld explain`` masks single values; the views mask whole tables: the same SQL."""
    service = mastered.roles.role("service")
    columns = ("unique_id", "email", "phone", "date_of_birth", "loyalty_card")
    with _read(mastered.warehouse) as con:
        # source_system and source_row_number are not personal: the view keeps them.
        some = "WHERE source_row_number <= 25"
        stored = con.execute(
            f"SELECT {', '.join(columns)} FROM main.customer_records {some}"
        ).fetchall()
        shown = con.execute(
            f"SELECT {', '.join(columns)} FROM role_service.customer_records {some}"
        ).fetchall()
    assert len(stored) >= 80
    by_mask = [
        tuple(masked_value(service, c, v)[1] for c, v in zip(columns, row, strict=True))
        for row in stored
    ]
    assert Counter(by_mask) == Counter(shown)
    assert any(row[1] and row[1].count("***@") == 1 for row in shown), "e-mails masked"


def test_every_column_of_the_customer_tables_is_classified(mastered: ProjectConfig) -> None:
    """A new column is a field, or declared non-personal; otherwise other_fields rule."""
    with _read(mastered.warehouse) as con:
        for table in ROLE_VIEW_TABLES:
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_name = ?",
                [table],
            ).fetchall()[0][0]
            if not exists:
                continue
            for column in con.sql(f"SELECT * FROM main.{table} LIMIT 0").columns:
                field = column_field(column)
                assert field is None or field in ROLE_FIELDS or column == "addresses", (
                    f"{table}.{column} is neither a field nor in NON_PERSONAL_COLUMNS"
                )
    assert "customer_id" in NON_PERSONAL_COLUMNS


def test_republishing_is_idempotent_and_drops_roles_no_longer_declared(
    mastered: ProjectConfig, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(mastered.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        roles = mastered.roles.all_roles()
        before = {s: _views(con, s) for s in ("role_analyst", "role_service")}
        publish_role_views(con, roles)
        publish_role_views(con, roles)
        assert {s: _views(con, s) for s in before} == before
        con.execute("DROP TABLE households")
        publish_role_views(con, [mastered.roles.role("steward")])
        schemas = {
            r[0]
            for r in con.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE schema_name LIKE 'role_%'"
            ).fetchall()
        }
        assert schemas == {"role_steward"}
        assert "households" not in _views(con, "role_steward")
    finally:
        con.close()


def test_views_work_in_a_copy_opened_under_another_name(
    mastered: ProjectConfig, tmp_path: Path
) -> None:
    """Reads during a run use a published copy of the warehouse (another file name)."""
    copy = tmp_path / "warehouse.published.duckdb"
    shutil.copy(mastered.warehouse, copy)
    with _read(copy) as con:
        rows = con.execute("SELECT count(*) FROM role_analyst.customer_360").fetchall()
    with _read(mastered.warehouse) as con:
        assert rows == con.execute("SELECT count(*) FROM main.customer_360").fetchall()


# --- the command line ---------------------------------------------------------------


def _customer(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """A customer with a name, an e-mail and several records."""
    cursor = con.execute(
        "SELECT customer_id, first_name, last_name, email FROM main.golden_customers "
        "WHERE email IS NOT NULL AND first_name IS NOT NULL AND record_count >= 2 "
        "ORDER BY customer_id LIMIT 1"
    )
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchall()[0], strict=True))


def test_meld_customer_shows_each_role_only_what_it_sees(
    mastered: ProjectConfig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MELD_ROLE", raising=False)
    config = str(mastered.config_path)
    with _read(mastered.warehouse) as con:
        customer = _customer(con)
    cid, email = customer["customer_id"], customer["email"]
    assert main(["customer", cid, "--config", config]) == 0
    out, err = capsys.readouterr()
    assert "role analyst (the default role)" in err
    assert cid in out and "(name hidden)" in out
    assert email not in out and customer["last_name"] not in out

    assert main(["customer", cid, "--config", config, "--role", "steward"]) == 0
    out = capsys.readouterr().out
    assert email in out and customer["last_name"] in out

    monkeypatch.setenv("MELD_ROLE", "steward")
    assert main(["customer", email, "--config", config, "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)[0]
    assert profile["golden"]["email"] == email
    assert main(["customer", email, "--config", config, "--mask"]) == 0
    assert email not in capsys.readouterr().out, "--mask masks what steward sees in clear"

    monkeypatch.setenv("MELD_ROLE", "marketing")
    assert main(["customer", cid, "--config", config, "--json"]) == 0
    golden = json.loads(capsys.readouterr().out)[0]["golden"]
    assert golden["email"] == email and "date_of_birth" not in golden and "phone" not in golden


def test_a_role_cannot_look_customers_up_by_a_field_it_does_not_see(
    mastered: ProjectConfig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MELD_ROLE", raising=False)
    config = str(mastered.config_path)
    with _read(mastered.warehouse) as con:
        email = _customer(con)["email"]
    assert main(["customer", email, "--config", config]) == 1
    err = capsys.readouterr().err
    assert "role 'analyst' does not see e-mails" in err and email not in err
    assert main(["customer", email, "--config", config, "--role", "service"]) == 0


def test_an_unknown_role_is_one_clear_error(
    mastered: ProjectConfig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(mastered.config_path)
    assert main(["customer", "cus_x", "--config", config, "--role", "boss"]) == 1
    assert "unknown role 'boss'; the project declares analyst" in capsys.readouterr().err
    monkeypatch.setenv("MELD_ROLE", "boss")
    assert main(["explain-customer", "cus_x", "--config", config]) == 1
    assert "unknown role 'boss'" in capsys.readouterr().err


def test_meld_roles_lists_what_each_role_sees(
    mastered: ProjectConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(mastered.config_path)
    assert main(["roles", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["field", "steward", "service", "marketing", "analyst*"]
    assert lines[1 + ROLE_FIELDS.index("email")].split() == [
        "email",
        "clear",
        "masked",
        "clear",
        "hidden",
    ]
    assert main(["roles", "--config", config, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["default_role"] == "analyst"
    assert listed["roles"]["analyst"]["schema"] == "role_analyst"
    assert listed["roles"]["analyst"]["fields"]["street"] == "hidden"


def test_other_projects_get_their_own_roles(
    small_demo: Path, mlflow_uri: str, tmp_path: Path
) -> None:
    """The asset is built from the config: a project declaring one role publishes one."""
    project = write_project_file(
        tmp_path,
        {
            **demo_sources(small_demo),
            "roles": {"default_role": "only", "roles": {"only": {"other_fields": "masked"}}},
        },
        mlflow_uri=mlflow_uri,
        experiment="test-roles-own",
    )
    assert project.roles.role(None).visibility("email") == "masked"
    assets = {key.to_user_string() for a in build_assets(project) for key in a.keys}
    assert ROLE_VIEWS in assets
