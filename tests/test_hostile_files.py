"""Hostile source files: encodings, gzip, workbooks and other binaries under a CSV name,
Parquet under the wrong name or of the wrong types, and rows without an id delivered
again. Each ends in a clear :class:`SourceError` naming the source and file (and column),
or in a read with quarantine. See docs/inputs.md."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.readers import sniff
from linkage.ingest.readers.delivery import SourceError
from linkage.ingest.readers.files import read_file
from linkage.ingest.staging import FieldSpec, stage_source

FIELDS = {
    "first_name": FieldSpec("first"),
    "last_name": FieldSpec("last"),
    "email": FieldSpec("email"),
}
MAPPED = {f"fields.{name}": spec.column for name, spec in FIELDS.items()}


# --- Encodings --------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["windows-1252", "iso8859-15", "cp850", "utf-16", "utf-8"])
def test_the_readers_decode_with_the_declared_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes("id;name\n1;Zoë Œstlund\n2;Bo\n".encode(encoding, errors="replace"))
    delivery = read_file(path, source_system="crm", encoding=encoding)
    expected = "Zoë ?stlund" if encoding == "cp850" else "Zoë Œstlund"  # cp850 has no Œ
    assert delivery.table.column("name").to_pylist() == [expected, "Bo"]
    assert delivery.problem_count == 0


def test_a_utf16_file_with_a_byte_order_mark_is_read_whatever_the_declared_encoding(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes("id\tname\n1\tZoë\n".encode("utf-16"))
    delivery = read_file(path, source_system="crm")
    assert delivery.table.to_pylist() == [{"id": "1", "name": "Zoë"}]


# --- Content sniffing -------------------------------------------------------------------

CSV = b"id,first,last,email\n1,Anna,Berg,anna@example.com\n2,Bo,Ek,bo@example.com\n"


@pytest.mark.parametrize("name", ["crm.csv", "crm.csv.gz", "crm.txt"])
def test_a_gzip_csv_is_read_as_the_csv_it_holds(tmp_path: Path, name: str) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_bytes(CSV)
    packed = tmp_path / name
    packed.write_bytes(gzip.compress(CSV))
    assert (
        read_file(packed, source_system="crm").table == read_file(plain, source_system="crm").table
    )


def test_a_gzip_json_lines_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    path.write_bytes(gzip.compress(b'{"id": 1, "name": "Anna"}\n{"id": 2, "name": "Bo"}\n'))
    assert read_file(path, source_system="tickets").table.column("name").to_pylist() == [
        "Anna",
        "Bo",
    ]


def test_a_gzip_bomb_or_a_truncated_gzip_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(gzip.compress(CSV + b"3,x,y,z\n" * 10_000))
    monkeypatch.setattr(sniff, "MAX_DECOMPRESSED_BYTES", 50_000)
    with pytest.raises(SourceError, match="expands to more than 50000 bytes"):
        read_file(path, source_system="crm")
    path.write_bytes(gzip.compress(CSV)[:30])
    with pytest.raises(SourceError, match="source 'crm', file .*truncated or corrupt"):
        read_file(path, source_system="crm")


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("crm.csv", _xlsx(), "file is a ZIP/XLSX workbook, not CSV: export it as CSV"),
        ("crm.jsonl", _xlsx(), "file is a ZIP/XLSX workbook, not JSON: export it as JSON"),
        ("crm.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "Excel 97-2003"),
        ("crm.csv", b"%PDF-1.7\n" + bytes(100), "a PDF document"),
        ("crm.csv", b"BZh91AY&SY" + bytes(50), "bzip2-compressed"),
        ("crm.csv", b"\x7fELF\x02\x01\x01" + bytes(100), "file holds binary data"),
        ("crm.csv", bytes(range(256)) * 4, "file holds binary data"),
        ("crm.csv", gzip.compress(gzip.compress(CSV)), "gzip-compressed twice"),
        ("crm.parquet", CSV, "file is text (CSV or JSON?), not Parquet"),
        ("crm.parquet", gzip.compress(CSV), "gzip-compressed, not Parquet"),
        ("crm.parquet", _xlsx(), "file is a ZIP/XLSX workbook, not Parquet"),
    ],
    ids=[
        "xlsx-as-csv",
        "xlsx-as-jsonl",
        "xls",
        "pdf",
        "bzip2",
        "executable",
        "control-bytes",
        "gzip-twice",
        "csv-as-parquet",
        "gzip-as-parquet",
        "xlsx-as-parquet",
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_refused_clearly(
    tmp_path: Path, name: str, data: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SourceError) as error:
        read_file(path, source_system="crm")
    assert expected in str(error.value)
    assert f"source 'crm', file '{path}'" in str(error.value)


def test_parquet_named_csv_is_read_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "pos.csv"
    pq.write_table(pa.table({"id": ["1", "2"], "first": ["Anna", "Bo"]}), path)
    delivery = read_file(path, source_system="pos")
    assert delivery.table.to_pylist() == [{"id": "1", "first": "Anna"}, {"id": "2", "first": "Bo"}]
    assert delivery.source_types == {"id": "VARCHAR", "first": "VARCHAR"}


def test_nul_bytes_inside_values_still_quarantine_the_row_only(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(b"id,name\n1,An\x00na\n2,Bo\n")
    assert read_file(path, source_system="crm").problems == ["undecodable_bytes", None]


# --- Parquet column types ---------------------------------------------------------------

PARQUET_COLUMNS = {
    "id": pa.array([1, 2], pa.int64()),
    "first": pa.array(["Anna", "Bo"]),
    "last": pa.array(["Berg", "Ek"]),
    "email": pa.array(["anna@example.com", "bo@example.com"]),
    "phone": pa.array(["0701234567", "0702345678"]),
    "born": pa.array([date(1970, 1, 1)] * 2, pa.date32()),
    "amount": pa.array([1.5, 2.5]),  # not mapped: any type
}


@pytest.mark.parametrize(
    ("column", "array", "expected"),
    [
        ("phone", pa.array([46701234567.0, None]), "is DOUBLE: floating-point numbers"),
        ("phone", pa.array([["0701"], ["0702"]]), "is VARCHAR[]: lists, structs and maps"),
        ("phone", pa.array([{"n": "0701"}, {"n": "0702"}]), "is STRUCT(n VARCHAR)"),
        ("phone", pa.array([b"\x00\x01", b"\x02"]), "is BLOB: binary data"),
        ("id", pa.array([1.0, 2.0]), "column 'id' (config key id_column) is DOUBLE"),
    ],
    ids=["float-phone", "list", "struct", "binary", "float-id"],
)
def test_parquet_columns_of_the_wrong_type_are_refused_with_source_file_column_and_type(
    tmp_path: Path, column: str, array: pa.Array, expected: str
) -> None:
    path = tmp_path / "pos.parquet"
    pq.write_table(pa.table({**PARQUET_COLUMNS, column: array}), path)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(SourceError) as error:
        load_raw_source(
            con,
            source_system="pos",
            pattern=path,
            id_column="id",
            mapped_columns={**MAPPED, "fields.phone": "phone"},
        )
    assert expected in str(error.value)
    assert f"source 'pos', file '{path}'" in str(error.value)
    assert "46701234567" not in str(error.value)


def test_parquet_text_integer_and_date_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "pos.parquet"
    pq.write_table(pa.table(PARQUET_COLUMNS), path)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    result = load_raw_source(
        con,
        source_system="pos",
        pattern=path,
        id_column="id",
        mapped_columns={**MAPPED, "fields.date_of_birth": "born"},
    )
    assert result.rows == 2
    assert con.execute("SELECT id, born, amount FROM raw_pos ORDER BY id").fetchall() == [
        ("1", "1970-01-01", "1.5"),
        ("2", "1970-01-01", "2.5"),
    ]


# --- Quarantine across deliveries -------------------------------------------------------

FIRST = (
    b"id,first,last,email\n"
    b"1,Anna,Berg,anna@example.com\n"
    b",Bo,Ek,bo@example.com\n"  # no id
    b",Cia,Lund,cia@example.com\n"  # no id
    b"4,Dan,Ek,dan@example.com,EXTRA\n"  # malformed
    b"5,Eva,Berg,eva@example.com,EXTRA\n"  # malformed, the same error shape
    b"7,Gus,Holm,gus@example.com\n"
    b"7,Gus,Holm,gus@example.com\n"  # repeated id
)


def _deliver(con: duckdb.DuckDBPyConnection, landing: Path, name: str, data: bytes) -> None:
    path = landing / name
    path.write_bytes(data)
    mtime = len(list(landing.iterdir()))
    os.utime(path, (mtime, mtime))
    load_raw_source(
        con, source_system="crm", pattern=landing / "*.csv", id_column="id", mapped_columns=MAPPED
    )
    stage_source(con, source_system="crm", fields=FIELDS, default_country="SE")


def test_quarantined_rows_of_unchanged_records_are_not_added_again(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _deliver(con, landing, "crm_1.csv", FIRST)
    query = (
        "SELECT reason, source_line, source_file LIKE '%crm_1.csv' FROM quarantine_crm "
        "ORDER BY raw_row_id"
    )
    first = con.execute(query).fetchall()
    assert [reason for reason, _, _ in first] == [
        "missing_id",
        "missing_id",
        "malformed_row",
        "malformed_row",
        "duplicate_id",
    ]
    history = con.execute("SELECT count(*) FROM raw_history_crm").fetchall()[0][0]

    # The second delivery repeats every row a line further down, and changes Anna.
    header, anna, rest = FIRST.split(b"\n", 2)
    second = header + b"\n\n" + rest + b"1,Anna,Berg,anna.berg@example.com\n"
    _deliver(con, landing, "crm_2.csv", second)

    assert con.execute(query).fetchall() == first, "kept once, from the first delivery"
    assert con.execute("SELECT count(*) FROM raw_history_crm").fetchall()[0][0] == history + 1
    counts = con.execute(
        "SELECT new_records, changed_records, unchanged_records FROM source_deliveries "
        "ORDER BY delivery_seq"
    ).fetchall()
    assert counts == [(3, 0, 0), (0, 1, 2)]

    # A new row without an id, and a new malformed row, are still quarantined.
    third = FIRST + b",Ulf,Ek,ulf@example.com\n8,Ulf,Ek,ulf@example.com,EXTRA,MORE\n"
    _deliver(con, landing, "crm_3.csv", third)
    reasons = [row[0] for row in con.execute(query).fetchall()]
    assert reasons.count("missing_id") == 3 and reasons.count("malformed_row") == 3
