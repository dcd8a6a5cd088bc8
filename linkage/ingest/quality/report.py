"""The data-quality report: one self-contained HTML page a data steward can open offline.

Per source it shows completeness and validity of every mapped field as bar charts
(PNG, embedded as base64), a table with distinct and masked top values, the row
count against the previous staging run, and the quality rules that failed. The
page has inline CSS and no links to anything outside it.

Examples:
    ```py
    profile = profile_sources(con, sources, top_values=10)
    write_quality_report(profile, Path("data_quality_report.html"), title="Meld data quality")
    ```
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

from linkage.ingest.quality.rules import RuleOutcome
from linkage.ingest.quality.staging_runs import RowCountChange

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)


_COMPLETE_COLOUR = "#264653"
_VALID_COLOUR = "#2a9d8f"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1d; max-width: 72rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fde8e4; } tr.blocking td { background: #f8c9bf; }
.failed-rule { color: #9b2c14; font-weight: 600; } .note { color: #555; font-size: 0.9rem; }
.top { font-family: ui-monospace, monospace; font-size: 0.8rem; }
"""


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # No "Software" text chunk: the page must not carry any outside reference.
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _rate(value: Any) -> float:
    return 0.0 if value is None or pd.isna(value) else float(value)


def quality_chart_png(profile: pd.DataFrame, title: str = "Data quality by field") -> bytes:
    """Grouped horizontal bars: completeness and validity of every field in ``profile``.

    With more than one source in ``profile`` the bars are labelled ``source.field``.
    A field with no values present shows no validity bar.

    Examples:
        ```py
        png = quality_chart_png(profile)
        Path("quality.png").write_bytes(png)
        ```
    """
    several = profile["source_system"].nunique() > 1
    labels = [
        f"{row.source_system}.{row.field}" if several else str(row.field)
        for row in profile.itertuples()
    ]
    positions = range(len(labels))
    figure, axis = plt.subplots(figsize=(7, 0.42 * len(labels) + 1.2))
    height = 0.4
    axis.barh(
        [p - height / 2 for p in positions],
        [_rate(v) for v in profile["completeness"]],
        height=height,
        color=_COMPLETE_COLOUR,
        label="completeness",
    )
    axis.barh(
        [p + height / 2 for p in positions],
        [_rate(v) for v in profile["validity"]],
        height=height,
        color=_VALID_COLOUR,
        label="validity",
    )
    axis.set_yticks(list(positions), labels, fontsize=8)
    axis.set_ylim(len(labels) - 0.5, -0.5)  # first field on top, no empty margins
    axis.set_xlim(0, 1)
    axis.set_xlabel("share of rows (completeness) / of present values (validity)")
    axis.set_title(title)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _png(figure)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _percent(value: Any) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.1%}"


def _outcome_text(outcome: RuleOutcome) -> str:
    sign = "≤" if outcome.rule == "max_null_rate" else "≥"
    kind = "blocking" if outcome.blocking else "warning"
    return (
        f"{outcome.rule} {sign} {outcome.threshold:.1%}: observed "
        f"{_percent(outcome.observed)} ({kind})"
    )


def _field_rows(source: pd.DataFrame, outcomes: Sequence[RuleOutcome]) -> str:
    rows = []
    for row in source.itertuples():
        mine = [o for o in outcomes if o.field == row.field]
        failed = [o for o in mine if not o.passed]
        css = "blocking" if any(o.blocking for o in failed) else "failed" if failed else ""
        rules = "<br>".join(
            f'<span class="failed-rule">failed: {html.escape(_outcome_text(o))}</span>'
            if not o.passed
            else html.escape(_outcome_text(o))
            for o in mine
        )
        rows.append(
            f'<tr class="{css}"><td>{html.escape(str(row.field))}</td>'
            f"<td>{html.escape(str(row.source_column))}</td>"
            f'<td class="num">{int(row.rows):,}</td>'
            f'<td class="num">{_percent(row.completeness)}</td>'
            f'<td class="num">{_percent(row.validity)}</td>'
            f'<td class="num">{int(row.distinct_values):,}</td>'
            f'<td class="top">{html.escape(str(row.top_values))}</td>'
            f"<td>{rules or '—'}</td></tr>"
        )
    return "\n".join(rows)


def _row_count_text(change: RowCountChange | None) -> str:
    if change is None or change.current is None:
        return "No staging run recorded yet."
    if change.previous is None:
        return f"Staged rows: {change.current:,} (first recorded run)."
    drop = change.drop
    trend = "" if drop is None else f", {'down' if drop > 0 else 'up'} {abs(drop):.1%}"
    return f"Staged rows: {change.current:,}; previous run: {change.previous:,}{trend}."


def _source_section(
    name: str,
    source: pd.DataFrame,
    change: RowCountChange | None,
    outcomes: Sequence[RuleOutcome],
) -> str:
    failed = [o for o in outcomes if not o.passed]
    summary = (
        f"{len(failed)} rule(s) failed, {sum(o.blocking for o in failed)} of them blocking."
        if failed
        else "All quality rules passed."
    )
    chart = _img(quality_chart_png(source, f"{name}: completeness and validity"), name)
    return (
        f"<h2>{html.escape(name)}</h2>\n"
        f'<p>{html.escape(_row_count_text(change))} <span class="'
        f'{"failed-rule" if failed else ""}">{html.escape(summary)}</span></p>\n'
        f"{chart}\n<table>\n<tr><th>field</th><th>source column</th><th>rows</th>"
        "<th>completeness</th><th>validity</th><th>distinct</th><th>top values (masked)</th>"
        f"<th>rules</th></tr>\n{_field_rows(source, outcomes)}\n</table>"
    )


def write_quality_report(
    profile: pd.DataFrame,
    path: Path,
    *,
    title: str,
    row_counts: Mapping[str, RowCountChange] | None = None,
    rule_outcomes: Mapping[str, Sequence[RuleOutcome]] | None = None,
) -> Path:
    """Write the report for a profile (see :func:`linkage.data_quality.profile_sources`).

    Args:
        profile: One row per source and field, its ``top_values`` already masked.
        path: The HTML file to write; its folder is created.
        title: Heading of the page.
        row_counts: Per source, staged rows against the previous staging run.
        rule_outcomes: Per source, the outcomes of its quality rules.

    Returns:
        ``path``.

    Examples:
        ```py
        write_quality_report(
            profile, artifacts / "data_quality_report.html", title="Meld data quality",
            rule_outcomes={"crm_contacts": outcomes},
        )
        ```
    """
    row_counts = row_counts or {}
    rule_outcomes = rule_outcomes or {}
    sections = [
        _source_section(
            str(name), group, row_counts.get(str(name)), rule_outcomes.get(str(name), ())
        )
        for name, group in profile.groupby("source_system", sort=True)
    ]
    generated = datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="note">Generated {generated}. Completeness is the share of rows (not '
        "quarantined) with a value; validity the share of present values that passed "
        "validation. Personal values are masked: the top values show their shape only.</p>\n"
        + ("\n".join(sections) or "<p>No source has been profiled.</p>")
        + "\n</body>\n</html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info("wrote data-quality report for %d source(s) to %s", len(sections), path)
    return path
