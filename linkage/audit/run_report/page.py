"""The per-run report: one self-contained HTML page that audits a pipeline run.

The page shows the run (status, times, code and config versions), its inputs, data
quality, the model with its m and u probabilities and match-weight chart, the
thresholds, the evaluation, the customer size distribution and what changed since the
previous successful run (counts, metrics, customer id events and record moves).

It is an audit artefact that may be shared: it holds counts, hashes, ids (``unique_id``
``source:record_id`` and customer ids) and model parameters, never record values such
as names, e-mail addresses or phone numbers. Quarantined rows and data-quality issues
are counted, not listed. The page needs no network: CSS is inline, charts are PNGs in
``data:`` URIs, and there is no script.

Warehouse tables that do not exist (yet) are skipped with a note in their section.

Examples:
    ```py
    with warehouse.connect() as con:
        path = write_run_report(
            con,
            entry=ledger_entry,
            previous=previous_entry,
            model=stored.model,
            out_path=artifacts / "reports" / f"{run_id}.html",
        )
    ```
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from linkage.audit.run_report.changes import changes_section
from linkage.audit.run_report.customers import customers_section
from linkage.audit.run_report.evaluation import evaluation_section, run_metrics
from linkage.audit.run_report.formatting import format_value
from linkage.audit.run_report.model import model_section, thresholds_section
from linkage.audit.run_report.quality import quality_section
from linkage.audit.run_report.run import config_section, header, inputs_section, run_section

logger = logging.getLogger(__name__)

_CSS = """
:root { --fg: #1d2433; --muted: #5b6478; --line: #d9dee8; --bg-alt: #f5f7fa;
  --ok: #1f7a4d; --bad: #b42318; --accent: #264653; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: var(--fg); margin: 0; line-height: 1.45; font-size: 14px; }
main { max-width: 1150px; margin: 0 auto; padding: 24px 32px 64px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.subtitle { color: var(--muted); }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff;
  font-weight: 600; font-size: 13px; vertical-align: middle; margin-left: 8px;
  background: var(--muted); }
.badge.succeeded { background: var(--ok); }
.badge.failed { background: var(--bad); }
nav.toc { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 16px; display: inline-block; }
nav.toc ol { margin: 4px 0; padding-left: 20px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.group-start td { border-top: 2px solid #9aa3b5; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
pre { background: var(--bg-alt); border: 1px solid var(--line); padding: 10px;
  overflow-x: auto; }
pre.error { background: #fdecea; border-color: #f5c2bd; color: var(--bad);
  white-space: pre-wrap; }
.note { color: var(--muted); font-style: italic; }
.pos { color: var(--ok); }
.neg { color: var(--bad); }
img.chart { max-width: 100%; border: 1px solid var(--line); margin: 6px 0; }
details summary { cursor: pointer; font-weight: 600; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; }
"""


def write_run_report(
    con: duckdb.DuckDBPyConnection,
    *,
    entry: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    model: dict[str, Any] | None,
    out_path: Path,
) -> Path:
    """Write the run's report as one self-contained HTML file and return its path.

    Args:
        con: The warehouse, read only: quarantined_records, data_quality_issues,
            customer_clusters, customer_id_history, customer_record_moves,
            merge_evidence and linkage_evaluation are read when they exist.
        entry: The run's row of the run ledger (keys may be missing or None; they show
            as ``n/a``).
        previous: The ledger row of the previous successful run, or None for the first.
        model: The Splink model (settings dict with m and u) the run scored with.
        out_path: The HTML file to write; its folder is created.

    Returns:
        ``out_path``.

    Examples:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "report.html"
        >>> path = write_run_report(
        ...     duckdb.connect(),
        ...     entry={"dagster_run_id": "r1", "status": "failed", "error": "boom"},
        ...     previous=None,
        ...     model=None,
        ...     out_path=out,
        ... )
        >>> text = path.read_text(encoding="utf-8")
        >>> "boom" in text and "first run" in text
        True
    """
    metrics = run_metrics(con, entry)
    sections = [
        ("run", "Run", run_section(entry)),
        ("inputs", "Inputs", inputs_section(entry, previous)),
        ("data-quality", "Data quality", quality_section(con)),
        ("model", "Model", model_section(model, entry)),
        ("thresholds", "Thresholds", thresholds_section(entry, previous)),
        ("evaluation", "Evaluation", evaluation_section(con, metrics)),
        ("customers", "Customers", customers_section(con)),
        (
            "changes",
            "Changes since the previous run",
            changes_section(con, entry, previous, metrics),
        ),
        ("config", "Configuration", config_section(entry)),
    ]
    toc = "".join(
        f'<li><a href="#{anchor}">{html.escape(title)}</a></li>' for anchor, title, _ in sections
    )
    body = "".join(
        f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{content}</section>'
        for anchor, title, content in sections
    )
    written_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    title = f"Meld run {format_value(entry.get('dagster_run_id'))}"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{header(entry)}"
        f'<nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>'
        f"{body}"
        f"<footer>Written {html.escape(written_at)} by Meld. Holds counts, hashes, ids and "
        "model parameters, no record values.</footer>"
        "</main></body></html>\n"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    logger.info("wrote the run report %s (%d bytes)", out_path, len(page.encode("utf-8")))
    return out_path
