"""Data quality: field rates, rule outcomes, row-count changes, masked profile, HTML report,
and the Dagster report asset and checks over real ingestion."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest

from assets.ingestion import build_ingestion_assets
from assets.quality import build_quality_assets, build_quality_checks
from assets.resources import WarehouseResource
from linkage.canonical import IDENTIFIER_FIELDS
from linkage.config import FieldQualityRule, ProjectConfig
from linkage.ingest.quality.masking import UNMASKED_FIELDS, mask_value
from linkage.ingest.quality.profiling import profile_sources
from linkage.ingest.quality.report import quality_chart_png, write_quality_report
from linkage.ingest.quality.rules import FieldRates, evaluate_quality_rules, field_rates
from linkage.ingest.quality.staging_runs import RowCountChange, record_staging_run, row_count_change
from linkage.tables import DATA_QUALITY_PROFILE
from linkage.warehouse import quote
from orchestration.build import build_resources

FIELDS = {"full_name": "name", "email": "mail", "phone": "tel", "date_of_birth": "dob"}

# row number, id, name, mail, tel, dob
RAW_ROWS = [
    (1, "a1", "Anna Lindqvist", "anna.lindqvist@example.se", "+46 70 123 45 67", "1984-03-02"),
    (2, "a2", "Piotr Nowak", "not-an-email", "0701234568", "02/11/1950"),
    (3, "a3", "Jörg Müller", "   ", None, "1970-01-01"),
    (4, "a4", "", "jorg@@x", "+46 70 000 00 01", ""),
    (5, "a5", "Quarantined Person", "q.person@example.com", "", ""),
    (6, "a6", "Anna Lindqvist", "anna.lindqvist@example.se", "12", None),
]
ISSUES = [(2, "email", "invalid_email"), (4, "email", "invalid_email"), (6, "phone", "short")]
ISSUES_OF_QUARANTINED_ROW = [(5, "email", "invalid_email")]
PERSONAL_VALUES = [
    "Anna Lindqvist",
    "Lindqvist",
    "Piotr Nowak",
    "Jörg Müller",
    "anna.lindqvist",
    "anna.lindqvist@example.se",
    "not-an-email",
    "+46 70 123 45 67",
    "0701234568",
    "1984-03-02",
    "02/11/1950",
]


def _hand_made(con: duckdb.DuckDBPyConnection, source: str = "shop") -> None:
    """raw, quarantine and quality-issue tables as staging leaves them, written by hand."""
    con.execute(
        f'CREATE TABLE "raw_{source}" (id VARCHAR, name VARCHAR, mail VARCHAR, tel VARCHAR, '
        "dob VARCHAR, source_system VARCHAR, source_record_id VARCHAR, "
        "source_row_number BIGINT, source_file VARCHAR, file_fingerprint VARCHAR, "
        "loaded_at TIMESTAMP)"
    )
    for number, record_id, name, mail, tel, dob in RAW_ROWS:
        con.execute(
            f'INSERT INTO "raw_{source}" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())',
            [record_id, name, mail, tel, dob, source, record_id, number, "a.csv", "f"],
        )
    con.execute(
        f'CREATE TABLE "quarantine_{source}" AS SELECT source_system, source_record_id, '
        "source_row_number, source_file, 'id' AS field, 'duplicate_id' AS reason, "
        f"'{{}}' AS raw_values, now()::TIMESTAMP AS quarantined_at FROM \"raw_{source}\" "
        "WHERE source_row_number = 5"
    )
    con.execute(
        f'CREATE TABLE "quality_issues_{source}" (source_system VARCHAR, '
        "source_record_id VARCHAR, source_row_number BIGINT, field VARCHAR, problem VARCHAR)"
    )
    for number, field, problem in ISSUES + ISSUES_OF_QUARANTINED_ROW:
        con.execute(
            f'INSERT INTO "quality_issues_{source}" VALUES (?, ?, ?, ?, ?)',
            [source, f"a{number}", number, field, problem],
        )


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _hand_made(connection)
    yield connection
    connection.close()


def test_field_rates_count_only_rows_not_quarantined(con) -> None:
    rates = {r.field: r for r in field_rates(con, "shop", FIELDS)}
    email = rates["email"]
    assert (email.rows, email.present, email.invalid, email.distinct) == (5, 4, 2, 3)
    assert email.null_rate == pytest.approx(0.2)
    assert email.valid_rate == pytest.approx(0.5)
    name = rates["full_name"]
    assert (name.present, name.invalid, name.distinct) == (4, 0, 3)
    assert name.valid_rate == 1.0
    phone = rates["phone"]
    assert (phone.present, phone.invalid, phone.distinct) == (4, 1, 4)
    assert phone.valid_rate == pytest.approx(0.75)
    assert rates["date_of_birth"].present == 3


def test_field_rates_tell_rows_of_different_files_apart(con) -> None:
    """Row numbers restart per file: a quarantined row 5 of b.csv leaves row 5 of a.csv."""
    con.execute("UPDATE raw_shop SET source_file = 'b.csv' WHERE source_row_number = 6")
    con.execute("UPDATE raw_shop SET source_row_number = 5 WHERE source_row_number = 6")
    con.execute("UPDATE quarantine_shop SET source_file = 'b.csv'")
    con.execute("ALTER TABLE quality_issues_shop ADD COLUMN source_file VARCHAR DEFAULT 'a.csv'")
    [email] = field_rates(con, "shop", {"email": "mail"})
    assert (email.rows, email.present) == (5, 4)
    assert email.invalid == 3  # row 5 of a.csv carries an issue and is staged


def test_valid_rate_is_none_without_present_values() -> None:
    rates = FieldRates("shop", "email", "mail", rows=3, present=0, invalid=0, distinct=0)
    assert rates.null_rate == 1.0
    assert rates.valid_rate is None
    assert FieldRates("shop", "email", "mail", 0, 0, 0, 0).null_rate is None


def test_field_rates_name_a_missing_column_or_table(con) -> None:
    with pytest.raises(ValueError, match="column 'nope' not found in raw_shop"):
        field_rates(con, "shop", {"email": "nope"})
    with pytest.raises(ValueError, match="'raw_crm' not found"):
        field_rates(con, "crm", {"email": "mail"})


RATES = [FieldRates("shop", "email", "mail", rows=10, present=8, invalid=4, distinct=8)]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            FieldQualityRule(max_null_rate=0.3, min_valid_rate=0.4),
            [("max_null_rate", 0.2, True, False), ("min_valid_rate", 0.5, True, False)],
        ),
        (
            FieldQualityRule(max_null_rate=0.1),
            [("max_null_rate", 0.2, False, False)],
        ),
        (
            FieldQualityRule(min_valid_rate=0.9, blocking=True),
            [("min_valid_rate", 0.5, False, True)],
        ),
        (
            SimpleNamespace(max_null_rate=0.2, min_valid_rate=0.5, blocking=False),
            [("max_null_rate", 0.2, True, False), ("min_valid_rate", 0.5, True, False)],
        ),
        (None, []),
    ],
    ids=["pass", "fail", "fail-blocking", "any-object-at-the-threshold", "no-rule"],
)
def test_evaluate_quality_rules(rule, expected) -> None:
    outcomes = evaluate_quality_rules(RATES, {"email": rule})
    assert [(o.rule, o.observed, o.passed, o.blocking) for o in outcomes] == [
        (name, pytest.approx(observed), passed, blocking)
        for name, observed, passed, blocking in expected
    ]
    assert all(o.field == "email" for o in outcomes)


def test_validity_rule_passes_when_no_value_is_present() -> None:
    empty = [FieldRates("shop", "email", "mail", rows=4, present=0, invalid=0, distinct=0)]
    [outcome] = evaluate_quality_rules(empty, {"email": FieldQualityRule(min_valid_rate=0.9)})
    assert outcome.passed and outcome.observed is None


@pytest.mark.parametrize(
    ("field", "value", "masked"),
    [
        ("email", "john.smith@gmail.com", "j***@g***.com"),
        ("email", "no-at-sign", "n***-a***-s***"),
        ("phone", "+46 70 123 45 12", "+46 ** *** ** 12"),
        ("phone", "070-123 45 12", "***-*** ** 12"),
        ("phone", "12", "**"),
        ("first_name", "Anna", "A*** (4 chars)"),
        ("full_name", "Jörg Müller", "J*** M*** (11 chars)"),
        ("date_of_birth", "02/11/1950", "99/99/9999"),
        ("street", "Storgatan 12", "S*** 99"),
        ("address", "Storgatan 12, 111 22 Stockholm", "S*** 99, 999 99 S***"),
        ("national_id", "19840302-1234", "99999999-9999"),
        ("cookie_id", "ab12CD", "xx99XX"),
        ("postcode", "111 22", "11* **"),
        ("city", "Malmö", "Malmö"),
        ("country", "SE", "SE"),
        ("some_new_field", "Secret", "S*** (6 chars)"),
    ],
)
def test_mask_value_shows_shape_not_value(field: str, value: str, masked: str) -> None:
    assert mask_value(field, value) == masked


def test_mask_value_shortens_long_values() -> None:
    masked = mask_value("device_id", "x" * 100)
    assert masked is not None and len(masked) == 40 and masked.endswith("…")


def test_profile_masks_personal_values(con) -> None:
    profile = profile_sources(con, {"shop": FIELDS}, top_values=5)
    stored = con.execute(f"SELECT * FROM {DATA_QUALITY_PROFILE}").fetchall()
    assert len(stored) == len(profile) == len(FIELDS)
    text = repr(stored) + profile.to_csv()
    for value in PERSONAL_VALUES:
        assert value not in text
    top = profile.set_index("field")["top_values"]
    assert top["email"].startswith("a***@e***.se ×2")
    assert "Q***" not in top["full_name"], "quarantined rows are not profiled"
    assert top["date_of_birth"] == "9999-99-99 ×2; 99/99/9999 ×1", "dates show their formats"
    assert profile.set_index("field").loc["email", "validity"] == pytest.approx(0.5)


def test_row_count_change_without_runs_first_run_and_drop(con) -> None:
    assert row_count_change(con, "shop") == RowCountChange("shop", current=None, previous=None)
    record_staging_run(
        con, source_system="shop", run_id="r1", raw_rows=100, staged_rows=100, quarantined_rows=0
    )
    record_staging_run(
        con, source_system="crm", run_id="r9", raw_rows=5, staged_rows=5, quarantined_rows=0
    )
    first = row_count_change(con, "shop")
    assert (first.current, first.previous, first.drop) == (100, None, None)
    assert not first.exceeds_drop(0.5)
    record_staging_run(
        con, source_system="shop", run_id="r2", raw_rows=40, staged_rows=30, quarantined_rows=10
    )
    change = row_count_change(con, "shop")
    assert (change.current, change.previous) == (30, 100)
    assert (change.current_run_id, change.previous_run_id) == ("r2", "r1")
    assert change.drop == pytest.approx(0.7)
    assert change.exceeds_drop(0.5) and not change.exceeds_drop(0.8)
    columns = con.execute("DESCRIBE staging_runs").fetchall()
    assert [(c[0], c[1]) for c in columns] == [
        ("source_system", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("staged_at", "TIMESTAMP"),
        ("raw_rows", "BIGINT"),
        ("staged_rows", "BIGINT"),
        ("quarantined_rows", "BIGINT"),
    ]


def test_html_report_is_self_contained_masked_and_highlights_failures(con, tmp_path) -> None:
    profile = profile_sources(con, {"shop": FIELDS}, top_values=5)
    outcomes = evaluate_quality_rules(
        field_rates(con, "shop", FIELDS), {"email": FieldQualityRule(min_valid_rate=0.9)}
    )
    path = write_quality_report(
        profile,
        tmp_path / "report" / "quality.html",
        title="Shop <quality>",
        row_counts={"shop": RowCountChange("shop", current=30, previous=100)},
        rule_outcomes={"shop": outcomes},
    )
    page = path.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    assert "Shop &lt;quality&gt;" in page
    assert "failed: min_valid_rate" in page and 'class="failed"' in page
    assert "down 70.0%" in page
    for value in PERSONAL_VALUES:
        assert value not in page
    embedded = page.split("data:image/png;base64,")[1].split('"')[0]
    assert b"http" not in base64.b64decode(embedded)


def test_quality_chart_is_a_png(con) -> None:
    profile = profile_sources(con, {"shop": FIELDS}, top_values=3)
    assert quality_chart_png(profile).startswith(b"\x89PNG")


# --- Dagster: the real ingestion assets, the report and the checks ---------------------

SHOP_CSV = """id,first,last,email,phone
1,Anna,Lindqvist,anna.lindqvist@example.se,+46 70 123 45 67
2,Piotr,Nowak,piotr.nowak@example.pl,+48 601 234 567
3,Jörg,Müller,jorg.mueller@example.de,
4,Maria,Garcia,maria.garcia@example.es,
5,Erik,Svensson,erik.svensson@example.se,
6,Lena,Berg,not-an-email,
7,Karl,Holm,karl@@example,
8,Sara,Ekström,sara.at.example.se,
9,Nils,Dahl,nils@,
10,Ida,Falk,@example.se,
,Nobody,Withoutid,nobody@example.com,
"""


@pytest.fixture
def shop_project(
    tmp_path: Path, write_project: Callable[..., ProjectConfig]
) -> Callable[..., ProjectConfig]:
    """A one-source project over SHOP_CSV: half of its e-mails are invalid."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "shop.csv").write_text(SHOP_CSV, encoding="utf-8")

    def _project(quality: dict | None = None) -> ProjectConfig:
        config = {
            "sources": {
                "shop": {
                    "path": str(landing / "shop.csv"),
                    "id_column": "id",
                    "default_country": "SE",
                    "fields": {
                        "first_name": "first",
                        "last_name": "last",
                        "email": "email",
                        "phone": "phone",
                    },
                }
            }
        }
        if quality:
            config["quality"] = quality
        return write_project(config)

    return _project


def _materialize(project: ProjectConfig) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [
            *build_ingestion_assets(project),
            *build_quality_assets(project),
            *build_quality_checks(project),
        ],
        resources=build_resources(project),
        raise_on_error=False,
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


@pytest.mark.slow
def test_invalid_emails_warn_and_the_report_is_written(shop_project) -> None:
    project = shop_project()
    result = _materialize(project)
    assert result.success
    checks = _evaluations(result)
    assert set(checks) == {
        "staged_shop_conserves_records",
        "staged_shop_unique_ids",
        "staged_shop_field_quality",
        "staged_shop_row_count_stable",
    }
    assert checks["staged_shop_conserves_records"].passed
    assert checks["staged_shop_conserves_records"].metadata["unaccounted"].value == 0
    assert checks["staged_shop_unique_ids"].passed
    quality = checks["staged_shop_field_quality"]
    assert not quality.passed
    assert quality.severity == dg.AssetCheckSeverity.WARN
    assert quality.metadata["email.valid_rate"].value == pytest.approx(0.5)
    assert quality.metadata["email.null_rate"].value == 0.0
    assert "| email | min_valid_rate | 0.500 | 0.900 | FAIL (warn) |" in (
        quality.metadata["rule_outcomes"].value
    )
    assert checks["staged_shop_row_count_stable"].passed
    assert {"customer_records", "data_quality_report"} <= _materialized(result)

    [report] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "data_quality_report"
    ]
    assert report["dagster/table_name"].value == "warehouse.main.data_quality_profile"
    assert report["failed_rules"].value == 1
    # 10 staged rows, 4 fields: 32 of 40 cells hold a value (2 phones), 5 e-mails invalid.
    assert report["shop.completeness"].value == pytest.approx(32 / 40)
    assert report["shop.validity"].value == pytest.approx(27 / 32)
    assert report["quality_chart"].value.startswith("![completeness and validity](data:image/png")
    profile_rows = report["profile"].value.records
    assert {r.data["field"] for r in profile_rows} == {"first_name", "last_name", "email", "phone"}
    html_path = Path(report["report"].value)
    assert html_path == project.artifacts / "data_quality" / "data_quality_report.html"
    page = html_path.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    shown = page + repr([r.data for r in profile_rows])
    for value in ("anna.lindqvist@example.se", "not-an-email", "+46 70 123 45 67", "Lindqvist"):
        assert value not in shown


@pytest.mark.slow
def test_a_failed_blocking_rule_stops_downstream(shop_project) -> None:
    project = shop_project({"fields": {"email": {"min_valid_rate": 0.9, "blocking": True}}})
    result = _materialize(project)
    assert not result.success
    quality = _evaluations(result)["staged_shop_field_quality"]
    assert not quality.passed
    assert quality.severity == dg.AssetCheckSeverity.ERROR
    assert quality.metadata["failed_blocking_rules"].value == 1
    materialized = _materialized(result)
    assert "staged_shop" in materialized
    assert not materialized & {"customer_records", "quarantined_records", "data_quality_report"}


def test_row_count_check_warns_on_a_drop_and_passes_without_history(
    tmp_path: Path, write_project: Callable[..., ProjectConfig]
) -> None:
    project = write_project(
        {"sources": {"shop": {"path": "shop.csv", "id_column": "id", "fields": {"email": "m"}}}}
    )
    [row_check] = [
        check
        for check in build_quality_checks(project)
        if {key.name for key in check.check_keys} == {"staged_shop_row_count_stable"}
    ]
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))

    first = row_check(warehouse=warehouse)
    assert first.passed
    assert first.metadata["previous_run"].value == "no previous staging run recorded"

    with warehouse.connect() as con:
        for run_id, rows in (("r1", 100), ("r2", 40)):
            record_staging_run(
                con,
                source_system="shop",
                run_id=run_id,
                raw_rows=rows,
                staged_rows=rows,
                quarantined_rows=0,
            )
    dropped = row_check(warehouse=warehouse)
    assert not dropped.passed
    assert dropped.severity == dg.AssetCheckSeverity.WARN
    assert dropped.metadata["row_drop"].value == pytest.approx(0.6)
    assert dropped.metadata["previous_staged_rows"].value == 100


def _raw_values(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, fields: set[str]
) -> set[str]:
    """Distinct trimmed raw values of the given canonical fields across all sources."""
    values = set()
    for source, config in project.sources.items():
        for field, spec in config.fields.items():
            if field in fields:
                sql = f"SELECT DISTINCT trim({quote(spec.column)}) FROM {quote('raw_' + source)}"
                values |= {row[0] for row in con.execute(sql).fetchall() if row[0]}
    return values


@pytest.mark.slow
def test_demo_report_shows_no_personal_value(demo_project: ProjectConfig) -> None:
    """Over four messy demo sources, no raw contact, name, street, date or id leaks."""
    result = _materialize(demo_project)
    assert result.success
    report = demo_project.artifacts / "data_quality" / "data_quality_report.html"
    page = report.read_text(encoding="utf-8")
    personal = {"first_name", "last_name", "full_name", "email", "phone", "street", "address"}
    personal |= {"date_of_birth", *IDENTIFIER_FIELDS}
    con = duckdb.connect(str(demo_project.warehouse), read_only=True)
    try:
        profile = repr(con.execute(f"SELECT * FROM {DATA_QUALITY_PROFILE}").fetchall())
        places = _raw_values(con, demo_project, set(UNMASKED_FIELDS))
        values = {v for v in _raw_values(con, demo_project, personal) if len(v) >= 6} - places
    finally:
        con.close()
    assert len(values) > 500
    assert not sorted(v for v in values if v in page or v in profile)
