"""``meld erase``: a person is removed from every table and file, re-clustered around,
recorded in the ledger without personal data, and refused on later deliveries until the
erasure is revoked.

The fast tests build a one-source warehouse with the ingestion functions; the slow test
erases a person from a full demo run (its own MLflow store) and searches every table,
every file under the project folder and the MLflow store for each of their values.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import os
import re
import stat
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.checks import build_checks
from linkage.cluster.steps import ClusteringSpec
from linkage.config import ProjectConfig
from linkage.demo.generator import generate
from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.raw_tables import LINEAGE_COLUMNS
from linkage.ingest.staging import FieldSpec, stage_source
from linkage.ingest.steps import load_source
from linkage.master.steps import HouseholdSpec
from linkage.privacy.deny_list import unlink_denied_records
from linkage.privacy.erasure import ErasureError, apply_erasure, preview_erasure, revoke_erasure
from linkage.privacy.erasure_log import ErasureLogError
from linkage.privacy.files import RecordFile
from linkage.privacy.keyed_hash import (
    KEY_ENV,
    ErasureKeyError,
    erasure_key,
    key_file,
    keyed_hash,
    phone_forms,
)
from linkage.privacy.plan import erasure_plan, record_references
from linkage.privacy.rebuild import RebuildSpec
from linkage.privacy.spec import ErasureSpec
from linkage.privacy.subject import SubjectError, parse_subject
from linkage.tables import ERASURE_REFUSALS, raw_table
from orchestration.build import build_assets, build_resources
from orchestration.cli import main
from tests.projects import demo_sources, write_project_file

SOURCES = ["crm"]
FIELDS = {
    "full_name": FieldSpec("name"),
    "email": FieldSpec("mail"),
    "phone": FieldSpec("phone"),
    "street": FieldSpec("street"),
}
CONTACTS = {"crm": {"email": "mail", "phone": "phone"}}
HEADER = "id,name,mail,phone,street\n"
ANNA = "1,Anna Berglund,anna.berglund@example.com,070-123 45 67,Storgatan 12\n"
BO = "2,Bo Ek,bo.ek@example.com,+46 70 999 88 77,Kungsgatan 3\n"
ANNA_NO_ID = ",Anna Berglund,anna.berglund@example.com,,Storgatan 12\n"
ANNA_VALUES = ("berglund", "anna.berglund@example.com", "701234567", "storgatan 12", "crm:1")


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


# -- subjects and keyed hashes -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "canonical"),
    [
        ("cus_04f0b242742c4e75", "customer", "cus_04f0b242742c4e75"),
        ("crm:C0000113", "record", "crm:C0000113"),
        (" crm: 17 ", "record", "crm:17"),
        ("Anna.Berg@Example.COM", "email", "anna.berg@example.com"),
        ("mailto:<anna.berg@example.com>", "email", "anna.berg@example.com"),
        ("070-123 45 67", "phone", "0701234567|701234567"),
        ("+46 70 123 45 67", "phone", "46701234567|701234567"),
        ("0046701234567", "phone", "46701234567|701234567"),
    ],
)
def test_a_subject_is_recognised_and_put_in_one_form(text: str, kind: str, canonical: str) -> None:
    subject = parse_subject(text, SOURCES)
    assert (subject.kind, subject.text) == (kind, canonical)


@pytest.mark.parametrize("text", ["Anna Berglund", "shop:17", "12-34", ""])
def test_an_unknown_subject_is_refused_without_repeating_it(text: str) -> None:
    with pytest.raises(SubjectError) as raised:
        parse_subject(text, SOURCES)
    assert text not in str(raised.value) or not text


def test_keyed_hashes_depend_on_key_and_kind_and_phone_forms_meet() -> None:
    key, other = b"k" * 32, b"o" * 32
    assert keyed_hash(key, "email", "a@x.se") == keyed_hash(key, "email", "a@x.se")
    assert keyed_hash(key, "email", "a@x.se") != keyed_hash(other, "email", "a@x.se")
    assert keyed_hash(key, "email", "a@x.se") != keyed_hash(key, "phone", "a@x.se")
    assert "a@x.se" not in keyed_hash(key, "email", "a@x.se")
    e164, national = phone_forms("+46701234567"), phone_forms("070-123 45 67")
    assert phone_forms("0046 70 123 45 67") & e164
    assert national & phone_forms("701234567")


def test_the_key_file_is_created_once_private_and_the_env_key_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "w.duckdb"
    assert erasure_key(warehouse, create=False) is None
    key = erasure_key(warehouse, create=True)
    assert key is not None and erasure_key(warehouse, create=True) == key
    assert stat.S_IMODE(os.stat(key_file(warehouse)).st_mode) == 0o600
    monkeypatch.setenv(KEY_ENV, "e" * 40)
    assert erasure_key(warehouse, create=True) == b"e" * 40
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ErasureKeyError):
        erasure_key(warehouse, create=True)


# -- one source, built with the ingestion functions -----------------------------------


def _deliver(folder: Path, name: str, body: str) -> None:
    (folder / "landing" / name).write_text(HEADER + body, encoding="utf-8")


def _ingest(con: duckdb.DuckDBPyConnection, folder: Path):
    loaded = load_raw_source(
        con,
        source_system="crm",
        pattern=folder / "landing" / "crm_*.csv",
        id_column="id",
        mapped_columns={"fields.email": "mail", "fields.phone": "phone"},
    )
    stage_source(con, source_system="crm", fields=FIELDS, default_country="SE")
    con.execute("CREATE OR REPLACE TABLE customer_records AS SELECT * FROM staged_crm")
    return loaded


def _spec(folder: Path) -> ErasureSpec:
    rebuild = RebuildSpec(ClusteringSpec(), {}, (), HouseholdSpec())
    labels = folder / "labels.csv"
    return ErasureSpec(
        warehouse=folder / "warehouse.duckdb",
        sources=tuple(SOURCES),
        contact_columns=CONTACTS,
        rebuild=rebuild,
        folders=(folder / "artifacts",),
        record_files=(RecordFile(labels, ((None, "unique_id_l"), (None, "unique_id_r"))),),
        ledger_head=folder / "artifacts" / "audit" / "ledger_head.txt",
    )


def _artifacts(folder: Path) -> dict[str, Path]:
    out = folder / "artifacts"
    out.mkdir()
    files = {
        "chart": out / "waterfall.html",
        "unrelated": out / "report.html",
        "csv": out / "pairs.csv",
        "parquet": out / "customers.parquet",
    }
    files["chart"].write_text("<p>Anna Berglund &lt;anna.berglund@example.com&gt;</p>")
    files["unrelated"].write_text("<p>Bo Ek, 12 customers</p>")
    files["csv"].write_text("unique_id,street\ncrm:1,Storgatan 12\ncrm:2,Kungsgatan 3\n")
    pq.write_table(pa.table({"unique_id": ["crm:1", "crm:2"], "n": [1, 2]}), files["parquet"])
    (folder / "labels.csv").write_text(
        "unique_id_l,unique_id_r,clerical_match_score\ncrm:1,crm:2,0\ncrm:2,crm:5,1\n"
    )
    return files


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    (tmp_path / "landing").mkdir()
    _deliver(tmp_path, "crm_1.csv", ANNA + BO + ANNA_NO_ID)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _ingest(con, tmp_path)
    yield con
    con.close()


def _text_of_every_table(con: duckdb.DuckDBPyConnection) -> str:
    texts = []
    for schema, table in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_catalog = current_database()"
    ).fetchall():
        rows = con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
        texts.append(json.dumps(rows, default=str))
    return "\n".join(texts).lower()


def test_an_email_finds_every_version_and_the_row_without_id(warehouse, tmp_path: Path) -> None:
    _deliver(tmp_path, "crm_2.csv", "1,Anna Berglund,anna.b@example.com,,Storgatan 12\n")
    _ingest(warehouse, tmp_path)
    preview = preview_erasure(warehouse, _spec(tmp_path), " ANNA.BERGLUND@example.com")
    assert preview.target.unique_ids == ["crm:1"]
    assert len(preview.target.raw_rows) == 1, "the quarantined row without id"
    assert preview.counts["raw_history_crm"] == 3  # two versions and the row without id
    assert preview.counts["quarantine_crm"] == 1
    national = preview_erasure(warehouse, _spec(tmp_path), "+46701234567")
    assert national.target.unique_ids == ["crm:1"]


def test_erasing_removes_every_row_and_value_and_keeps_the_others(
    warehouse, tmp_path: Path
) -> None:
    files = _artifacts(tmp_path)
    spec = _spec(tmp_path)
    preview = preview_erasure(warehouse, spec, "anna.berglund@example.com")
    assert {c.path for c in preview.files} == {files["chart"], files["csv"], files["parquet"]}
    outcome = apply_erasure(warehouse, spec, preview, requested_by="dpo", reason="ticket 4711")

    everything = _text_of_every_table(warehouse)
    for value in ANNA_VALUES:
        assert value not in everything, value
    assert "bo.ek@example.com" in everything
    assert not files["chart"].exists() and files["unrelated"].exists()
    assert "storgatan" not in files["csv"].read_text().lower()
    assert pq.read_table(files["parquet"]).column("unique_id").to_pylist() == ["crm:2"]
    assert "crm:1" not in (tmp_path / "labels.csv").read_text()
    assert outcome.counts["raw_crm"] == 2 and outcome.leftovers == []
    ledger = warehouse.execute("SELECT status, entry FROM linkage_runs").fetchall()
    assert [row[0] for row in ledger] == ["erased"]
    entry = json.loads(ledger[0][1])
    assert entry["rows_by_table"]["raw_crm"] == 2 and len(entry["subject_hash"]) == 64
    assert not any(value in ledger[0][1].lower() for value in ANNA_VALUES)


def test_a_reason_that_names_the_person_is_refused_before_anything_changes(
    warehouse, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)
    preview = preview_erasure(warehouse, spec, "crm:1")
    with pytest.raises(ErasureError, match="--reason names the person"):
        apply_erasure(warehouse, spec, preview, requested_by="dpo", reason="Berglund asked")
    assert warehouse.execute("SELECT count(*) FROM raw_crm WHERE source_record_id = '1'").fetchall()
    assert warehouse.execute("SELECT count(*) FROM raw_crm").fetchall()[0][0] == 3


def test_a_redelivery_is_refused_and_counted_until_the_erasure_is_revoked(
    warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(tmp_path)
    preview = preview_erasure(warehouse, spec, "crm:1")
    erasure = apply_erasure(warehouse, spec, preview, requested_by="dpo", reason="ticket 1")
    rekeyed = "9,A Berglund,Anna.Berglund@example.com,,Storgatan 12\n"
    _deliver(tmp_path, "crm_3.csv", ANNA + BO + rekeyed)
    with caplog.at_level(logging.WARNING):
        loaded = _ingest(warehouse, tmp_path)
    assert loaded.refused_by_erasure == 2, "the same record and the re-keyed one"
    ids = _raw_ids(warehouse)
    assert ids == {"2", None}
    assert "2 row(s) refused" in caplog.text and "berglund" not in caplog.text.lower()
    logged = warehouse.execute(f"SELECT refused_by_erasure FROM {ERASURE_REFUSALS}").fetchall()
    assert logged == [(2,)]

    revoke_erasure(warehouse, spec, erasure.erasure_id, requested_by="dpo", reason="ticket 2")
    with pytest.raises(ErasureLogError, match="revoked already"):
        revoke_erasure(warehouse, spec, erasure.erasure_id, requested_by="dpo", reason="again")
    _deliver(tmp_path, "crm_4.csv", ANNA)
    assert _ingest(warehouse, tmp_path).refused_by_erasure == 0
    ids = _raw_ids(warehouse)
    assert "1" in ids


def test_orders_loaded_after_an_erasure_lose_the_link_to_the_erased_buyer(
    warehouse, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)
    apply_erasure(
        warehouse, spec, preview_erasure(warehouse, spec, "crm:1"), requested_by="d", reason="t"
    )
    warehouse.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES ('o1', 'crm', '1', 10.0), "
        "('o2', 'crm', '2', 20.0)) AS t(order_id, buyer_source, buyer_record_id, amount)"
    )
    unlinked = unlink_denied_records(
        warehouse, "orders", source_column="buyer_source", record_column="buyer_record_id"
    )
    rows = warehouse.execute("SELECT order_id, buyer_record_id, amount FROM orders ORDER BY 1")
    assert (unlinked, rows.fetchall()) == (1, [("o1", None, 10.0), ("o2", "2", 20.0)])


def _raw_ids(con: duckdb.DuckDBPyConnection) -> set[str | None]:
    return {
        r[0] for r in con.execute(f"SELECT source_record_id FROM {raw_table('crm')}").fetchall()
    }


def test_a_missing_or_different_key_stops_ingestion_rather_than_let_erased_rows_in(
    warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path)
    apply_erasure(
        warehouse, spec, preview_erasure(warehouse, spec, "crm:1"), requested_by="d", reason="t"
    )
    _deliver(tmp_path, "crm_3.csv", ANNA)
    monkeypatch.setenv(KEY_ENV, "another key of enough length")
    with pytest.raises(ErasureKeyError, match="not the one the deny list was made with"):
        _ingest(warehouse, tmp_path)
    monkeypatch.delenv(KEY_ENV)
    key_file(spec.warehouse).unlink()
    with pytest.raises(ErasureKeyError, match="key is missing"):
        _ingest(warehouse, tmp_path)


def test_a_new_table_with_a_record_column_the_plan_does_not_know_is_found(warehouse) -> None:
    warehouse.execute("CREATE TABLE review_queue (record_ref VARCHAR, note VARCHAR)")
    warehouse.execute("INSERT INTO review_queue VALUES ('crm:1', 'check'), ('crm:2', 'ok')")
    warehouse.execute("CREATE TABLE pair_review (unique_id_l VARCHAR, unique_id_r VARCHAR)")
    warehouse.execute("INSERT INTO pair_review VALUES ('crm:1', 'crm:2')")
    plan = erasure_plan(warehouse)
    found = {table for table, _ in record_references(warehouse, ["crm:1"])}
    assert {"review_queue", "pair_review"} <= found
    assert plan.covers("pair_review")
    assert _uncovered(warehouse, ["crm:1"]) == ["review_queue"]


def _uncovered(con: duckdb.DuckDBPyConnection, unique_ids: list[str]) -> list[str]:
    """Tables that hold a record's unique id but that the erasure plan does not cover."""
    plan = erasure_plan(con)
    found = {table for table, _ in record_references(con, unique_ids)}
    return sorted(t for t in found if not plan.covers(t))


# -- a full demo run ------------------------------------------------------------------

PERSON_COLUMNS = (
    "unique_id",
    "source_record_id",
    "first_name",
    "last_name",
    "first_name_display",
    "last_name_display",
    "email",
    "phone",
    "phone_national",
    "street",
    "street_display",
    "date_of_birth",
)
MIN_SEARCHED_CHARS = 5


def _row_values(con: duckdb.DuckDBPyConnection, mine: list[str]) -> tuple[set[str], set[str]]:
    """Every raw and standardised value of the records ``mine``, and of all the others."""
    own: set[str] = set()
    others: set[str] = set()
    tables = [
        t
        for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'raw_%'"
        ).fetchall()
    ]
    for table in tables:
        columns = [
            c
            for (c, kind) in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ?",
                [table],
            ).fetchall()
            if kind == "VARCHAR" and (c not in LINEAGE_COLUMNS or c == "source_record_id")
        ]
        select = ", ".join(f'"{c}"' for c in columns)
        for row in con.execute(
            f"SELECT source_system || ':' || source_record_id, {select} FROM \"{table}\""
        ).fetchall():
            (own if row[0] in mine else others).update(str(v) for v in row[1:] if v)
    select = ", ".join(f'"{c}"::VARCHAR' for c in PERSON_COLUMNS)
    for row in con.execute(f"SELECT {select} FROM customer_records").fetchall():
        (own if row[0] in mine else others).update(str(v) for v in row if v)
    return own, {v.lower() for v in others}


def _searchable(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return len(value) >= MIN_SEARCHED_CHARS and not (value.isdigit() and len(digits) < 7)


def _pattern(values: set[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(v.lower()) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _readable(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").replace("\\/", "/")
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return html.unescape(text).lower()


def _hits_in_warehouses(folder: Path, pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Values found in any table of any DuckDB file under ``folder``, or in the file's
    bytes (DuckDB leaves deleted values in free blocks unless the file is rewritten)."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            text = _text_of_every_table(con)
        hits = set(pattern.findall(text)) | set(pattern.findall(_readable(path.read_bytes())))
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def _hits_in_files(folder: Path, pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Values found in any other file under ``folder`` (the MLflow sqlite store and
    artifact folder included); Parquet files are read as rows too."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix in (".duckdb", ".wal"):
            continue
        text = _readable(path.read_bytes())
        if path.suffix == ".parquet":
            text += json.dumps(pq.read_table(path).to_pylist(), default=str).lower()
        hits = set(pattern.findall(text))
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def _pick_person(con: duckdb.DuckDBPyConnection) -> tuple[str, list[str]]:
    """The customer with the most records, one of them a CRM contact."""
    customer_id, members = con.execute(
        "SELECT customer_id, list(unique_id ORDER BY unique_id) FROM customer_clusters "
        "GROUP BY customer_id HAVING bool_or(source_system = 'crm_contacts') "
        "ORDER BY count(*) DESC, customer_id LIMIT 1"
    ).fetchall()[0]
    return customer_id, list(members)


@pytest.fixture(scope="module")
def erased_demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A full demo run with its own MLflow store, then `meld erase` of one person."""
    root = tmp_path_factory.mktemp("erasure")
    landing = root / "demo"
    generate(landing, persons=150, seed=11)
    folder = root / "project"
    folder.mkdir()
    project = write_project_file(
        folder,
        demo_sources(landing),
        mlflow_uri=f"sqlite:///{folder / 'mlflow.db'}",
        experiment="erasure",
    )
    result = dg.materialize(
        [*build_assets(project), *build_checks(project)], resources=build_resources(project)
    )
    assert result.success
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        customer_id, members = _pick_person(con)
        own, others = _row_values(con, members)
        clusters = dict(
            con.execute("SELECT unique_id, customer_id FROM customer_clusters").fetchall()
        )
        every_id = [r[0] for r in con.execute("SELECT unique_id FROM customer_records").fetchall()]
        uncovered = _uncovered(con, every_id)
    values = {v for v in own if v.lower() not in others and _searchable(v)}
    found_before = _hits_in_warehouses(folder, _pattern(values))
    argv = ["erase", customer_id, "--requested-by", "dpo@example.org", "--reason", "ticket 4711"]
    status = main([*argv, "--yes", "--json", "--config", str(project.config_path)])
    return {
        "project": project,
        "folder": folder,
        "customer_id": customer_id,
        "members": members,
        "values": values,
        "clusters": clusters,
        "uncovered": uncovered,
        "found_before": found_before,
        "status": status,
    }


@pytest.mark.slow
def test_every_table_that_holds_record_ids_is_covered_by_the_plan(erased_demo: dict) -> None:
    assert erased_demo["uncovered"] == []


@pytest.mark.slow
def test_no_value_of_the_person_is_left_in_any_table_file_or_the_mlflow_store(
    erased_demo: dict,
) -> None:
    values, folder = erased_demo["values"], erased_demo["folder"]
    assert erased_demo["status"] == 0
    assert set(erased_demo["members"]) <= values, "the record ids are searched too"
    assert any("@" in v for v in values), "an e-mail is searched"
    assert len(values) >= 8
    pattern = _pattern(values)
    assert erased_demo["found_before"], "the search finds the person before the erasure"
    assert _hits_in_warehouses(folder, pattern) == {}
    assert _hits_in_files(folder, pattern) == {}
    assert (folder / "mlflow.db").is_file() and (folder / "mlartifacts").is_dir()


@pytest.mark.slow
def test_customers_not_touched_keep_their_ids(erased_demo: dict) -> None:
    project: ProjectConfig = erased_demo["project"]
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        after = dict(con.execute("SELECT unique_id, customer_id FROM customer_clusters").fetchall())
        status = con.execute(
            "SELECT status FROM customer_ids WHERE id = ?", [erased_demo["customer_id"]]
        ).fetchall()
        golden = con.execute("SELECT count(*) FROM golden_customers").fetchall()[0][0]
    before = {u: c for u, c in erased_demo["clusters"].items() if u not in erased_demo["members"]}
    assert after == before
    assert status == [("retired",)]
    assert golden == len(set(after.values()))


@pytest.mark.slow
def test_the_ledger_verifies_and_lists_the_erasure_without_values(
    erased_demo: dict, capsys: pytest.CaptureFixture
) -> None:
    config = str(erased_demo["project"].config_path)
    assert main(["verify-ledger", "--config", config]) == 0
    capsys.readouterr()
    assert main(["erasures", "--json", "--config", config]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["event"], e["requested_by"]) for e in listed] == [("erased", "dpo@example.org")]
    assert listed[0]["counts"]["customer_records"] == len(erased_demo["members"])
    assert not _pattern(erased_demo["values"]).search(json.dumps(listed).lower())


def _reorder(path: Path, order) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "".join(order(lines[1:])), encoding="utf-8")


@pytest.mark.slow
def test_a_redelivery_is_refused_and_counted_and_a_revoke_lets_it_in(erased_demo: dict) -> None:
    project: ProjectConfig = erased_demo["project"]
    crm = [m.split(":", 1)[1] for m in erased_demo["members"] if m.startswith("crm_contacts:")]
    spec = project.raw_source_spec("crm_contacts")
    landing = project.source_files("crm_contacts")[0]
    _reorder(landing, lambda rows: rows[::-1])
    with duckdb.connect(str(project.warehouse)) as con:
        refused = load_source(con, spec, run_id="redelivery").refused_by_erasure
        ids = {
            r[0] for r in con.execute("SELECT source_record_id FROM raw_crm_contacts").fetchall()
        }
    assert refused >= len(crm) and not ids & set(crm)

    config = str(project.config_path)
    erasure_id = _erasures(config)[0]["erasure_id"]
    argv = ["revoke-erasure", erasure_id, "--requested-by", "dpo", "--reason", "ticket 4712"]
    assert main([*argv, "--config", config]) == 0
    _reorder(landing, lambda rows: rows[1:] + rows[:1])
    with duckdb.connect(str(project.warehouse)) as con:
        assert load_source(con, spec, run_id="after-revoke").refused_by_erasure == 0
        ids = {
            r[0] for r in con.execute("SELECT source_record_id FROM raw_crm_contacts").fetchall()
        }
    assert set(crm) <= ids
    assert main(["verify-ledger", "--config", config]) == 0


def _erasures(config: str) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["erasures", "--json", "--config", config]) == 0
    return json.loads(out.getvalue())
