"""JSON Lines (or a JSON array of objects) read into a :class:`Delivery`.

Columns are the union of the records' keys in first-seen order; nested values become
JSON text. A line that is not a JSON object is kept as a ``malformed_row``.

Examples:
    >>> delivery = read_json_text('{"id": 1, "name": "Anna"}\\n[1]\\n', source_system="crm",
    ...                           path=Path("crm.jsonl"))
    >>> delivery.table.column("id").to_pylist(), delivery.problems
    (['1', None], [None, 'malformed_row'])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from linkage.ingest.readers.delivery import (
    MAX_DETAIL_CHARS,
    SURROGATES,
    Delivery,
    RowBuilder,
    SourceError,
    json_text,
    may_hold_undecodable,
)

__all__ = ["read_json_text"]

_NUL_OR_SURROGATE_ESCAPES = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_JSON_DECODER = json.JSONDecoder()


def _json_records(text: str) -> Iterator[tuple[int | None, object, str]]:
    """(line, parsed object or an exception, raw line) for JSON Lines or a JSON array."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            yield exc.lineno, exc, text[:MAX_DETAIL_CHARS]
            return
        for item in items:
            yield None, item, ""
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, _json_line(line), line
        except json.JSONDecodeError as exc:
            yield number, exc, line


def _json_line(line: str) -> object:
    """``json.loads(line)``, skipping its overhead for a line that is exactly one JSON value.

    The decoder's scanner is what ``json.loads`` runs after skipping whitespace; any line
    it does not read whole (whitespace around the value, extra data, an error) goes
    through ``json.loads``, so results and errors are the same.
    """
    try:
        value, end = _JSON_DECODER.scan_once(line, 0)
    except (StopIteration, json.JSONDecodeError):
        return json.loads(line)
    return value if end == len(line) else json.loads(line)


def read_json_text(text: str, *, source_system: str, path: Path) -> Delivery:
    """Parse JSON Lines (or a JSON array of objects) into a :class:`Delivery`.

    Columns are the union of keys in first-seen order; nested values become JSON text.
    """
    # Three lists rather than a tuple per record: a million tuples holding dicts would
    # stay tracked by the garbage collector, which would scan them again and again.
    lines: list[int | None] = []
    items: list[object] = []
    raw_lines: list[str] = []
    for line, item, raw_line in _json_records(text):
        lines.append(line)
        items.append(item)
        raw_lines.append(raw_line)
    columns: dict[str, None] = {}
    shapes: set[tuple] = set()  # the keys of most records come in a few orders
    for item in items:
        if isinstance(item, dict):
            shape = tuple(item)
            if shape not in shapes:
                shapes.add(shape)
                columns.update(dict.fromkeys(str(key) for key in shape))
    if not items:
        raise SourceError(f"source '{source_system}', file '{path}': file has no records")
    names = [SURROGATES.sub("\ufffd", name) for name in columns]
    builder = RowBuilder(names)
    # An escape (\u0000, \udc80) can put NUL or a lone surrogate in a value, too.
    careful = may_hold_undecodable(text) or (
        "\\u" in text and _NUL_OR_SURROGATE_ESCAPES.search(text) is not None
    )
    for line, item, raw_line in zip(lines, items, raw_lines, strict=True):
        if not isinstance(item, dict):
            reason = item if isinstance(item, Exception) else "not a JSON object"
            builder.add_malformed(
                line, f"line {line}: {reason}: {SURROGATES.sub(chr(0xFFFD), raw_line)}"
            )
            continue
        row = tuple(map(item.get, columns))
        if careful:
            text_row = [json_text(value) or "" for value in row]
            if any(map(SURROGATES.search, text_row)):
                builder.add_decoded(text_row, line)
                continue
        builder.add(row, line)
    del items, raw_lines  # the parsed records, no longer needed while the columns are built
    return builder.build()
