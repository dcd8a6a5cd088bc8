"""Reading delivered files: Arrow's fast path for plain CSV reads what ``csv`` reads.

The reference is :func:`linkage.readers.read_csv_text` (Python's ``csv`` module), which
handles every file. :func:`linkage.readers.read_plain_csv` must either give exactly its
table, row numbers, lines and problems, or decline (None) so the file is read with
``csv``; and raw tables loaded through either path must be identical.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from linkage.ingest.deliveries import load_raw_source
from linkage.ingest.readers import files as readers
from linkage.ingest.readers.csv_text import read_csv_text
from linkage.ingest.readers.delivery import Delivery, SourceError
from linkage.ingest.readers.files import read_file
from linkage.ingest.readers.json_text import read_json_text
from linkage.ingest.readers.plain_csv import read_plain_csv

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
CODECS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "windows-1252": "cp1252"}

PLAIN = {
    "quoted_delimiters_and_quotes": (
        'id,name,address\n1,"Berg, Anna","Storgatan 5, 114 28"\n2,"Ek ""Bo""",Lund\n'
    ),
    "empty_and_quoted_empty_values": 'id,name,email\n1,,""\n2,"",\n3,Cia,cia@example.com\n',
    "spaces_kept": "id,name\n1,  Anna  \n2, Bo\n",
    "quote_inside_unquoted_field": 'id,name\n1,Anna "Ann" Berg\n2,5" screen\n',
    "text_after_closing_quote": 'id,name\n1,"Anna"Berg\n',
    "unicode": "id,name\n1,Jörg Müller\n2,Łukasz\n3,日本\n",
    "crlf_line_ends": "id,name\r\n1,Anna\r\n2,Bo\r\n",
    "no_final_line_end": "id,name\n1,Anna\n2,Bo",
    "semicolons_sniffed": 'id;name\n1;"Ek; Bo"\n2;Anna\n',
    "tabs_sniffed": "id\tname\n1\tAnna\n2\tBo\n",
    "single_column": 'id\n1\n""\n3\n',
    "header_names_trimmed_and_filled": " id ,,name\n1,x,Anna\n",
}
"""Plain UTF-8 files the fast path reads."""

NOT_PLAIN = {
    "byte_order_mark": ("\ufeffid,name\n1,Anna\n".encode(), "utf-8"),
    "windows_1252": ("id,name\n1,Chloé\n2,Œuvre\n".encode("cp1252"), "windows-1252"),
    "latin_1": ("id,name\n1,Chloé\n".encode("latin-1"), "latin-1"),
    "undecodable_bytes": (b"id,name\n1,Chlo\xe9\n2,Bo\n", "utf-8"),
    "nul_byte": (b"id,name\n1,An\x00na\n2,Bo\n", "utf-8"),
    "too_many_fields": (b"id,name\n1,Anna,EXTRA\n2,Bo\n", "utf-8"),
    "too_few_fields": (b"id,name\n1\n2,Bo\n", "utf-8"),
    "line_break_in_quotes": (b'id,name\n1,"Anna\nMaria"\n2,Bo\n', "utf-8"),
    "blank_line": (b"id,name\n1,Anna\n\n2,Bo\n", "utf-8"),
    "space_before_quote": (b'id,name,city\n1, "Berg, Anna",Lund\n', "utf-8"),
    "repeated_header_name": (b"id,id\n1,2\n", "utf-8"),
    "line_break_in_header": (b'id,"first\nname"\n1,Anna\n', "utf-8"),
}
"""Files the fast path declines, each for its own reason."""


def _csv_module(path: Path, encoding: str = "utf-8", delimiter: str | None = None) -> Delivery:
    """The reference: the file read with Python's ``csv`` module only."""
    text = path.read_bytes().decode(CODECS[encoding], errors="surrogateescape")
    if path.suffix == ".tsv" and delimiter is None:
        delimiter = "\t"
    return read_csv_text(text, source_system="crm", path=path, delimiter=delimiter)


def _as_lists(delivery: Delivery) -> dict[str, object]:
    return {
        "schema": [(f.name, str(f.type), f.nullable) for f in delivery.table.schema],
        "metadata": delivery.table.schema.metadata,
        "rows": delivery.table.to_pylist(),
        "row_numbers": delivery.row_numbers,
        "lines": delivery.lines,
        "problems": delivery.problems,
        "problem_fields": delivery.problem_fields,
        "problem_details": delivery.problem_details,
    }


def _outcome(read: Callable[[], Delivery]) -> object:
    try:
        return _as_lists(read())
    except SourceError as exc:
        return f"SourceError: {exc}"


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_fast_path_reads_a_plain_file_as_the_csv_module_does(name: str, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(PLAIN[name].encode("utf-8"))

    fast = read_plain_csv(path.read_bytes(), source_system="crm", path=path, delimiter=None)

    assert fast is not None
    assert _as_lists(fast) == _as_lists(_csv_module(path))
    assert _as_lists(read_file(path, source_system="crm")) == _as_lists(fast)


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_fast_path_declines_what_it_would_read_differently(name: str, tmp_path: Path) -> None:
    data, encoding = NOT_PLAIN[name]
    path = tmp_path / "crm.csv"
    path.write_bytes(data)

    assert read_plain_csv(data, source_system="crm", path=path, delimiter=None) is None
    assert _outcome(lambda: read_file(path, source_system="crm", encoding=encoding)) == _outcome(
        lambda: _csv_module(path, encoding)
    )


def test_fast_path_declines_a_delimiter_it_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(b"id:name\n1:Anna\n")

    assert read_plain_csv(path.read_bytes(), source_system="crm", path=path, delimiter=":") is None
    delivery = read_file(path, source_system="crm", delimiter=":")
    assert _as_lists(delivery) == _as_lists(_csv_module(path, delimiter=":"))
    assert delivery.table.to_pylist() == [{"id": "1", "name": "Anna"}]


def test_malformed_and_undecodable_rows_are_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(b"id,name\n1,Anna\n2,Bo,EXTRA\n3,Chlo\xe9\n4,Dan\n")

    delivery = read_file(path, source_system="crm")

    assert delivery.problems == [None, "malformed_row", "undecodable_bytes", None]
    assert delivery.lines == [2, 3, 4, 5]
    assert delivery.problem_fields == [None, None, "name", None]
    assert delivery.table.column("name").to_pylist() == ["Anna", None, "Chlo\ufffd", "Dan"]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "windows-1252"])
@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.csv")), ids=lambda p: p.name)
def test_every_corpus_file_reads_as_the_csv_module_reads_it(path: Path, encoding: str) -> None:
    assert _outcome(lambda: read_file(path, source_system="crm", encoding=encoding)) == _outcome(
        lambda: _csv_module(path, encoding)
    )


def _random_csv(rng: random.Random) -> bytes:
    """A small CSV, mostly well formed, with quotes, spaces and line ends in odd places."""
    delimiter = rng.choice(",;\t|")
    line_end = rng.choice(["\n", "\n", "\r\n", "\r"])
    alphabet = ["a", "é", " ", '"', "'", "\\", "\t", delimiter, "\n", "ß", "\u2028", "#"]
    width = rng.randint(1, 4)

    def field() -> str:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        kind = rng.random()
        if kind < 0.3:
            return '"' + text.replace('"', '""') + '"'
        if kind < 0.7:
            return "".join(c for c in text if c not in '"\n' + delimiter)
        return text

    lines = [delimiter.join(f"c{i}" for i in range(width))]
    for _ in range(rng.randint(1, 5)):
        count = width if rng.random() < 0.9 else rng.randint(1, width + 1)
        lines.append(delimiter.join(field() for _ in range(count)))
    return (line_end.join(lines) + rng.choice([line_end, ""])).encode("utf-8")


def test_random_files_read_the_same_with_or_without_the_fast_path(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    path = tmp_path / "crm.csv"
    fast = 0
    for _ in range(400):
        data = _random_csv(rng)
        path.write_bytes(data)
        fast += read_plain_csv(data, source_system="crm", path=path, delimiter=None) is not None
        assert _as_lists(read_file(path, source_system="crm")) == _as_lists(_csv_module(path)), data
    assert fast > 100  # the fast path was exercised, not only the fallback


def _raw_table(tmp_path: Path, landing: Path, name: str, encoding: str) -> list[tuple]:
    con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    try:
        load_raw_source(
            con,
            source_system="crm",
            pattern=landing,
            id_column="id",
            mapped_columns={"fields.name": "name"},
            encoding=encoding,
        )
        return con.execute(
            "SELECT * EXCLUDE (loaded_at) FROM raw_crm ORDER BY raw_row_id"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (PLAIN["quoted_delimiters_and_quotes"].encode(), "utf-8"),
        (PLAIN["empty_and_quoted_empty_values"].encode(), "utf-8"),
        NOT_PLAIN["byte_order_mark"],
        NOT_PLAIN["windows_1252"],
        NOT_PLAIN["too_many_fields"],
        NOT_PLAIN["undecodable_bytes"],
    ],
    ids=["plain", "empty_values", "bom", "windows_1252", "malformed_row", "undecodable"],
)
def test_raw_tables_are_identical_with_or_without_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, encoding: str
) -> None:
    landing = tmp_path / "crm.csv"
    landing.write_bytes(data)
    with_fast_path = _raw_table(tmp_path, landing, "fast", encoding)
    monkeypatch.setattr(readers, "read_plain_csv", lambda *args, **kwargs: None)
    csv_module_only = _raw_table(tmp_path, landing, "csv", encoding)

    assert with_fast_path == csv_module_only
    assert len(with_fast_path) >= 1


JSON_LINES = "\n".join(
    [
        '{"id": "1", "name": "Anna", "tags": ["a", "b"], "age": 41, "vip": true}',
        "",
        '{"id": "2", "name": "", "extra": {"z": 1, "a": null}, "age": 2.50}',
        "not json",
        '{"name": null, "id": "3"}',
        "[1, 2]",
        '{"id": "4", "name": "Nul\\u0000"}',
    ]
)


def test_json_lines_read_as_text_with_lines_and_problems(tmp_path: Path) -> None:
    delivery = read_json_text(JSON_LINES, source_system="tickets", path=tmp_path / "t.jsonl")

    assert delivery.table.column_names == ["id", "name", "tags", "age", "vip", "extra"]
    assert delivery.table.to_pylist() == [
        {"id": "1", "name": "Anna", "tags": '["a", "b"]', "age": "41", "vip": "true",
         "extra": None},
        {"id": "2", "name": None, "tags": None, "age": "2.5", "vip": None,
         "extra": '{"a": null, "z": 1}'},
        dict.fromkeys(["id", "name", "tags", "age", "vip", "extra"]),
        {"id": "3", "name": None, "tags": None, "age": None, "vip": None, "extra": None},
        dict.fromkeys(["id", "name", "tags", "age", "vip", "extra"]),
        {"id": "4", "name": "Nul\ufffd", "tags": None, "age": None, "vip": None,
         "extra": None},
    ]  # fmt: skip
    assert delivery.row_numbers == [1, 2, 3, 4, 5, 6]
    assert delivery.lines == [1, 3, 4, 5, 6, 7]
    assert delivery.problems == [
        None,
        None,
        "malformed_row",
        None,
        "malformed_row",
        "undecodable_bytes",
    ]
    assert delivery.problem_fields[5] == "name"
    assert delivery.problem_details[2].startswith("line 4: Expecting value")
    assert delivery.problem_details[4] == "line 6: not a JSON object: [1, 2]"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (' {"id": "1"}', None),
        ('{"id": "1"}\t', None),
        ('{"id": "1", "id": "2"}', None),
        ('{"id": "1"} x', "Extra data"),
        ('{"id": "1"', "Expecting"),
        ('{"id": "1",}', "Expecting property name"),
        ("NaN", "not a JSON object"),
        ('"text"', "not a JSON object"),
    ],
)
def test_json_lines_parse_exactly_as_json_loads(
    line: str, problem: str | None, tmp_path: Path
) -> None:
    delivery = read_json_text(line, source_system="tickets", path=tmp_path / "t.jsonl")

    if problem is None:
        assert delivery.problems == [None]
        assert delivery.table.to_pylist() == [json.loads(line)]
    else:
        assert delivery.problems == ["malformed_row"]
        assert problem in (delivery.problem_details[0] or "")
