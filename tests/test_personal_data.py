"""Personal data stays in the warehouse: error texts, logs, the ledger, Dagster's storage
and the MLflow store hold no name, e-mail or phone of the records (issue 14, part 2).

The slow test runs the pipeline on the demo data with its own MLflow store and Dagster
instance, then a failing delivery (a CSV without its header row, and one in the wrong
encoding), and searches everything that left the warehouse for every name, e-mail and
phone of the landing files. Values shorter than five characters are not searched (see
``tests/personal_data_scan.py``): "Bo" and "Ann" are also ordinary tokens of code and
HTML.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import pandas as pd
import pyarrow as pa
import pytest
from dagster_shared.error import SerializableErrorInfo

from assets.checks import build_checks
from assets.failures import failure_at, failure_text
from linkage.audit.ledger import ledger_rows
from linkage.errors import RedactedError, safe_error_text, without_values
from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.readers.delivery import SourceError
from linkage.model.store import scoring_model
from orchestration.build import build_assets, build_resources
from orchestration.sensors import run_failure_text, value_free_error
from tests.personal_data_scan import Scanner, personal_values
from tests.projects import demo_sources, write_project_file
from training.chart_masking import mask_record_ids, masked_pair
from training.pyfunc import score_pairs_frame
from training.tf_lookups import hashed_lookup_copy, read_hashed_lookup

SECRET = "Lindqvist"
"""A value that must not leave the warehouse in the unit tests below."""


def _duckdb_error() -> duckdb.Error:
    try:
        duckdb.connect().execute(f"SELECT CAST('{SECRET}' AS INTEGER)")
    except duckdb.Error as exc:
        return exc
    raise AssertionError("DuckDB cast did not fail")


def _arrow_error() -> pa.ArrowInvalid:
    import pyarrow.csv as pa_csv

    try:
        pa_csv.read_csv(pa.py_buffer(f"id,name\n1,{SECRET},x\n".encode()))
    except pa.ArrowInvalid as exc:
        return exc
    raise AssertionError("Arrow read a malformed CSV")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_duckdb_error, "duckdb ConversionException"),
        (_arrow_error, "pyarrow ArrowInvalid"),
        (lambda: UnicodeDecodeError("utf-8", SECRET.encode(), 3, 4, "bad"), "utf-8, byte 3"),
        (lambda: KeyError(f"{SECRET.lower()}@example.se"), "KeyError"),
    ],
)
def test_third_party_errors_keep_their_type_and_position_not_their_values(make, expected) -> None:
    exc = make()
    assert SECRET in str(exc) or SECRET.lower() in str(exc) or isinstance(exc, UnicodeError)
    text = safe_error_text(exc, where="source 'crm', file 'crm.csv'")
    assert text.startswith("source 'crm', file 'crm.csv': ") and expected in text
    assert SECRET.lower() not in text.lower()


def test_the_cause_chain_keeps_tracebacks_and_meld_messages_but_no_values() -> None:
    try:
        try:
            raise _duckdb_error()
        except duckdb.Error as exc:
            raise SourceError("source 'crm', file 'crm.csv': cannot read") from exc
    except SourceError as exc:
        original, clean = exc, without_values(exc)
    assert clean is original and str(clean) == "source 'crm', file 'crm.csv': cannot read"
    cause = clean.__cause__
    assert isinstance(cause, RedactedError) and str(cause) == "duckdb ConversionException"
    assert cause.__traceback__ is not None, "where it happened stays visible"
    assert cause.__context__ is None and cause.__cause__ is None


def _failing_asset(name: str, *, meld: bool) -> dg.AssetsDefinition:
    """An asset whose DuckDB error quotes a value, raised as is or as a Meld error's cause."""

    @dg.asset(name=name)
    def _asset() -> None:
        with failure_at(f"project.yaml: sources.{name}"):
            try:
                duckdb.connect().execute(f"SELECT CAST('{SECRET}' AS INTEGER)")
            except duckdb.Error as exc:
                if meld:
                    raise SourceError(f"source '{name}': cannot read") from exc
                raise

    return _asset


def test_dagster_stores_failures_without_record_values(tmp_path: Path) -> None:
    """Dagster keeps a failed step's description, cause chain and tracebacks in its event
    log; none of them may quote the value the library error held."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    assets = [_failing_asset("library", meld=False), _failing_asset("meld", meld=True)]
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = dg.materialize(assets, instance=instance, raise_on_error=False)
    errors = {
        e.step_key: e.step_failure_data.error
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    }
    assert set(errors) == {"library", "meld"}
    for step, error in errors.items():
        assert error.cls_name == "Failure" and f"project.yaml: sources.{step}" in error.message
    assert "duckdb ConversionException" in errors["library"].message
    assert "cannot read" in errors["meld"].message
    for innermost in (errors["library"].cause, errors["meld"].cause.cause):
        assert innermost.cls_name == "RedactedError" and innermost.stack, "tracebacks stay"
    run_failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    recorded = run_failure_text(run_failure)  # what the daemon's sensor would record
    assert "project.yaml: sources." in recorded and SECRET not in recorded
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert stored and SECRET.encode() not in stored and SECRET.lower().encode() not in stored


def test_failure_texts_for_the_ledger_hold_no_values() -> None:
    assert failure_text(dg.Failure(description="sources.crm: empty")) == "sources.crm: empty"
    assert failure_text(KeyError(SECRET)) == "KeyError"
    stored = SerializableErrorInfo(
        "DagsterExecutionStepExecutionError: error in op\n",
        [],
        "DagsterExecutionStepExecutionError",
        cause=SerializableErrorInfo(
            f"ValueError: {SECRET}", ['  File "x.py", line 1'], "ValueError"
        ),
    )
    text = value_free_error(stored)
    assert "ValueError" in text and SECRET not in text


def test_a_csv_without_its_header_row_is_refused_without_quoting_its_first_record(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "crm.csv"
    landing.write_text(f"C1,Anna,{SECRET},anna.{SECRET.lower()}@example.se\n", encoding="utf-8")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(SourceError) as refused:
        load_raw_source(
            con,
            source_system="crm",
            pattern=landing,
            id_column="id",
            mapped_columns={"fields.last_name": "surname", "fields.email": "mail"},
        )
    message = str(refused.value)
    assert (
        "'id' (config key id_column)" in message and "'mail' (config key fields.email)" in message
    )
    assert "4 columns include none of those expected (is the header row missing?)" in message
    assert SECRET not in message and "Anna" not in message and "C1" not in message


def test_masked_copies_keep_scores_and_mask_values_and_record_ids() -> None:
    pair = {
        "unique_id_l": "pos_loyalty:6107965249778",
        "first_name_r": "anna",
        "last_name_l": SECRET.lower(),
        "email_l": f"anna.{SECRET.lower()}@example.se",
        "phone_r": "+46701234567",
        "gamma_email": 3,
        "tf_first_name_l": 0.01,
        "source_system_l": "pos_loyalty",
    }
    masked = masked_pair(pair)
    text = json.dumps(masked)
    assert SECRET.lower() not in text and "6107965249778" not in text and "701234567" not in text
    assert masked["gamma_email"] == 3 and masked["tf_first_name_l"] == 0.01
    assert masked["source_system_l"] == "pos_loyalty"
    page = "<td>pos_loyalty:6107965249778</td><td>crm_contacts:C0000117</td><td>pos_loyalty</td>"
    shown = mask_record_ids(page, ["pos_loyalty", "crm_contacts"])
    assert (
        "6107965249778" not in shown and "C0000117" not in shown and "<td>pos_loyalty</td>" in shown
    )


def test_hashed_term_frequencies_score_like_the_values_they_hide(tmp_path: Path) -> None:
    clear = tmp_path / "last_name.parquet"
    pd.DataFrame({"last_name": [SECRET.lower(), "berg"], "tf_last_name": [0.2, 0.05]}).to_parquet(
        clear
    )
    hashed = hashed_lookup_copy(clear, "last_name", tmp_path / "hashed" / "last_name.parquet")
    assert SECRET.lower().encode() not in hashed.read_bytes()
    assert read_hashed_lookup(clear, "last_name") is None, "a clear lookup is read as before"
    assert sorted(read_hashed_lookup(hashed, "last_name").values()) == [0.05, 0.2]


# The whole pipeline ---------------------------------------------------------------------


def _headerless_copy(source: Path, target: Path, rows: int) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(lines[1 : rows + 1]) + "\n", encoding="utf-8")


def _wrong_encoding_copy(source: Path, target: Path, rows: int) -> None:
    """The first rows again with new ids, in cp1252 while the source declares UTF-8."""
    lines = source.read_text(encoding="utf-8").splitlines()
    body = [line.replace("WS-", "WX-", 1) for line in lines[1 : rows + 1]]
    text = "\n".join([lines[0], *body, "WX-0000000001,Björn Åström,,,,,"]) + "\n"
    target.write_bytes(text.encode("cp1252", errors="replace"))


class _Collected(logging.Handler):
    """Every log record at DEBUG and above, formatted with its traceback, as caplog would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def _captured_output() -> Iterator[dict[str, str]]:
    """Log records (root logger at DEBUG) and stdout/stderr while the block runs."""
    root, handler = logging.getLogger(), _Collected()
    level = root.level
    out, err = io.StringIO(), io.StringIO()
    captured: dict[str, str] = {}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        captured.update(logs="\n".join(handler.lines), output=out.getvalue() + err.getvalue())


@pytest.fixture(scope="module")
def scanned_run(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo pipeline run once, then a failing delivery, in their own stores, with
    every log record (DEBUG and above) and all output captured."""
    tmp_path = tmp_path_factory.mktemp("personal_data")
    demo = tmp_path / "demo"
    shutil.copytree(small_demo, demo)
    config = demo_sources(demo)
    landing = demo / "landing"
    config["sources"]["crm_contacts"]["path"] = str(landing / "crm_contacts*.csv")
    config["sources"]["webshop_accounts"]["path"] = str(landing / "webshop_accounts*.csv")
    (tmp_path / "project").mkdir()
    project = write_project_file(
        tmp_path / "project",
        config,
        mlflow_uri=f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}",
        experiment="personal-data",
    )
    assets = [*build_assets(project), *build_checks(project)]
    home = tmp_path / "dagster_home"
    home.mkdir()
    with _captured_output() as captured, dg.instance_for_test(temp_dir=str(home)) as instance:
        first = dg.materialize(assets, resources=build_resources(project), instance=instance)
        _headerless_copy(landing / "crm_contacts.csv", landing / "crm_contacts_2.csv", 30)
        _wrong_encoding_copy(
            landing / "webshop_accounts.csv", landing / "webshop_accounts_2.csv", 5
        )
        second = dg.materialize(
            assets, resources=build_resources(project), instance=instance, raise_on_error=False
        )
    return {
        "project": project,
        "config": config,
        "home": home,
        "runs": (first, second),
        "captured": captured,
    }


def _ledger(project) -> list:
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        return ledger_rows(con)


def _mlflow_files(project) -> list[str]:
    return sorted(
        str(p.relative_to(project.config_path.parent))
        for p in (project.config_path.parent / "mlartifacts").rglob("*")
        if p.is_file()
    )


@pytest.mark.slow
def test_no_name_email_or_phone_leaves_the_warehouse(scanned_run: dict) -> None:
    project, home = scanned_run["project"], scanned_run["home"]
    first, second = scanned_run["runs"]
    assert first.success and not second.success
    landing = Path(scanned_run["config"]["sources"]["crm_contacts"]["path"]).parent
    values = personal_values(scanned_run["config"]["sources"], sorted(landing.iterdir()))
    assert len(values.names) > 100 and len(values.emails) > 100 and len(values.phones) > 100
    scanner = Scanner(values)

    # The scanner finds values where they may be: the charts beside the warehouse.
    viewer = next(project.artifacts.rglob("scoring/*/comparison_viewer.html"))
    assert scanner.hits(viewer.read_text(encoding="utf-8")), "the scanner must see values"

    rows = _ledger(project)
    assert [r.status for r in rows] == ["succeeded", "failed"]
    error = rows[1].entry["error"]
    assert "crm_contacts_2.csv" in error and "is the header row missing?" in error

    leaks: dict[str, set[str]] = {}
    captured = scanned_run["captured"]
    assert "DEBUG" in captured["logs"] and "ledger" in captured["logs"]
    for name, text in [
        ("log records", captured["logs"]),
        ("stdout/stderr", captured["output"]),
        ("ledger", json.dumps([r.entry for r in rows])),
    ]:
        if hits := scanner.hits(text):
            leaks[name] = hits
    leaks.update({f"dagster:{k}": v for k, v in scanner.scan_files(home).items()})
    mlflow_store = project.config_path.parent
    leaks.update(
        {f"mlflow:{k}": v for k, v in scanner.scan_files(mlflow_store / "mlartifacts").items()}
    )
    if hits := scanner.hits((mlflow_store / "mlflow.db").read_bytes().decode("utf-8", "replace")):
        leaks["mlflow:mlflow.db"] = hits
    assert not leaks, (
        f"personal data outside the warehouse: { {k: sorted(v)[:5] for k, v in leaks.items()} }"
    )

    files = _mlflow_files(project)
    assert any(f.endswith("dashboards/comparison_viewer.html") for f in files)
    assert any("evaluation/waterfalls/" in f for f in files)
    assert any(f.endswith("report/run_report.html") for f in files)
    assert not any(f.endswith("customers.parquet") for f in files)


@pytest.mark.slow
def test_the_registered_model_scores_with_hashed_term_frequencies_as_with_clear_ones(
    scanned_run: dict,
) -> None:
    project = scanned_run["project"]
    mlflow.set_tracking_uri(project.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{project.mlflow.registered_model}/1")
    clear = {p.stem: p for p in project.artifacts.rglob("term_frequencies/*.parquet")}
    assert {"first_name", "last_name"} <= set(clear)
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        pairs = con.execute(
            "SELECT first_name_l, first_name_r, last_name_l, last_name_r, date_of_birth_l, "
            "date_of_birth_r FROM pairwise_matches ORDER BY match_weight DESC LIMIT 5"
        ).df()
        stored = scoring_model(con).model
    pairs = pairs.astype({"date_of_birth_l": str, "date_of_birth_r": str})
    shipped = model.predict(pairs)
    expected = score_pairs_frame(stored, pairs, clear)
    pd.testing.assert_frame_equal(shipped, expected)
