"""The run report's "changes since the previous run" section.

Versions, counts and metrics beside the previous successful run's, then the customer id
events, record moves and merge evidence of the run that clustered the records (ids
only, at most :data:`MAX_LISTED_ROWS` rows each).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb

from linkage.audit.run_report.formatting import format_delta, nested_get
from linkage.audit.run_report.markup import (
    Html,
    cell,
    html_table,
    missing_table,
    mono,
    note,
    signed,
)
from linkage.tables import CUSTOMER_ID_HISTORY, CUSTOMER_RECORD_MOVES, MERGE_EVIDENCE
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


def side_by_side(
    names: Iterable[str],
    labels: Mapping[str, str],
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    table_id: str,
    header: str,
) -> Html:
    """This run's values, and with a previous run its values and the change."""
    if previous is None:
        rows = [(labels.get(name, name), current.get(name)) for name in names]
        return html_table([header, "this run"], rows, table_id=table_id)
    rows = []
    for name in names:
        now, before = current.get(name), previous.get(name)
        rows.append((labels.get(name, name), now, before, signed(format_delta(now, before))))
    return html_table([header, "this run", "previous run", "change"], rows, table_id=table_id)


def _what_changed(entry: Mapping[str, Any], previous: Mapping[str, Any]) -> Html:
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
        now, before = nested_get(entry, *keys), nested_get(previous, *keys)
        rows.append((label, mono(before), mono(now), "same" if now == before else "changed"))
    return html_table(["", "previous run", "this run", ""], rows, table_id="versions-changed")


def run_rows(
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
) -> Html:
    """How many rows ``table`` has for ``run_id``, and the first :data:`MAX_LISTED_ROWS`.

    ``columns`` present in the table are listed; ``required`` (and ``run_id``) must be
    there. ``order`` is SQL over the table's columns.
    """
    if not table_exists(con, table):
        return missing_table(table)
    present = table_columns(con, table)
    absent = [name for name in ("run_id", *required) if name not in present]
    if absent:
        return note(f"Table {table} has no column {', '.join(absent)}: it is left out.")
    shown = [name for name in columns if name in present]
    total = con.execute(f"SELECT count(*) FROM {quote(table)} WHERE run_id = ?", [run_id])
    count = int(total.fetchall()[0][0])
    rows = con.execute(
        f"SELECT {', '.join(quote(name) for name in shown)} FROM {quote(table)} "
        f"WHERE run_id = ? ORDER BY {order} LIMIT {MAX_LISTED_ROWS}",
        [run_id],
    ).fetchall()
    more = f", the first {len(rows)} listed" if count > len(rows) else ""
    text = Html(f"<p>{count:,} {html.escape(what)}{html.escape(more)}.</p>")
    if not rows:
        return text
    ids = {"id", "related_id", "member", "from_id", "to_id", *MERGE_EVIDENCE_COLUMNS[:4]}
    cells = [
        [
            mono(v) if name in ids and v is not None else v
            for name, v in zip(shown, row, strict=True)
        ]
        for row in rows
    ]
    labels = headers if headers is not None and len(headers) == len(shown) else shown
    return Html(text + html_table(labels, cells, table_id=table_id))


def _id_event_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> Html:
    """Ids of ``customer_id_history`` per event of this run."""
    table = CUSTOMER_ID_HISTORY
    if not table_exists(con, table):
        return missing_table(table)
    if not {"run_id", "event"} <= set(table_columns(con, table)):
        return note(f"Table {table} has no run_id or event column: it is left out.")
    counts = dict(
        con.execute(
            f"SELECT event, count(*) FROM {table} WHERE run_id = ? GROUP BY 1", [run_id]
        ).fetchall()
    )
    events = [*ID_EVENTS, *sorted(set(counts) - set(ID_EVENTS))]
    return html_table(
        ["event", "ids"],
        [(event, int(counts.get(event, 0))) for event in events],
        table_id="id-events",
    )


def _id_changes(con: duckdb.DuckDBPyConnection, entry: Mapping[str, Any]) -> Html:
    """Id events, record moves and merge evidence of the run that clustered the records:
    ``clustering_run_id`` when the entry names it (a run that only re-audited), else this
    run."""
    run_id = entry.get("clustering_run_id") or entry.get("dagster_run_id")
    if not run_id:
        return note("The ledger entry has no Dagster run id: id events cannot be looked up.")
    intro, scope = Html(""), "in this run"
    if run_id != entry.get("dagster_run_id"):
        intro = Html(f"<p>The customers were last clustered by run {mono(run_id)}.</p>")
        scope = "in that run"
    # merges, splits and retirements are listed before the (many) new ids
    event_order = " ".join(
        f"WHEN '{event}' THEN {i}" for i, event in enumerate(("merged", "split", "retired", "new"))
    )
    return Html(
        "<h3>Customer id events</h3>"
        + intro
        + _id_event_counts(con, run_id)
        + run_rows(
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
        + run_rows(
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
        + run_rows(
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


def _comparison_intro(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> list[Html]:
    """The "first run" note, or the previous run named and its versions beside these."""
    if previous is None:
        return [
            Html(
                "<p><strong>This is the first run</strong>: there is no previous successful "
                "run to compare with.</p>"
            )
        ]
    return [
        Html(
            f"<p>Compared with the previous successful run "
            f"{mono(previous.get('dagster_run_id'))}, ended "
            f"{cell(previous.get('ended_at'))}.</p>"
        ),
        _what_changed(entry, previous),
    ]


def _metric_changes(
    entry: Mapping[str, Any], previous: Mapping[str, Any], metrics: Mapping[str, Any]
) -> list[Html]:
    """The evaluation metrics of this run beside the previous run's."""
    before_metrics = previous.get("metrics") or {}
    names = list(dict.fromkeys([*(entry.get("metrics") or metrics), *before_metrics]))
    if not names:
        return [Html("<h3>Evaluation metrics</h3>"), note("Neither run has evaluation metrics.")]
    return [
        Html("<h3>Evaluation metrics</h3>"),
        side_by_side(
            names, {}, metrics, before_metrics, table_id="metrics-changes", header="metric"
        ),
    ]


def changes_section(
    con: duckdb.DuckDBPyConnection,
    entry: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    metrics: Mapping[str, Any],
) -> Html:
    """Versions, counts and metrics against the previous run, then the id changes."""
    parts = _comparison_intro(entry, previous)
    counts = entry.get("counts") or {}
    before_counts = (previous or {}).get("counts") or {}
    extra = sorted((set(counts) | set(before_counts)) - set(COUNT_LABELS))
    parts.append(Html("<h3>Counts</h3>"))
    parts.append(
        side_by_side(
            [*COUNT_LABELS, *extra],
            COUNT_LABELS,
            counts,
            None if previous is None else before_counts,
            table_id="counts",
            header="count",
        )
    )
    if previous is not None:
        parts.extend(_metric_changes(entry, previous, metrics))
    parts.append(_id_changes(con, entry))
    return Html("".join(parts))
