"""The corpus of bad inputs in ``tests/data/bad_inputs``: each file's exact outcome.

Every case ends in either a clear error naming the source, file and column, or in
rows that are staged or quarantined with their row, line, field and reason. No
record is lost: each raw row is staged or quarantined exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from linkage.canonical import IDENTIFYING_FIELDS
from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.readers.database import DatabaseSpec
from linkage.ingest.readers.delivery import SourceError
from linkage.ingest.staging import FieldSpec, stage_source
from orchestration.build import build_assets, build_resources
from tests.projects import select_assets

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
FIELDS = {
    "first_name": FieldSpec("first"),
    "last_name": FieldSpec("last"),
    "email": FieldSpec("email"),
    "phone": FieldSpec("phone"),
    "date_of_birth": FieldSpec("dob", "%Y-%m-%d"),
}
NO_IDENTITY = ",".join(IDENTIFYING_FIELDS)


@dataclass(frozen=True)
class Case:
    """A corpus file and what must come of it."""

    file: str
    staged: list[str] = field(default_factory=list)
    quarantined: list[tuple[int, int | None, str | None, str]] = field(default_factory=list)
    """(row, line, field, reason) per quarantined row."""
    issues: list[tuple[int, str, str]] = field(default_factory=list)
    """(row, field, problem) per nulled field value."""
    error: str | None = None
    encoding: str = "utf-8"
    required: tuple[str, ...] = ()


CASES = [
    Case(
        "malformed_rows.csv",
        staged=["1", "4"],
        quarantined=[(2, 3, None, "malformed_row"), (3, 4, None, "malformed_row")],
    ),
    Case("latin1.csv", staged=["1", "2"], encoding="latin-1"),
    Case(
        "latin1.csv",
        staged=["2"],
        quarantined=[(1, 2, "first,last", "undecodable_bytes")],
        encoding="utf-8",
    ),
    Case(
        "windows1252.csv",
        staged=["1", "3"],
        quarantined=[(2, 3, "first", "undecodable_bytes")],
        encoding="windows-1252",
    ),
    Case("utf8_bom.csv", staged=["1"]),
    Case("missing_column.csv", error="column 'email' (config key fields.email) not found"),
    Case("empty.csv", error="file is empty"),
    Case("header_only.csv", error="no data rows"),
    Case("duplicate_ids.csv", staged=["7", "8"], quarantined=[(2, 3, "id", "duplicate_id")]),
    Case(
        "long_fields.csv",
        staged=["1", "3"],
        quarantined=[(2, 3, "id", "invalid_id")],
        issues=[(1, "first_name", "too_long")],
    ),
    Case(
        "sql_looking.csv",
        staged=["1", "2", "3;DROP TABLE staged_crm"],
        issues=[(2, "email", "invalid_email"), (2, "last_name", "invalid_name")],
    ),
    Case("multiline_quoted.csv", staged=["1", "2"]),
    Case("nul_bytes.csv", staged=["2"], quarantined=[(1, 2, "first", "undecodable_bytes")]),
    Case(
        "unparseable_dates.csv",
        staged=["5"],
        quarantined=[
            (1, 2, "date_of_birth", "invalid_required_field"),
            (2, 3, "date_of_birth", "invalid_required_field"),
            (3, 4, "date_of_birth", "invalid_required_field"),
            (4, 5, "date_of_birth", "missing_required_field"),
        ],
        required=("date_of_birth",),
    ),
    Case(
        "unparseable_dates.csv",
        staged=["1", "2", "3", "4", "5"],
        issues=[
            (1, "date_of_birth", "impossible_date"),
            (2, "date_of_birth", "unparseable_date"),
            (3, "date_of_birth", "date_out_of_range"),
        ],
    ),
    Case("semicolon_delimited.csv", staged=["1", "2"]),
    Case(
        "broken_lines.jsonl",
        staged=["1", "4"],
        quarantined=[(2, 2, None, "malformed_row"), (3, 3, None, "malformed_row")],
    ),
    Case(
        "missing_ids.csv",
        staged=["3"],
        quarantined=[(1, 2, "id", "missing_id"), (2, 3, "id", "missing_id")],
    ),
    Case(
        "bad_values.csv",
        staged=["1", "3"],
        quarantined=[(2, 3, NO_IDENTITY, "no_identifying_fields")],
        issues=[
            (1, "email", "invalid_email"),
            (1, "phone", "invalid_phone"),
            (3, "email", "invalid_email"),
        ],
    ),
]


def _case_id(case: Case) -> str:
    return f"{case.file}-{case.encoding}" + ("-required" if case.required else "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bad_input_has_its_exact_outcome(case: Case, tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    path = CORPUS / case.file
    mapped = {f"fields.{name}": spec.column for name, spec in FIELDS.items()}
    if case.error:
        with pytest.raises(SourceError, match=case.error.replace("(", r"\(").replace(")", r"\)")):
            load_raw_source(
                con, source_system="crm", pattern=path, id_column="id", mapped_columns=mapped
            )
        assert not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'raw%'"
        ).fetchall()[0][0], "a failed load must write nothing"
        return
    load_raw_source(
        con,
        source_system="crm",
        pattern=path,
        id_column="id",
        mapped_columns=mapped,
        encoding=case.encoding,
    )
    stage_source(
        con,
        source_system="crm",
        fields=FIELDS,
        default_country="SE",
        required_fields=case.required,
    )
    staged = [r[0] for r in con.execute("SELECT source_record_id FROM staged_crm").fetchall()]
    quarantined = con.execute(
        "SELECT source_row_number, source_line, field, reason FROM quarantine_crm "
        "ORDER BY raw_row_id"
    ).fetchall()
    issues = con.execute(
        "SELECT source_row_number, field, problem FROM quality_issues_crm "
        "ORDER BY source_row_number, field"
    ).fetchall()
    assert staged == case.staged
    assert quarantined == case.quarantined
    assert issues == case.issues
    # Conservation: every raw row is staged or quarantined, exactly once.
    raw_rows, accounted, distinct = con.execute(
        "SELECT (SELECT count(*) FROM raw_crm), "
        "(SELECT count(*) FROM staged_crm) + (SELECT count(*) FROM quarantine_crm), "
        "(SELECT count(DISTINCT raw_row_id) FROM ("
        "  SELECT raw_row_id FROM quarantine_crm UNION ALL "
        "  SELECT r.raw_row_id FROM raw_crm AS r JOIN staged_crm AS s "
        "  ON s.source_record_id = r.source_record_id))"
    ).fetchall()[0]
    assert raw_rows == accounted == distinct
    con.close()


def test_quarantine_keeps_the_raw_values_and_reason_detail(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_raw_source(
        con,
        source_system="crm",
        pattern=CORPUS / "malformed_rows.csv",
        id_column="id",
        mapped_columns={},
    )
    stage_source(con, source_system="crm", fields=FIELDS)
    detail, source_file = con.execute(
        "SELECT detail, source_file FROM quarantine_crm WHERE source_line = 3"
    ).fetchall()[0]
    assert detail == (
        "line 3: expected 6 fields, found 8: "
        "2,Bo,Ek,bo@example.com,0702345678,1975-05-06,EXTRA,FIELDS"
    )
    assert source_file.endswith("malformed_rows.csv")


def test_sql_looking_values_are_only_data(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_raw_source(
        con,
        source_system="crm",
        pattern=CORPUS / "sql_looking.csv",
        id_column="id",
        mapped_columns={},
    )
    stage_source(con, source_system="crm", fields=FIELDS)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"raw_crm", "staged_crm", "quarantine_crm"} <= tables
    display = con.execute(
        "SELECT first_name_display FROM staged_crm WHERE source_record_id = '1'"
    ).fetchall()[0][0]
    assert display == "Robert'); DROP TABLE raw_crm;--"


def test_a_failing_source_fails_alone(write_project, tmp_path: Path) -> None:
    """A source whose file lacks a mapped column fails its own asset; others still run."""
    good = tmp_path / "good.csv"
    good.write_bytes((CORPUS / "duplicate_ids.csv").read_bytes())
    mapping = {"first_name": "first", "last_name": "last", "email": "email"}
    project = write_project(
        {
            "sources": {
                "good": {"path": "good.csv", "id_column": "id", "fields": mapping},
                "broken": {
                    "path": str(CORPUS / "missing_column.csv"),
                    "id_column": "id",
                    "fields": mapping,
                },
            }
        }
    )
    selection = select_assets(build_assets(project), lambda n: n.endswith(("good", "broken")))
    result = dg.materialize(selection, resources=build_resources(project), raise_on_error=False)
    assert not result.success
    done = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert done == {"raw_good", "staged_good"}
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    message = str(failures[0].event_specific_data.error_display_string)
    assert "sources.broken" in message and "'email'" in message and "missing_column.csv" in message


def test_hostile_column_and_table_names_are_identifiers_not_sql(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    hostile = 'id"; DROP TABLE source_deliveries; --'
    with pytest.raises(SourceError, match="not found"):
        load_raw_source(
            con,
            source_system="crm",
            pattern=CORPUS / "duplicate_ids.csv",
            id_column=hostile,
            mapped_columns={},
        )
    legacy = tmp_path / "legacy.duckdb"
    with duckdb.connect(str(legacy)) as db:
        db.execute("CREATE TABLE people AS SELECT 1 AS id")
    spec = DatabaseSpec(kind="duckdb", path=legacy, table="people; DROP TABLE people")
    with pytest.raises(SourceError, match="cannot read"):
        load_raw_source(
            con, source_system="legacy", database=spec, id_column="id", mapped_columns={}
        )
    with duckdb.connect(str(legacy), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM people").fetchall() == [(1,)]
