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

import base64
import html
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import yaml

from linkage.charts import cluster_sizes_png, match_weights_png
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_RECORD_MOVES,
    DATA_QUALITY_ISSUES,
    LINKAGE_EVALUATION,
    MERGE_EVIDENCE,
    QUARANTINED_RECORDS,
)
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)

MAX_LISTED_ROWS = 50
"""Id events, record moves and merge evidence list at most this many rows each."""

COUNT_LABELS: dict[str, str] = {
    "records_in": "records in (raw rows)",
    "records_staged": "records staged",
    "quarantined": "records quarantined",
    "pairs_scored": "pairs scored",
    "pairs_above_threshold": "pairs at or above the match threshold",
    "customers": "customers",
    "created": "customer ids created",
    "merged": "customer ids merged",
    "split": "customer ids split",
    "retired": "customer ids retired",
    "records_moved": "records moved between customers",
}
"""The ledger's counts in the order the report shows them, with their labels."""

HEADLINE_METRICS = (
    "pairwise_f1",
    "cluster_f1",
    "bcubed_f1",
    "adjusted_rand_index",
    "label_pairwise_f1",
    "label_cluster_f1",
    "best_threshold",
)
"""Metrics shown in the evaluation history across runs (those present)."""

ID_EVENTS = ("new", "split", "merged", "retired")
"""Events of ``customer_id_history`` in the order the report lists them."""

MERGE_EVIDENCE_COLUMNS = (
    "survivor_id",
    "merged_id",
    "unique_id_l",
    "unique_id_r",
    "match_weight",
    "match_probability",
    "evidence",
)

OPTIONAL_RUN_FIELDS: dict[str, str] = {
    "failed_step": "Failed step",
    "clustering_run_id": "Clustering run (customer ids)",
    "model_trained_by_run": "Model trained by run",
    "scoring_input_sha256": "Scoring input sha256",
    "assignment_sha256": "Assignment sha256",
}
"""Ledger keys shown in the run table when the entry has them."""

NA = "n/a"

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


class _Html(str):
    """Markup that is already safe; :func:`_cell` does not escape it again."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """The text the report shows for a value: ``n/a`` for missing, grouped integers.

    Examples:
        >>> format_value(None)
        'n/a'
        >>> format_value(12345)
        '12,345'
        >>> format_value(720.0)
        '720'
        >>> format_value(0.98765)
        '0.9877'
        >>> format_value(float("-inf"))
        '-inf'
        >>> format_value(True)
        'yes'
    """
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return NA
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return str(value)


def format_delta(current: Any, previous: Any) -> str:
    """``current - previous`` with its sign, or ``n/a`` when either is not a number.

    Examples:
        >>> format_delta(10, 7)
        '+3'
        >>> format_delta(5, 5)
        '0'
        >>> format_delta(0.95, 0.97)
        '-0.02'
        >>> format_delta(3, None)
        'n/a'
    """
    if not (_number(current) and _number(previous)):
        return NA
    delta = current - previous
    if isinstance(delta, float) and math.isnan(delta):
        return NA
    if delta == 0:
        return "0"
    if isinstance(delta, int):
        return f"{delta:+,}"
    return f"{delta:+.4g}"


def match_weight(probability: float | None) -> float | None:
    """The match weight ``log2(p / (1 - p))`` of a probability strictly between 0 and 1.

    Examples:
        >>> match_weight(0.5)
        0.0
        >>> round(match_weight(0.8), 3)
        2.0
        >>> match_weight(1.0) is None
        True
    """
    if probability is None or not 0.0 < probability < 1.0:
        return None
    return math.log2(probability / (1.0 - probability))


def level_weights(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every comparison level of a Splink model with m, u and partial match weight.

    The weight is ``log2(m / u)``; 0 for null levels (they carry no evidence), ``-inf``
    when m is 0, and None when m or u was not estimated.

    Examples:
        >>> model = {"comparisons": [{"output_column_name": "email", "comparison_levels": [
        ...     {"label_for_charts": "email is NULL", "is_null_level": True},
        ...     {"label_for_charts": "Exact match", "m_probability": 0.8,
        ...      "u_probability": 0.1},
        ...     {"label_for_charts": "All other", "u_probability": 0.9}]}]}
        >>> [(row["level"], row["weight"]) for row in level_weights(model)]
        [('email is NULL', 0.0), ('Exact match', 3.0), ('All other', None)]
    """
    rows = []
    for comparison in model.get("comparisons") or []:
        name = comparison.get("output_column_name") or comparison.get("comparison_description", "?")
        for level in comparison.get("comparison_levels") or []:
            m, u = level.get("m_probability"), level.get("u_probability")
            null_level = bool(level.get("is_null_level"))
            if null_level:
                weight: float | None = 0.0
            elif m is None or not u:
                weight = None
            elif m == 0:
                weight = float("-inf")
            else:
                weight = math.log2(m / u)
            notes = []
            if null_level:
                notes.append("null level")
            if level.get("tf_adjustment_column"):
                notes.append(f"term frequency adjusted on {level['tf_adjustment_column']}")
            if level.get("fix_m_probability"):
                notes.append("m fixed")
            if level.get("fix_u_probability"):
                notes.append("u fixed")
            rows.append(
                {
                    "comparison": name,
                    "level": level.get("label_for_charts") or level.get("sql_condition", "?"),
                    "m": m,
                    "u": u,
                    "weight": weight,
                    "notes": ", ".join(notes),
                }
            )
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, _Html):
        return value
    return html.escape(format_value(value))


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    table_id: str,
    row_classes: Sequence[str] | None = None,
) -> _Html:
    """An HTML table; numbers are right-aligned, every value is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_cell(v)}</td>' if _number(v) else f"<td>{_cell(v)}</td>"
            for v in row
        )
        css = row_classes[i] if row_classes is not None else ""
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return _Html(
        f'<table id="{html.escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _note(text: str) -> _Html:
    return _Html(f'<p class="note">{html.escape(text)}</p>')


def _missing_table(table: str) -> _Html:
    return _note(f"Table {table} is not in the warehouse: this part is left out.")


def _mono(value: Any) -> _Html:
    return _Html(f'<span class="mono">{_cell(value)}</span>')


def _signed(text: str) -> _Html:
    css = "pos" if text.startswith("+") else "neg" if text.startswith("-") else ""
    return _Html(f'<span class="{css}">{html.escape(text)}</span>' if css else html.escape(text))


def _image(png: bytes, alt: str) -> _Html:
    data = base64.b64encode(png).decode("ascii")
    return _Html(f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')


def _get(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    """``mapping[k1][k2]...``, or None when any level is missing or not a mapping."""
    value: Any = mapping
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _duration(entry: Mapping[str, Any]) -> str:
    started, ended = _parse_time(entry.get("started_at")), _parse_time(entry.get("ended_at"))
    if started is None or ended is None:
        return NA
    seconds = int((ended - started).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


# Sections. Each returns the body of one section.


def _run_section(entry: Mapping[str, Any]) -> _Html:
    rows = [
        ("Dagster run", _mono(entry.get("dagster_run_id"))),
        ("Job", entry.get("job_name")),
        ("Status", entry.get("status")),
        ("Started", entry.get("started_at")),
        ("Ended", entry.get("ended_at")),
        ("Duration", _duration(entry)),
        ("MLflow run", _mono(entry.get("mlflow_run_id"))),
        ("Model", entry.get("model_name")),
        ("Model version", entry.get("model_version")),
        ("Model alias", entry.get("model_alias")),
        ("MLflow run of the model", _mono(entry.get("model_mlflow_run_id"))),
        ("Git commit", _mono(_get(entry, "code_version", "git_commit"))),
        ("Package version", _get(entry, "code_version", "package_version")),
        ("Config sha256", _mono(entry.get("config_sha256"))),
        ("Partition sha256", _mono(entry.get("partition_sha256"))),
    ]
    rows += [
        (label, _mono(entry[key]))
        for key, label in OPTIONAL_RUN_FIELDS.items()
        if entry.get(key) is not None
    ]
    return _table(["", "value"], rows, table_id="run")


def _inputs_section(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> _Html:
    inputs = entry.get("inputs") or []
    if not inputs:
        return _note("The ledger lists no input files for this run.")
    before = {
        (item.get("source"), item.get("file")): item.get("sha256")
        for item in (previous or {}).get("inputs") or []
        if isinstance(item, Mapping)
    }
    before_sources = {source for source, _ in before}

    def versus_previous(item: Mapping[str, Any]) -> str:
        if previous is None:
            return NA
        key = (item.get("source"), item.get("file"))
        if key in before:
            return "same" if before[key] == item.get("sha256") else "changed"
        return "new file" if item.get("source") in before_sources else "new source"

    rows = [
        (
            item.get("source"),
            _mono(item.get("file")),
            item.get("delivery_seq"),
            item.get("rows"),
            item.get("size_bytes"),
            _mono(item.get("sha256")),
            versus_previous(item),
        )
        for item in inputs
        if isinstance(item, Mapping)
    ]
    return _table(
        ["source", "file", "delivery", "rows", "bytes", "sha256", "vs previous run"],
        rows,
        table_id="inputs",
    )


def _grouped_counts(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Mapping[str, str],
    *,
    count_label: str,
    table_id: str,
    empty: str,
) -> _Html:
    """Rows of ``table`` counted by ``columns`` (name -> header): counts, never values."""
    if not table_exists(con, table):
        return _missing_table(table)
    absent = [name for name in columns if name not in table_columns(con, table)]
    if absent:
        return _note(f"Table {table} has no column {', '.join(absent)}: it is left out.")
    names = ", ".join(quote(name) for name in columns)
    rows = con.execute(
        f"SELECT {names}, count(*) FROM {quote(table)} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    if not rows:
        return _note(empty)
    total = ("all", *([""] * (len(columns) - 1)), sum(int(row[-1]) for row in rows))
    return _table([*columns.values(), count_label], [*rows, total], table_id=table_id)


def _quality_section(con: duckdb.DuckDBPyConnection) -> _Html:
    return _Html(
        "<h3>Quarantined records</h3>"
        + _grouped_counts(
            con,
            QUARANTINED_RECORDS,
            {"source_system": "source", "reason": "reason"},
            count_label="records",
            table_id="quarantine",
            empty="No record was quarantined.",
        )
        + "<h3>Data-quality issues (values set aside, records kept)</h3>"
        + _grouped_counts(
            con,
            DATA_QUALITY_ISSUES,
            {"source_system": "source", "field": "field", "problem": "issue"},
            count_label="values",
            table_id="quality-issues",
            empty="No data-quality issue was found.",
        )
    )


def _model_section(model: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> _Html:
    if not model:
        return _note("No model is recorded for this run.")
    parts = []
    prior = model.get("probability_two_random_records_match")
    prior_weight = match_weight(prior)
    parts.append(
        _table(
            ["", "value"],
            [
                ("Model", entry.get("model_name")),
                ("Version", entry.get("model_version")),
                ("Alias", entry.get("model_alias")),
                ("Link type", model.get("link_type")),
                ("Prior: probability two random records match", prior),
                ("Prior as match weight (log2 odds)", prior_weight),
                ("Prior: one match in", 1.0 / prior if prior else None),
            ],
            table_id="model-prior",
        )
    )
    rows = level_weights(model)
    if rows:
        firsts = [
            i == 0 or row["comparison"] != rows[i - 1]["comparison"] for i, row in enumerate(rows)
        ]
        parts.append(_Html("<h3>Comparisons and levels</h3>"))
        parts.append(
            _table(
                ["comparison", "level", "m", "u", "partial match weight (log2 m/u)", ""],
                [
                    (
                        row["comparison"] if first else "",
                        row["level"],
                        row["m"],
                        row["u"],
                        row["weight"],
                        row["notes"],
                    )
                    for row, first in zip(rows, firsts, strict=True)
                ],
                table_id="model-levels",
                row_classes=["group-start" if first else "" for first in firsts],
            )
        )
        if any(row["weight"] not in (None, 0.0) and math.isfinite(row["weight"]) for row in rows):
            parts.append(_image(match_weights_png(dict(model)), "match weights of the model"))
    else:
        parts.append(_note("The model has no comparisons."))
    rules = model.get("blocking_rules_to_generate_predictions") or []
    if rules:
        parts.append(_Html("<h3>Blocking rules</h3>"))
        parts.append(
            _table(
                ["#", "rule"],
                [
                    (i, _mono(rule.get("blocking_rule") if isinstance(rule, Mapping) else rule))
                    for i, rule in enumerate(rules, start=1)
                ],
                table_id="blocking-rules",
            )
        )
    return _Html("".join(parts))


def _thresholds_section(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> _Html:
    thresholds = entry.get("thresholds") or {}
    if not thresholds:
        return _note("The ledger holds no thresholds for this run.")
    rows = []
    for name, value in thresholds.items():
        probability = "threshold" in name or "floor" in name
        weight = match_weight(value) if probability and _number(value) else None
        rows.append((name, value, weight))
    headers = ["threshold", "value", "as match weight"]
    if previous is not None:
        before = previous.get("thresholds") or {}
        headers.append("previous run")
        rows = [(*row, before.get(row[0])) for row in rows]
    return _table(headers, rows, table_id="thresholds")


def _run_metrics(con: duckdb.DuckDBPyConnection, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger's metrics, completed by ``linkage_evaluation`` rows of this run."""
    metrics = dict(entry.get("metrics") or {})
    run_id = entry.get("dagster_run_id")
    if run_id and table_exists(con, LINKAGE_EVALUATION):
        for metric, value in con.execute(
            f"SELECT metric, value FROM {LINKAGE_EVALUATION} WHERE dagster_run_id = ? "
            "ORDER BY evaluated_at",
            [run_id],
        ).fetchall():
            metrics.setdefault(metric, value)
    return metrics


def _evaluation_section(con: duckdb.DuckDBPyConnection, metrics: Mapping[str, Any]) -> _Html:
    parts = [_Html("<h3>This run</h3>")]
    if metrics:
        parts.append(_table(["metric", "value"], metrics.items(), table_id="metrics"))
    else:
        parts.append(
            _note(
                "No evaluation for this run: the config names no truth file or labels, "
                "or the run stopped before the evaluation."
            )
        )
    parts.append(_Html("<h3>Recent evaluations</h3>"))
    if not table_exists(con, LINKAGE_EVALUATION):
        parts.append(_missing_table(LINKAGE_EVALUATION))
        return _Html("".join(parts))
    rows = con.execute(
        "WITH runs AS (SELECT dagster_run_id, max(evaluated_at) AS at "
        f"FROM {LINKAGE_EVALUATION} GROUP BY 1 ORDER BY 2 DESC LIMIT 10) "
        "SELECT r.at, e.dagster_run_id, e.model_version, e.metric, e.value "
        f"FROM {LINKAGE_EVALUATION} AS e JOIN runs AS r "
        "ON e.dagster_run_id = r.dagster_run_id AND e.evaluated_at = r.at "
        "ORDER BY r.at DESC"
    ).fetchall()
    by_run: dict[tuple[Any, Any, Any], dict[str, float]] = {}
    for at, run_id, version, metric, value in rows:
        by_run.setdefault((at, run_id, version), {})[metric] = value
    shown = [m for m in HEADLINE_METRICS if any(m in values for values in by_run.values())]
    if not by_run:
        parts.append(_note("linkage_evaluation is empty."))
        return _Html("".join(parts))
    parts.append(
        _table(
            ["evaluated at", "Dagster run", "model version", *shown],
            [
                (str(at), _mono(run_id), version, *(values.get(m) for m in shown))
                for (at, run_id, version), values in by_run.items()
            ],
            table_id="evaluation-history",
        )
    )
    return _Html("".join(parts))


def _customers_section(con: duckdb.DuckDBPyConnection) -> _Html:
    if not table_exists(con, CUSTOMER_CLUSTERS):
        return _missing_table(CUSTOMER_CLUSTERS)
    sizes = [
        (int(size), int(customers))
        for size, customers in con.execute(
            "SELECT records, count(*) FROM ("
            f"SELECT customer_id, count(*) AS records FROM {CUSTOMER_CLUSTERS} GROUP BY 1) "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    ]
    if not sizes:
        return _note("customer_clusters is empty.")
    customers = sum(count for _, count in sizes)
    records = sum(size * count for size, count in sizes)
    summary = _table(
        ["", "value"],
        [
            ("customers", customers),
            ("records in customers", records),
            ("customers with one record", dict(sizes).get(1, 0)),
            ("largest customer (records)", sizes[-1][0]),
            ("mean records per customer", records / customers),
        ],
        table_id="customer-summary",
    )
    distribution = _table(["records per customer", "customers"], sizes, table_id="cluster-sizes")
    return _Html(
        "<p>As in customer_clusters when the report was written.</p>"
        + summary
        + "<h3>Customer size distribution</h3>"
        + distribution
        + _image(cluster_sizes_png(sizes), "customer size distribution")
    )


def _side_by_side(
    names: Iterable[str],
    labels: Mapping[str, str],
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    table_id: str,
    header: str,
) -> _Html:
    """This run's values, and with a previous run its values and the change."""
    if previous is None:
        rows = [(labels.get(name, name), current.get(name)) for name in names]
        return _table([header, "this run"], rows, table_id=table_id)
    rows = []
    for name in names:
        now, before = current.get(name), previous.get(name)
        rows.append((labels.get(name, name), now, before, _signed(format_delta(now, before))))
    return _table([header, "this run", "previous run", "change"], rows, table_id=table_id)


def _what_changed(entry: Mapping[str, Any], previous: Mapping[str, Any]) -> _Html:
    items = [
        ("model version", ("model_version",)),
        ("model alias", ("model_alias",)),
        ("git commit", ("code_version", "git_commit")),
        ("package version", ("code_version", "package_version")),
        ("config sha256", ("config_sha256",)),
        ("partition sha256", ("partition_sha256",)),
    ]
    rows = []
    for label, keys in items:
        now, before = _get(entry, *keys), _get(previous, *keys)
        rows.append((label, _mono(before), _mono(now), "same" if now == before else "changed"))
    return _table(["", "previous run", "this run", ""], rows, table_id="versions-changed")


def _run_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    run_id: str,
    columns: Sequence[str],
    required: Sequence[str],
    order: str,
    what: str,
    table_id: str,
    headers: Sequence[str] | None = None,
) -> _Html:
    """How many rows ``table`` has for ``run_id``, and the first :data:`MAX_LISTED_ROWS`.

    ``columns`` present in the table are listed; ``required`` (and ``run_id``) must be
    there. ``order`` is SQL over the table's columns.
    """
    if not table_exists(con, table):
        return _missing_table(table)
    present = table_columns(con, table)
    absent = [name for name in ("run_id", *required) if name not in present]
    if absent:
        return _note(f"Table {table} has no column {', '.join(absent)}: it is left out.")
    shown = [name for name in columns if name in present]
    total = con.execute(f"SELECT count(*) FROM {quote(table)} WHERE run_id = ?", [run_id])
    count = int(total.fetchall()[0][0])
    rows = con.execute(
        f"SELECT {', '.join(quote(name) for name in shown)} FROM {quote(table)} "
        f"WHERE run_id = ? ORDER BY {order} LIMIT {MAX_LISTED_ROWS}",
        [run_id],
    ).fetchall()
    more = f", the first {len(rows)} listed" if count > len(rows) else ""
    text = _Html(f"<p>{count:,} {html.escape(what)}{html.escape(more)}.</p>")
    if not rows:
        return text
    ids = {"id", "related_id", "member", "from_id", "to_id", *MERGE_EVIDENCE_COLUMNS[:4]}
    cells = [
        [
            _mono(v) if name in ids and v is not None else v
            for name, v in zip(shown, row, strict=True)
        ]
        for row in rows
    ]
    labels = headers if headers is not None and len(headers) == len(shown) else shown
    return _Html(text + _table(labels, cells, table_id=table_id))


def _id_event_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> _Html:
    """Ids of ``customer_id_history`` per event of this run."""
    table = CUSTOMER_ID_HISTORY
    if not table_exists(con, table):
        return _missing_table(table)
    if not {"run_id", "event"} <= set(table_columns(con, table)):
        return _note(f"Table {table} has no run_id or event column: it is left out.")
    counts = dict(
        con.execute(
            f"SELECT event, count(*) FROM {table} WHERE run_id = ? GROUP BY 1", [run_id]
        ).fetchall()
    )
    events = [*ID_EVENTS, *sorted(set(counts) - set(ID_EVENTS))]
    return _table(
        ["event", "ids"],
        [(event, int(counts.get(event, 0))) for event in events],
        table_id="id-events",
    )


def _id_changes(con: duckdb.DuckDBPyConnection, entry: Mapping[str, Any]) -> _Html:
    """Id events, record moves and merge evidence of the run that clustered the records:
    ``clustering_run_id`` when the entry names it (a run that only re-audited), else this
    run."""
    run_id = entry.get("clustering_run_id") or entry.get("dagster_run_id")
    if not run_id:
        return _note("The ledger entry has no Dagster run id: id events cannot be looked up.")
    intro, scope = _Html(""), "in this run"
    if run_id != entry.get("dagster_run_id"):
        intro = _Html(f"<p>The customers were last clustered by run {_mono(run_id)}.</p>")
        scope = "in that run"
    # merges, splits and retirements are listed before the (many) new ids
    event_order = " ".join(
        f"WHEN '{event}' THEN {i}" for i, event in enumerate(("merged", "split", "retired", "new"))
    )
    return _Html(
        "<h3>Customer id events</h3>"
        + intro
        + _id_event_counts(con, run_id)
        + _run_rows(
            con,
            CUSTOMER_ID_HISTORY,
            run_id=run_id,
            columns=["event", "id", "related_id", "members"],
            required=["event", "id"],
            order=f"CASE event {event_order} ELSE 9 END, id",
            what=f"id events {scope}",
            table_id="id-history",
        )
        + "<h3>Records that changed customer</h3>"
        + _run_rows(
            con,
            CUSTOMER_RECORD_MOVES,
            run_id=run_id,
            columns=["member", "from_id", "to_id"],
            required=["member"],
            order="member",
            what=f"records moved {scope}",
            table_id="record-moves",
            headers=["record (unique_id)", "from customer", "to customer"],
        )
        + "<h3>Merge evidence</h3>"
        + _run_rows(
            con,
            MERGE_EVIDENCE,
            run_id=run_id,
            columns=MERGE_EVIDENCE_COLUMNS,
            required=[],
            order="ALL",
            what=f"merge evidence rows {scope}",
            table_id="merge-evidence",
        )
    )


def _changes_section(
    con: duckdb.DuckDBPyConnection,
    entry: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    metrics: Mapping[str, Any],
) -> _Html:
    parts = []
    if previous is None:
        parts.append(
            _Html(
                "<p><strong>This is the first run</strong>: there is no previous successful "
                "run to compare with.</p>"
            )
        )
    else:
        parts.append(
            _Html(
                f"<p>Compared with the previous successful run "
                f"{_mono(previous.get('dagster_run_id'))}, ended "
                f"{_cell(previous.get('ended_at'))}.</p>"
            )
        )
        parts.append(_what_changed(entry, previous))
    counts = entry.get("counts") or {}
    before_counts = (previous or {}).get("counts") or {}
    extra = sorted((set(counts) | set(before_counts)) - set(COUNT_LABELS))
    parts.append(_Html("<h3>Counts</h3>"))
    parts.append(
        _side_by_side(
            [*COUNT_LABELS, *extra],
            COUNT_LABELS,
            counts,
            None if previous is None else before_counts,
            table_id="counts",
            header="count",
        )
    )
    if previous is not None:
        before_metrics = previous.get("metrics") or {}
        names = list(dict.fromkeys([*(entry.get("metrics") or metrics), *before_metrics]))
        parts.append(_Html("<h3>Evaluation metrics</h3>"))
        if names:
            parts.append(
                _side_by_side(
                    names, {}, metrics, before_metrics, table_id="metrics-changes", header="metric"
                )
            )
        else:
            parts.append(_note("Neither run has evaluation metrics."))
    parts.append(_id_changes(con, entry))
    return _Html("".join(parts))


def _config_section(entry: Mapping[str, Any]) -> _Html:
    config = entry.get("config")
    if not config:
        return _note("The ledger holds no effective config for this run.")
    plain = json.loads(json.dumps(config, default=str))
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    return _Html(
        f"<details><summary>Effective configuration (sha256 "
        f"{_cell(entry.get('config_sha256'))}), secrets removed</summary>"
        f"<pre>{html.escape(text)}</pre></details>"
    )


def _header(entry: Mapping[str, Any]) -> _Html:
    status = entry.get("status") or "unknown"
    css = status if status in ("succeeded", "failed") else ""
    error = entry.get("error")
    parts = [
        "<header>",
        f'<h1>Meld run report <span class="badge {html.escape(css)}">'
        f"{html.escape(str(status))}</span></h1>",
        f'<div class="subtitle">Dagster run {_mono(entry.get("dagster_run_id"))} · job '
        f"{_cell(entry.get('job_name'))} · started {_cell(entry.get('started_at'))} · "
        f"model {_cell(entry.get('model_name'))} version {_cell(entry.get('model_version'))}"
        "</div>",
        "</header>",
    ]
    if status == "failed" or error:
        step = entry.get("failed_step")
        where = f" in step {_cell(step)}" if step else ""
        parts.append(f'<h3>Error{where}</h3><pre class="error">{_cell(error)}</pre>')
    return _Html("".join(parts))


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
    metrics = _run_metrics(con, entry)
    sections = [
        ("run", "Run", _run_section(entry)),
        ("inputs", "Inputs", _inputs_section(entry, previous)),
        ("data-quality", "Data quality", _quality_section(con)),
        ("model", "Model", _model_section(model, entry)),
        ("thresholds", "Thresholds", _thresholds_section(entry, previous)),
        ("evaluation", "Evaluation", _evaluation_section(con, metrics)),
        ("customers", "Customers", _customers_section(con)),
        (
            "changes",
            "Changes since the previous run",
            _changes_section(con, entry, previous, metrics),
        ),
        ("config", "Configuration", _config_section(entry)),
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
        f"<body><main>{_header(entry)}"
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
