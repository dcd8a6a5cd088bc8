"""Raw loading: every format, lineage columns, fingerprints and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.readers.delivery import SourceError


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


ROWS = [
    {"id": "1", "name": "Jörg Müller", "mail": "jorg@example.de"},
    {"id": "2", "name": "Łukasz Nowak", "mail": "lukasz@example.pl"},
    {"id": "3", "name": 'Anna "Ann" Berg\nsecond line', "mail": ""},
]


def _write(path: Path, kind: str) -> Path:
    frame = pd.DataFrame(ROWS)
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "semicolon":
        frame.to_csv(path, index=False, sep=";")
    elif kind == "parquet":
        frame.to_parquet(path, index=False)
    elif kind == "jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n")
    return path


@pytest.mark.parametrize(
    ("kind", "suffix", "delimiter"),
    [
        ("csv", ".csv", None),
        ("semicolon", ".csv", ";"),
        ("parquet", ".parquet", None),
        ("jsonl", ".jsonl", None),
    ],
)
def test_each_format_loads_as_text_with_lineage(
    con, tmp_path: Path, kind: str, suffix: str, delimiter: str | None
) -> None:
    path = _write(tmp_path / f"crm{suffix}", kind)
    result = load_raw_source(
        con,
        source_system="crm",
        pattern=path,
        id_column="id",
        mapped_columns={"fields.email": "mail"},
        delimiter=delimiter,
    )
    assert result.rows == 3
    assert result.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    rows = con.execute(
        "SELECT source_system, source_record_id, source_row_number, name, file_fingerprint "
        "FROM raw_crm ORDER BY source_row_number"
    ).fetchall()
    assert [r[1] for r in rows] == ["1", "2", "3"]
    assert [r[2] for r in rows] == [1, 2, 3]
    assert rows[0][0] == "crm" and rows[0][3] == "Jörg Müller"
    assert rows[2][3] == 'Anna "Ann" Berg\nsecond line'
    assert {r[4] for r in rows} == {result.files[0].sha256}
    types = {r[1] for r in con.execute("DESCRIBE SELECT id, name, mail FROM raw_crm").fetchall()}
    assert types == {"VARCHAR"}


def test_glob_loads_every_file_oldest_first(con, tmp_path: Path) -> None:
    for offset, part in ((2, "a"), (1, "b")):
        path = tmp_path / f"crm_{part}.csv"
        path.write_text(f"id,mail\n{part}1,x@example.com\n{part}2,y@example.com\n")
        os.utime(path, (1_700_000_000 + offset, 1_700_000_000 + offset))
    result = load_raw_source(
        con, source_system="crm", pattern=tmp_path / "crm_*.csv", id_column="id", mapped_columns={}
    )
    assert result.rows == 4
    assert [f.path.name for f in result.files] == ["crm_b.csv", "crm_a.csv"]
    assert con.execute(
        "SELECT source_file LIKE '%crm_b.csv', delivery_seq FROM raw_crm ORDER BY raw_row_id"
    ).fetchall() == [(True, 1), (True, 1), (False, 2), (False, 2)]


def test_loading_the_same_file_twice_adds_nothing(con, tmp_path: Path) -> None:
    path = _write(tmp_path / "crm.csv", "csv")
    first = load_raw_source(
        con, source_system="crm", pattern=path, id_column="id", mapped_columns={}
    )
    again = load_raw_source(
        con, source_system="crm", pattern=path, id_column="id", mapped_columns={}
    )
    assert first.rows == again.rows == 3
    assert again.history_rows == 3
    assert not again.new_files and len(again.skipped_files) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "file is empty"), ("id,mail\n", "no data rows")],
    ids=["zero-bytes", "header-only"],
)
def test_empty_files_fail_clearly(con, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(content)
    with pytest.raises(SourceError, match=message) as error:
        load_raw_source(con, source_system="crm", pattern=path, id_column="id", mapped_columns={})
    assert "source 'crm'" in str(error.value) and str(path) in str(error.value)


def test_missing_column_names_source_file_column_and_key(con, tmp_path: Path) -> None:
    path = _write(tmp_path / "crm.csv", "csv")
    with pytest.raises(SourceError) as error:
        load_raw_source(
            con,
            source_system="crm",
            pattern=path,
            id_column="id",
            mapped_columns={"fields.phone": "mobile"},
        )
    message = str(error.value)
    assert "source 'crm'" in message and "'mobile'" in message and "fields.phone" in message


def test_lineage_column_clash_is_refused(con, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("id,source_system\n1,x\n")
    with pytest.raises(SourceError, match="clash"):
        load_raw_source(con, source_system="crm", pattern=path, id_column="id", mapped_columns={})


def test_unsupported_extension(con, tmp_path: Path) -> None:
    path = tmp_path / "crm.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(SourceError, match="unsupported file type"):
        load_raw_source(con, source_system="crm", pattern=path, id_column="id", mapped_columns={})
