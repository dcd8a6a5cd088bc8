"""The values that identify an erased person, to find them in files.

Collected from the erased rows before they are deleted: every text value of the raw
rows (every version) and of the standardised records, the date of birth as text, and
the record ids. Values that records not erased hold too (a common first name, a
city, a shared street) are dropped with :func:`drop_shared_values`: they do not single
the person out, and a file holding them is about others too. Very short values and
short numbers are dropped as well, since they would match unrelated text. The values
live in memory only.

Examples:
    ```py
    values = erased_values(con)          # after plan.stage_target(...)
    values = drop_shared_values(con, values)
    matcher = value_matcher(values)
    ```
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable

import duckdb
import pyarrow as pa

from linkage.ingest.raw_tables import LINEAGE_COLUMNS
from linkage.privacy.plan import IDS, RAW_KEYS, base_tables
from linkage.tables import CUSTOMER_RECORDS, RAW_HISTORY_PREFIX, RAW_PREFIX, STAGED_PREFIX
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

MIN_VALUE_CHARS = 4
MIN_NUMBER_DIGITS = 7
_SKIPPED_COLUMNS = frozenset(LINEAGE_COLUMNS) - {"source_record_id"}
_SKIPPED_SUFFIXES = ("_phonetic", "_valid")
_SKIPPED_RECORD_COLUMNS = frozenset({"country"})
_CANDIDATES = "__meld_erase_values"


def _record_tables(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Raw, raw history, staged and customer_records tables with their columns."""
    prefixes = (RAW_PREFIX, RAW_HISTORY_PREFIX, STAGED_PREFIX)
    return {
        table: columns
        for table, columns in base_tables(con).items()
        if "." not in table
        and (table == CUSTOMER_RECORDS or table.startswith(prefixes))
        and "source_record_id" in columns
    }


def _value_columns(columns: dict[str, str]) -> list[str]:
    return [
        c
        for c, t in columns.items()
        if t in ("VARCHAR", "DATE")
        and c not in _SKIPPED_COLUMNS
        and c not in _SKIPPED_RECORD_COLUMNS
        and not c.endswith(_SKIPPED_SUFFIXES)
    ]


def _erased_condition(columns: dict[str, str]) -> str:
    condition = f"(source_system || ':' || source_record_id) IN (SELECT v FROM temp.main.{IDS})"
    if "raw_row_id" in columns:
        condition += (
            " OR (source_system || ':' || raw_row_id::VARCHAR) "
            f"IN (SELECT v FROM temp.main.{RAW_KEYS})"
        )
    return condition


def erased_values(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every text value of the rows about to be erased (read through the temporary
    tables of :func:`linkage.privacy.plan.stage_target`), and their ids."""
    values: set[str] = set()
    for table, columns in _record_tables(con).items():
        selected = _value_columns(columns)
        if not selected:
            continue
        casts = ", ".join(f"{quote(c)}::VARCHAR" for c in selected)
        rows = con.execute(
            f"SELECT {casts} FROM {quote(table)} WHERE {_erased_condition(columns)}"
        ).fetchall()
        values |= {str(v).strip() for row in rows for v in row if v is not None}
    ids = con.execute(f"SELECT v FROM temp.main.{IDS}").fetchall()
    values |= {row[0] for row in ids}
    return {v for v in values if _distinctive(v)}


def _distinctive(value: str) -> bool:
    """Long enough to mean something: four characters, and seven digits for a number.

    Examples:
        >>> [_distinctive(v) for v in ("SE", "1997", "21250", "0701234567", "Anna")]
        [False, False, False, True, True]
    """
    text = value.strip()
    if len(text) < MIN_VALUE_CHARS:
        return False
    digits = re.sub(r"\D", "", text)
    return not (digits == re.sub(r"[\s+()./-]", "", text) and len(digits) < MIN_NUMBER_DIGITS)


def drop_shared_values(con: duckdb.DuckDBPyConnection, values: Iterable[str]) -> set[str]:
    """``values`` without those a record that is not erased holds too (compared
    lower-case); the erased rows are those of :func:`linkage.privacy.plan.stage_target`."""
    by_lower = {v.lower(): v for v in values}
    if not by_lower:
        return set()
    frame = pa.table({"v": pa.array(sorted(by_lower), pa.string())})
    con.register(_CANDIDATES, frame)
    held: set[str] = set()
    try:
        for table, columns in _record_tables(con).items():
            selected = _value_columns(columns)
            if not selected:
                continue
            casts = ", ".join(f"lower({quote(c)}::VARCHAR) AS {quote(c)}" for c in selected)
            names = ", ".join(quote(c) for c in selected)
            rows = con.execute(
                f"SELECT DISTINCT value FROM (UNPIVOT (SELECT {casts} FROM {quote(table)} "
                f"WHERE NOT ({_erased_condition(columns)})) "
                f"ON {names} INTO NAME name VALUE value) "
                f"WHERE value IN (SELECT v FROM {_CANDIDATES})"
            ).fetchall()
            held |= {row[0] for row in rows}
    finally:
        con.unregister(_CANDIDATES)
    return {original for lower, original in by_lower.items() if lower not in held}


def _spellings(value: str) -> set[str]:
    """The lower-case ways a value can be written in a file: as is, HTML-escaped and
    JSON-escaped (``\\u00e5``, ``\\/``)."""
    found: set[str] = set()
    for base in {value, value.lower()}:
        escaped_json = json.dumps(base)[1:-1]
        found |= {
            base,
            html.escape(base),
            html.escape(base).replace("&#x27;", "&#39;"),
            escaped_json,
            escaped_json.replace("/", "\\/"),
        }
    return {form.lower() for form in found if form}


def _boundary(text: str, index: int) -> bool:
    return index < 0 or index >= len(text) or not (text[index].isalnum() or text[index] == "_")


class ValueMatcher:
    """Finds any of a person's values in text, as a whole word (``berg`` is not found
    in ``bergström``), in any case, also HTML- or JSON-escaped.

    Examples:
        >>> matcher = ValueMatcher(["Berg", "Åsa", "anna.berg@example.com"])
        >>> matcher.search("mail: ANNA.BERG@example.com"), matcher.search("Bergström")
        (True, False)
        >>> matcher.search('{"name": "\\u00c5sa"}'), matcher.search("O&#x27;Brien")
        (True, False)
    """

    def __init__(self, values: Iterable[str]) -> None:
        forms = {form for value in values for form in _spellings(value)}
        self.forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def search(self, text: str) -> bool:
        """Whether ``text`` holds one of the values."""
        lowered = text.lower()
        for form in self.forms:
            start = lowered.find(form)
            while start >= 0:
                if _boundary(lowered, start - 1) and _boundary(lowered, start + len(form)):
                    return True
                start = lowered.find(form, start + 1)
        return False


def value_matcher(values: Iterable[str]) -> ValueMatcher | None:
    """A :class:`ValueMatcher` for ``values``; None when there are none."""
    matcher = ValueMatcher(values)
    return matcher if matcher else None
