"""``meld customer``: print the single customer view of one customer.

The customer is found by its id, a source record (``<source>:<id>``), an e-mail or a
phone number in any format, as a role sees it (``--role``, ``MELD_ROLE``, else the
config's default role, the least privileged): fields the role does not see are left
out, masked ones shown reduced, and a role cannot look customers up by a field it does
not see. ``--mask`` also masks what the role sees in clear. The warehouse is opened
read-only.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from linkage.config import config_path_from_env, load_project
from linkage.master.customer_view import CustomerProfile
from linkage.privacy.role_reads import find_customers_as, role_customer_profile
from linkage.tables import CUSTOMER_360
from linkage.warehouse import table_exists
from orchestration.cli.roles import add_role_arguments, chosen_role, print_role_note
from orchestration.cli.warehouse import read_warehouse


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``meld customer`` to the command line."""
    parser = commands.add_parser(
        "customer", help="show one customer: golden record, records, household, purchases"
    )
    parser.add_argument("query", help="customer id, <source>:<record id>, e-mail or phone")
    parser.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    add_role_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_customer)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _format(profile: CustomerProfile) -> str:
    g = profile.golden
    name = " ".join(str(p) for p in (g.get("first_name"), g.get("last_name")) if p)
    if not name and "first_name" not in g and "last_name" not in g:
        name = "(name hidden)"
    lines = [f"Customer {profile.customer_id}: {name or '(no name)'}"]
    for label, key in (
        ("born", "date_of_birth"),
        ("e-mail", "email"),
        ("phone", "phone"),
        ("loyalty card", "loyalty_card"),
        ("customer number", "customer_number"),
    ):
        if g.get(key) is not None:
            lines.append(f"  {label:<16} {_plain(g[key])}   (from {g.get(key + '_source')})")
    address = ", ".join(
        str(g[k]) for k in ("street", "postcode", "city", "country") if g.get(k) is not None
    )
    if address:
        lines.append(f"  {'address':<16} {address}   (from {g.get('address_source')})")
    for label, key in (("all e-mails", "emails"), ("all phones", "phones")):
        if g.get(key):
            lines.append(f"  {label:<16} {', '.join(str(v) for v in g[key])}")
    lines.append(
        f"  {'household':<16} {g.get('household_id') or '-'}"
        + (f" with {', '.join(profile.household_members)}" if profile.household_members else "")
    )
    lines.append(
        f"  {'orders':<16} {g.get('order_count', 0)} worth {_plain(g.get('order_value', 0))} "
        f"({g.get('online_orders', 0)} online, {g.get('in_store_orders', 0)} in store); "
        f"last interaction {_plain(g.get('last_interaction_at'))}"
    )
    lines.append("")
    lines.append(f"Source records ({len(profile.records)}):")
    for record in profile.records:
        shown = ", ".join(
            f"{k}={_plain(v)}"
            for k, v in record.items()
            if v is not None and k not in ("unique_id", "source_system", "source_record_id")
        )
        lines.append(f"  {record['unique_id']:<36} {shown}")
    if profile.products:
        lines.append("")
        lines.append("Products bought:")
        for p in profile.products:
            channels = "/".join(p["channels"] or [])
            lines.append(
                f"  {p['sku']:<10} {p['product_name'] or '':<24} {p['orders']:>3} orders "
                f"{_plain(p['amount']):>9}  {channels}"
            )
    if profile.staff:
        lines.append("")
        lines.append(
            "Served by: " + ", ".join(f"{staff} ({orders})" for staff, orders in profile.staff)
        )
    if profile.id_history:
        lines.append("")
        lines.append("Id history:")
        for event in profile.id_history:
            related = f" -> {event['related_id']}" if event.get("related_id") else ""
            lines.append(
                f"  {_plain(event['event_at'])}  {event['event']:<8} {event['id']}{related} "
                f"({event['members']} records, run {event['run_id']})"
            )
    return "\n".join(lines)


def _customer(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    role = chosen_role(project, args)
    if not project.warehouse.exists():
        print(f"no warehouse yet at {project.warehouse}: run `make demo` first", file=sys.stderr)
        return 1
    with read_warehouse(project.warehouse) as con:
        if not table_exists(con, CUSTOMER_360):
            print("customer_360 is not built yet: materialize the pipeline", file=sys.stderr)
            return 1
        found = find_customers_as(con, role, args.query)
        if not found:
            print(f"no customer matches {args.query!r}", file=sys.stderr)
            return 1
        profiles = [role_customer_profile(con, role, cid) for cid in found]
    print_role_note(project, role)
    if args.json:
        print(json.dumps([_plain(p.__dict__) for p in profiles if p], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(_format(p) for p in profiles if p))
    return 0
