"""Property-based tests: random configs and random bytes at the config loader, the
readers and staging. Only a :class:`~linkage.errors.MeldError` with a message of bounded
length (quoting no long value whole), or a read in which every row is kept, staged or
quarantined, is accepted; any other exception fails. The examples of each hostile input
are in ``test_hostile_config.py`` and ``test_hostile_files.py``; see docs/inputs.md."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.config import ConfigError, load_project
from linkage.errors import MeldError
from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.readers.files import read_file
from linkage.ingest.staging import FieldSpec, stage_source
from tests.projects import minimal_config, write_config

MAX_MESSAGE_CHARS = 5000
"""No error about a config or a file may be longer than this."""
PROPERTY = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STAGING = settings(PROPERTY, max_examples=12)
"""Fewer examples where each one stages a source (a fraction of a second)."""
FIELDS = {
    "first_name": FieldSpec("first"),
    "last_name": FieldSpec("last"),
    "email": FieldSpec("email"),
}
MAPPED = {f"fields.{name}": spec.column for name, spec in FIELDS.items()}


# --- Property-based ---------------------------------------------------------------------

TOP_KEYS = [
    "warehouse",
    "artifacts",
    "mlflow",
    "sources",
    "truth",
    "model",
    "dob_range",
    "quality",
    "labels",
    "evaluation",
    "clustering",
    "promotion",
    "mastering",
    "households",
    "overrides",
    "relationships",
    "national_id_key_env",
    "roles",
    "data_roots",
    "allow_paths_outside_project",
]
KNOWN_PATHS = [
    ("warehouse",),
    ("artifacts",),
    ("mlflow",),
    ("mlflow", "tracking_uri"),
    ("sources",),
    ("sources", "crm"),
    ("sources", "crm", "path"),
    ("sources", "crm", "encoding"),
    ("sources", "crm", "delimiter"),
    ("sources", "crm", "id_column"),
    ("sources", "crm", "fields"),
    ("sources", "crm", "fields", "email"),
    ("sources", "crm", "fields", "date_of_birth"),
    ("sources", "crm", "custom_fields"),
    ("sources", "crm", "required_fields"),
    ("sources", "crm", "quality"),
    ("sources", "crm", "database"),
    ("sources", "crm", "default_country"),
    ("model",),
    ("model", "comparisons"),
    ("model", "comparisons", "email"),
    ("model", "comparisons", "email", "args"),
    ("model", "match_threshold"),
    ("model", "blocking"),
    ("model", "fixed"),
    ("model", "prediction_rules"),
    ("dob_range",),
    ("quality", "fields"),
    ("clustering", "method"),
    ("clustering", "link_vetoes"),
    ("mastering", "rules"),
    ("mastering", "source_priority"),
    ("households", "max_customers"),
    ("truth",),
    ("truth", "path"),
    ("labels",),
    ("overrides", "path"),
    ("relationships", "orders"),
    ("national_id_key_env",),
    ("roles",),
    ("roles", "roles"),
    ("data_roots",),
    ("allow_paths_outside_project",),
]
LONG_TEXT = st.builds(
    lambda piece, times: (piece + "'é\"x") * times, st.text(max_size=6), st.integers(25, 80)
)
"""Long text, cheaply: drawing thousands of characters one by one would be slow."""
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.dates(),
    st.text(max_size=20),
    st.sampled_from(["crm.csv", "*.csv", "../x.csv", "~nobody/x", "utf-16", "default", "id"]),
    LONG_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.sampled_from(TOP_KEYS), children, max_size=4)
    ),
    max_leaves=8,
)


def _long_values(value: object) -> list[str]:
    """Every string in ``value`` long enough that an error must not quote it whole."""
    if isinstance(value, str):
        return [value] if len(value) > 120 else []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _long_values(k) + _long_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in _long_values(v)]
    return []


def _load_or_refuse(path: Path, values: object) -> None:
    try:
        load_project(path)
    except ConfigError as exc:
        message = str(exc)
        assert len(message) <= MAX_MESSAGE_CHARS, message[:500]
        for value in _long_values(values):
            assert value.strip() not in message, "a long value was quoted whole"


@PROPERTY
@given(config=st.dictionaries(st.sampled_from(TOP_KEYS) | st.text(max_size=10), VALUES))
def test_random_config_mappings_load_or_fail_with_a_short_config_error(
    tmp_path: Path, config: dict
) -> None:
    _load_or_refuse(write_config(tmp_path, config), config)


@PROPERTY
@given(path=st.sampled_from(KNOWN_PATHS), value=VALUES)
def test_random_values_in_known_keys_load_or_fail_with_a_short_config_error(
    tmp_path: Path, path: tuple[str, ...], value: object
) -> None:
    config = minimal_config(tmp_path, truth={"path": "crm.csv"})
    target = config
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[path[-1]] = value
    _load_or_refuse(write_config(tmp_path, config), value)


@PROPERTY
@given(data=st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode))
def test_random_bytes_as_a_config_file_fail_with_a_short_config_error(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "meld.yaml"
    path.write_bytes(data)
    try:
        load_project(path)
    except ConfigError as exc:
        assert len(str(exc)) <= MAX_MESSAGE_CHARS


PREFIXES = [
    b"",
    b"",
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"PAR1",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"id,name\n",
    b"[",
    b'{"id": 1}\n',
]
SUFFIXES = [".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".csv.gz"]
ENCODINGS = ["utf-8", "latin-1", "windows-1252", "utf-16", "iso8859-15", "cp850"]


def _check_delivery_or_error(path: Path, read) -> None:
    try:
        delivery = read()
    except MeldError as exc:
        assert len(str(exc)) <= MAX_MESSAGE_CHARS, str(exc)[:500]
        return
    rows = len(delivery.row_numbers)
    assert all(pa.types.is_string(field.type) for field in delivery.table.schema)
    assert len(delivery.problems) == rows
    # A table without columns (JSON in which no line is an object) has no Arrow rows;
    # loading it stops at "no data rows".
    assert delivery.table.num_rows == (rows if delivery.table.num_columns else 0)
    for detail in delivery.problem_details:
        assert detail is None or len(detail) <= 2000


@PROPERTY
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.binary(max_size=2000),
    suffix=st.sampled_from(SUFFIXES),
    encoding=st.sampled_from(ENCODINGS),
    compress=st.booleans(),
)
def test_random_bytes_are_read_or_refused_with_a_short_source_error(
    tmp_path: Path, prefix: bytes, body: bytes, suffix: str, encoding: str, compress: bool
) -> None:
    data = prefix + body
    path = tmp_path / f"crm{suffix}"
    path.write_bytes(gzip.compress(data) if compress else data)
    _check_delivery_or_error(path, lambda: read_file(path, source_system="crm", encoding=encoding))


CELL_TEXT = st.text(
    alphabet=st.sampled_from(list("ab é\"',;\t|\n\r\\ßŒ\x00€") + ["\u2028", "日"]), max_size=8
)


@st.composite
def near_valid_csv(draw: st.DrawFn) -> tuple[bytes, str, str]:
    """A CSV with a good header and rows of random cells: quotes, delimiters, line
    breaks, NUL, rows of the wrong width, a truncated last line, in some encoding."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(ENCODINGS))
    header = delimiter.join(["id", "first", "last", "email"])
    lines = [header]
    for _ in range(draw(st.integers(1, 8))):
        width = draw(st.sampled_from([4, 4, 4, 3, 5]))
        cells = [draw(CELL_TEXT) for _ in range(width)]
        if draw(st.booleans()):
            cells = [f'"{cell.replace(chr(34), chr(34) * 2)}"' for cell in cells]
        lines.append(delimiter.join(cells))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(len(header), len(data)))]
    return data, encoding, delimiter


@PROPERTY
@given(case=near_valid_csv())
def test_near_valid_csv_is_read_with_its_problem_rows_kept(
    tmp_path: Path, case: tuple[bytes, str, str]
) -> None:
    data, encoding, delimiter = case
    path = tmp_path / "crm.csv"
    path.write_bytes(data)
    _check_delivery_or_error(path, lambda: read_file(path, source_system="crm", encoding=encoding))


@pytest.fixture(scope="module")
def shared_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory warehouse for every example: staging's lookups are built once."""
    con = duckdb.connect()
    yield con
    con.close()


_SOURCE_NUMBERS = itertools.count()


@STAGING
@given(case=near_valid_csv())
def test_near_valid_csv_is_staged_or_quarantined_row_by_row(
    tmp_path: Path, shared_warehouse: duckdb.DuckDBPyConnection, case: tuple[bytes, str, str]
) -> None:
    data, encoding, delimiter = case
    path = tmp_path / "crm.csv"
    path.write_bytes(data)
    con, source = shared_warehouse, f"crm{next(_SOURCE_NUMBERS)}"
    try:
        load_raw_source(
            con,
            source_system=source,
            pattern=path,
            id_column="id",
            mapped_columns=MAPPED,
            delimiter=delimiter,
            encoding=encoding,
        )
        stage_source(con, source_system=source, fields=FIELDS, default_country="SE")
    except MeldError as exc:
        assert len(str(exc)) <= MAX_MESSAGE_CHARS
        return
    raw_rows, accounted = con.execute(
        f"SELECT (SELECT count(*) FROM raw_{source}), "
        f"(SELECT count(*) FROM staged_{source}) + (SELECT count(*) FROM quarantine_{source})"
    ).fetchall()[0]
    assert raw_rows == accounted, "every raw row is staged or quarantined"
