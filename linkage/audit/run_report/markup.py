"""The run report's HTML building blocks: escaped cells, tables, notes and inline charts.

Every value is escaped unless it is already :class:`Html`; charts are PNGs in ``data:``
URIs, so the page needs no network.

Examples:
    >>> cell(1200), cell("<b>"), cell(mono("r1"))
    ('1,200', '&lt;b&gt;', '<span class="mono">r1</span>')
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from linkage.audit.run_report.formatting import format_value, is_number

logger = logging.getLogger(__name__)


class Html(str):
    """Markup that is already safe; :func:`cell` does not escape it again."""


def cell(value: Any) -> str:
    """A value as cell text: :class:`Html` as is, anything else formatted and escaped."""
    if isinstance(value, Html):
        return value
    return html.escape(format_value(value))


def html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    table_id: str,
    row_classes: Sequence[str] | None = None,
) -> Html:
    """An HTML table; numbers are right-aligned, every value is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{cell(v)}</td>' if is_number(v) else f"<td>{cell(v)}</td>"
            for v in row
        )
        css = row_classes[i] if row_classes is not None else ""
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return Html(
        f'<table id="{html.escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def note(text: str) -> Html:
    """A muted, italic remark."""
    return Html(f'<p class="note">{html.escape(text)}</p>')


def missing_table(table: str) -> Html:
    """The note that a warehouse table is absent and its part of the report left out."""
    return note(f"Table {table} is not in the warehouse: this part is left out.")


def mono(value: Any) -> Html:
    """A value in a monospace font (ids, hashes, file names)."""
    return Html(f'<span class="mono">{cell(value)}</span>')


def signed(text: str) -> Html:
    """A change, green when it starts with ``+`` and red when it starts with ``-``."""
    css = "pos" if text.startswith("+") else "neg" if text.startswith("-") else ""
    return Html(f'<span class="{css}">{html.escape(text)}</span>' if css else html.escape(text))


def png_image(png: bytes, alt: str) -> Html:
    """A chart embedded as a ``data:`` URI."""
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
