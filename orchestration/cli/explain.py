"""``meld explain`` and ``meld explain-customer``: why records are one customer.

``meld explain A B`` shows the match weight of two records (``<source>:<id>``) term by
term: the prior, each comparison's level and partial weight, term-frequency
adjustments, the model version, the link veto, the steward decision in force and any
refused link; it writes Splink's waterfall chart of the pair as an offline HTML page
(by default ``<artifacts>/explain/<A>__<B>.html``). ``meld explain-customer ID`` shows a
customer's records, the links that hold it together (the maximum-weight spanning tree,
and the bridges), the must-links that hold records in, and the id's history.

Both show values and record ids as a role sees them (``--role``, ``MELD_ROLE``, else
the config's default role, the least privileged; see :mod:`orchestration.cli.roles`):
fields the role does not see are left out, masked ones reduced, and the chart holds
weights only unless the role sees every value in clear. ``--mask`` also masks what the
role sees in clear. ``--json`` prints JSON. The warehouse is opened read-only.

Examples:
    ```sh
    meld explain crm_contacts:C0000069 webshop_accounts:WS-a34bdb2f4f
    meld explain crm_contacts:C0000069 webshop_accounts:WS-a34bdb2f4f --role steward
    meld explain crm_contacts:C0000069 webshop_accounts:WS-a34bdb2f4f --json --mask
    MELD_ROLE=service meld explain-customer cus_00a36e81bcfd0080
    ```
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb

from linkage.audit.explain.customer import explain_customer
from linkage.audit.explain.customer_explanation import CustomerExplanation
from linkage.audit.explain.pair import chart_file_name, explain_pair
from linkage.audit.explain.pair_explanation import PairExplanation
from linkage.audit.explain.reads import ExplainError
from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.privacy.role_policy import Role
from linkage.tables import EXPLAIN_FOLDER
from orchestration.cli.roles import add_role_arguments, chosen_role, print_role_note
from orchestration.cli.warehouse import read_warehouse


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``meld explain`` and ``meld explain-customer`` to the command line."""
    pair = commands.add_parser(
        "explain", help="why two records are (or are not) one customer: the match weight"
    )
    pair.add_argument("record_a", help="a record, <source>:<record id>")
    pair.add_argument("record_b", help="another record, <source>:<record id>")
    pair.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    add_role_arguments(pair)
    pair.add_argument("--json", action="store_true", help="print JSON")
    pair.add_argument(
        "--out",
        type=Path,
        help=f"waterfall chart HTML (default: <artifacts>/{EXPLAIN_FOLDER}/<A>__<B>.html)",
    )
    pair.set_defaults(handler=_explain)
    customer = commands.add_parser(
        "explain-customer", help="what holds a customer together: records, links, id history"
    )
    customer.add_argument("customer_id", help="customer id (cus_...)")
    customer.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    add_role_arguments(customer)
    customer.add_argument("--json", action="store_true", help="print JSON")
    customer.set_defaults(handler=_explain_customer)


def _error(text: str) -> int:
    print(text, file=sys.stderr)
    return 1


def _warehouse(project: ProjectConfig) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The project's warehouse (or, while a run writes, its published snapshot), read-only."""
    return read_warehouse(project.warehouse, error=ExplainError)


def _explain(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    role = chosen_role(project, args)
    if not project.warehouse.exists():
        return _error(f"no warehouse yet at {project.warehouse}: run `make demo` first")
    chart = args.out if args.out is not None else _chart_path(project, role, args)
    try:
        with _warehouse(project) as con:
            explanation = explain_pair(
                con, args.record_a, args.record_b, role=role, chart_path=chart
            )
    except (ExplainError, ValueError) as exc:
        return _error(str(exc))
    print_role_note(project, role)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_pair(explanation))
    return 0


def _chart_path(project: ProjectConfig, role: Role, args: argparse.Namespace) -> Path:
    """Where the pair's chart goes: named after the records for a role that sees every
    value in clear, else under ``masked/`` with a name that does not spell them out."""
    folder = project.artifacts / EXPLAIN_FOLDER
    if role.sees_everything:
        return folder / chart_file_name(args.record_a, args.record_b)
    return folder / "masked" / _masked_chart_name(args)


def _masked_chart_name(args: argparse.Namespace) -> str:
    """A chart name that does not spell out the record ids (they can be card numbers)."""
    pair = "\n".join(sorted((args.record_a, args.record_b)))
    return f"pair_{hashlib.sha256(pair.encode('utf-8')).hexdigest()[:16]}.html"


def _explain_customer(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    role = chosen_role(project, args)
    if not project.warehouse.exists():
        return _error(f"no warehouse yet at {project.warehouse}: run `make demo` first")
    try:
        with _warehouse(project) as con:
            explanation = explain_customer(con, args.customer_id, role=role)
    except ExplainError as exc:
        return _error(str(exc))
    print_role_note(project, role)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_customer(explanation))
    return 0


def _value(value: Any) -> str:
    return "-" if value is None else str(value)


def _values(values: dict[str, Any]) -> str:
    """The compared values of one record; ``(hidden)`` when the role sees none of them."""
    if not values:
        return "(hidden)"
    shown = [_value(v) for v in values.values()]
    return ", ".join(shown) if any(v is not None for v in values.values()) else "-"


def format_pair(e: PairExplanation) -> str:
    """The explanation of a pair for a person at the terminal."""
    if e.scored_in_run:
        origin = "as scored in the run (pairwise_matches)"
    else:
        reasons = {
            "not_blocked": "no prediction blocking rule pairs them",
            "below_prediction_floor": f"it scores below the prediction floor {e.prediction_floor}",
            "not_in_run": "a record is newer than the run",
        }
        reason = reasons[e.not_scored_reason or "not_in_run"]
        origin = f"computed now: the run did not score this pair ({reason})"
    lines = [
        f"Pair {e.record_l}  ~  {e.record_r}",
        f"Model {e.model_name} version {e.model_version}, threshold {e.match_threshold}; "
        f"weights {origin}",
        "",
        f"  {'prior (probability two records match)':<58} {e.prior_weight:>+9.3f}"
        f"   lambda = {e.prior_probability:.6g}",
    ]
    for c in e.comparisons:
        label = f"{c.comparison}: {c.level} (gamma {c.gamma})"
        line = f"  {label:<58} {c.partial_weight:>+9.3f}"
        if c.tf_adjustment is not None and c.tf_column is not None:
            line += f"   tf {c.tf_column} {c.tf_adjustment:+.3f}"
        if c.m_estimated is False or c.u_estimated is False:
            unset = " and ".join(
                k for k, ok in (("m", c.m_estimated), ("u", c.u_estimated)) if not ok
            )
            line += f"   ({unset} not estimated: Splink default)"
        lines.append(line)
        if c.gamma != -1:
            lines.append(f"      {_values(c.values_l)}  |  {_values(c.values_r)}")
    verdict = "a link" if e.is_link else "no link"
    if e.above_threshold and e.link_veto:
        verdict = "no link (vetoed)"
    lines += [
        f"  {'match weight':<58} {e.match_weight:>+9.3f}",
        f"  match probability {e.match_probability:.6f}: {verdict}",
        "",
        f"Link veto: {e.link_veto or 'none'}",
    ]
    if e.same_customer:
        lines.append(f"Customers: both in {e.customer_l}")
    else:
        lines.append(f"Customers: {_value(e.customer_l)} and {_value(e.customer_r)}")
    if e.override:
        o = e.override["override"]
        reflected = (
            "the current customers agree"
            if e.override_reflected
            else "not applied yet: the next clustering run applies it"
        )
        lines.append(
            f"Steward decision in force: {e.override['decision']} (from {o['decision']} "
            f"by {o['steward']} on {o['decided_at']}: {o['reason']}); {reflected}"
        )
    else:
        lines.append("Steward decision in force: none")
    for o in e.override_history:
        lines.append(
            f"  history: {o['decided_at']} {o['decision']} by {o['steward']}: {o['reason']}"
        )
    for u in e.unmerges:
        lines.append(
            f"Unmerge in force: {u['record_a']} by {u['steward']} on {u['decided_at']}: "
            f"{u['reason']}"
        )
    for r in e.refused_links:
        if r["role"] == "link":
            lines.append(f"Refused link: this pair's link was refused ({r['reason']})")
        else:
            lines.append(
                f"Refused link: {r['unique_id_l']} ~ {r['unique_id_r']} ({r['reason']}), "
                "because this pair is a cannot-link"
            )
    if e.chart_path:
        lines.append(f"Waterfall chart: {e.chart_path}")
    return "\n".join(lines)


def _record_line(record: dict[str, Any]) -> str:
    name = " ".join(
        str(record[k]) for k in ("first_name_display", "last_name_display") if record.get(k)
    )
    rest = [
        str(record[k])
        for k in ("date_of_birth", "email", "phone", "street_display", "postcode", "city_display")
        if record.get(k) is not None
    ]
    hidden = "first_name_display" not in record and "last_name_display" not in record
    return ", ".join([name or ("(name hidden)" if hidden else "(no name)"), *rest])


def format_customer(e: CustomerExplanation) -> str:
    """The explanation of a customer for a person at the terminal."""
    status = e.status
    if e.status != "active":
        status += f", merged into {e.merged_into}" if e.merged_into else ""
        if e.current_id and e.current_id != e.merged_into:
            status += f" (now {e.current_id})"
    if e.split_from:
        status += f"; split from {e.split_from}"
    lines = [
        f"Customer {e.customer_id}: {status}",
        f"Model {e.model_name} version {e.model_version}, threshold {e.match_threshold}",
    ]
    if e.status != "active" and e.current_id:
        lines.append(f"Its records are in {e.current_id}: meld explain-customer {e.current_id}")
    lines += ["", f"Records ({len(e.records)}):"]
    for i, record in enumerate(e.records, start=1):
        lines.append(f"  [{i}] {record['unique_id']:<36} {_record_line(record)}")
    if e.records:
        lines += ["", f"Links at or above the threshold ({len(e.edges)}), strongest first:"]
        for edge in e.edges:
            marks = [
                m
                for m, on in (
                    ("holds it together", edge.in_spanning_tree),
                    ("bridge", edge.bridge),
                    (f"vetoed: {edge.link_veto}", edge.link_veto is not None),
                )
                if on
            ]
            lines.append(
                f"  [{edge.index_l + 1}]-[{edge.index_r + 1}]  weight {edge.match_weight:+8.3f}  "
                f"probability {edge.match_probability:.6f}  {', '.join(marks)}".rstrip()
            )
        lines.append(
            f"Held together by {len(e.spanning_tree)} link(s) (the maximum-weight spanning "
            f"tree) in {e.link_components} piece(s); {len(e.bridges)} bridge(s)."
        )
        if e.link_components > 1:
            lines.append("The links alone do not connect it: steward must-links hold records in.")
    for m in e.must_links:
        lines.append(
            f"Must-link: {m['record_a']} ~ {m['record_b']} by {m['steward']} on "
            f"{m['decided_at']}: {m['reason']}"
        )
    if e.id_history:
        lines += ["", "Id history:"]
        for event in e.id_history:
            related = f" -> {event['related_id']}" if event.get("related_id") else ""
            lines.append(
                f"  {_value(event['event_at'])}  {event['event']:<8} {event['id']}{related} "
                f"({event['members']} records, run {event['run_id']})"
            )
    if e.record_moves:
        lines += ["", "Record moves:"]
        for move in e.record_moves:
            lines.append(
                f"  {_value(move['moved_at'])}  {move['member']}: {_value(move['from_id'])} -> "
                f"{_value(move['to_id'])}"
            )
    return "\n".join(lines)
