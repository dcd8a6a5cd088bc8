"""``meld override``: record, load and list steward decisions (who and why required).

Each command writes to (or reads) the warehouse of the project config; decisions take
effect at the next clustering run (the ``customer_clusters`` asset). See
:mod:`linkage.cluster.overrides.clustering` for what is in force and what an unmerge cuts.

Examples:
    ```sh
    meld override must-link crm_contacts:17 webshop_accounts:4 --steward anna \\
        --reason "same passport, ticket 812"
    meld override cannot-link crm_contacts:17 crm_contacts:18 --steward anna --reason twins
    meld override unmerge pos_loyalty:9 --steward ben --reason "family card"
    meld override revoke crm_contacts:17 webshop_accounts:4 --steward anna \\
        --reason "ticket 812 reopened"
    meld override revoke pos_loyalty:9 --steward ben --reason "undo unmerge"
    meld override list --json
    meld override load            # the file named by overrides.path in the config
    ```
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path

import duckdb

from linkage.cluster.overrides.csv_file import load_overrides_csv
from linkage.cluster.overrides.decisions import (
    CANNOT_LINK,
    MUST_LINK,
    REVOKE,
    UNMERGE,
    Decision,
    OverrideError,
    list_overrides,
    make_decision,
    record_decision,
    unknown_records,
)
from linkage.cluster.overrides.in_force import PairDecision, effective_overrides, resolve_unmerges
from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.tables import CUSTOMER_CLUSTERS, CUSTOMER_RECORDS
from linkage.warehouse import quote, table_exists
from orchestration.cli.warehouse import read_warehouse, write_warehouse

Handler = Callable[[argparse.Namespace], int]


def _echo(text: str, *, err: bool = False) -> None:
    """Write one message for the person at the terminal."""
    print(text, file=sys.stderr if err else sys.stdout)


def _project(args: argparse.Namespace) -> ProjectConfig:
    return load_project(args.config or config_path_from_env())


def _warehouse(
    project: ProjectConfig, *, read_only: bool
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The project's warehouse: a write holds the run lock, so it is refused while a run
    writes; a read uses the published snapshot then."""
    if read_only:
        return read_warehouse(project.warehouse, error=OverrideError)
    return write_warehouse(project.warehouse, command="meld override", error=OverrideError)


def _guarded(handler: Handler) -> Handler:
    """Turn an :class:`OverrideError` into a message on stderr and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except OverrideError as exc:
            _echo(f"meld override: {exc}", err=True)
            return 1

    return run


def _check_records(con: duckdb.DuckDBPyConnection, decision: Decision) -> None:
    records = [r for r in (decision.record_a, decision.record_b) if r is not None]
    try:
        unknown = unknown_records(con, records, CUSTOMER_RECORDS)
    except OverrideError as exc:
        raise OverrideError(f"{exc}; or pass --allow-unknown") from exc
    if unknown:
        raise OverrideError(
            f"no record {', '.join(unknown)} in {CUSTOMER_RECORDS} (expected '<source>:<id>' "
            "as in its unique_id column); pass --allow-unknown to record it anyway"
        )


def _customer_of(con: duckdb.DuckDBPyConnection, record: str) -> tuple[str, int] | None:
    """The record's customer in customer_clusters and its record count, if known."""
    if not table_exists(con, CUSTOMER_CLUSTERS):
        return None
    rows = con.execute(
        f"SELECT customer_id, customer_record_count FROM {quote(CUSTOMER_CLUSTERS)} "
        "WHERE unique_id = ?",
        [record],
    ).fetchall()
    return (rows[0][0], int(rows[0][1])) if rows else None


def _describe(pair: PairDecision) -> str:
    """The decision in force on a pair, and the steward decision it comes from."""
    if pair.override.decision == pair.decision:
        return pair.override.describe()
    return f"{pair.decision} from {pair.override.describe()}"


def _check_revoke(con: duckdb.DuckDBPyConnection, decision: Decision) -> str:
    """What the revoke cancels; an error when nothing is in force."""
    overrides = effective_overrides(con)
    if decision.record_b is None:
        unmerges = [u for u in overrides.unmerges if u.record_a == decision.record_a]
        if not unmerges:
            raise OverrideError(f"no unmerge of {decision.record_a} is in force to revoke")
        return "; ".join(u.describe() for u in unmerges)
    current = overrides.for_pair(decision.record_a, decision.record_b)
    if current is None:
        raise OverrideError(
            f"no decision between {decision.record_a} and {decision.record_b} is in force "
            "to revoke (see `meld override list`)"
        )
    return _describe(current)


def _record(args: argparse.Namespace, *, kind: str) -> int:
    project = _project(args)
    decision = make_decision(
        kind,
        args.record_a,
        getattr(args, "record_b", None),
        steward=args.steward,
        reason=args.reason,
        decided_at=args.decided_at,
    )
    with _warehouse(project, read_only=False) as con:
        note = ""
        if kind == REVOKE:
            note = f"cancels {_check_revoke(con, decision)}"
        else:
            if not args.allow_unknown:
                _check_records(con, decision)
            if kind == UNMERGE:
                customer = _customer_of(con, decision.record_a)
                if customer is not None and customer[1] == 1:
                    raise OverrideError(
                        f"{decision.record_a} is already alone in customer {customer[0]}; "
                        "nothing to unmerge"
                    )
            else:
                assert decision.record_b is not None  # pair decisions name two records
                previous = effective_overrides(con).for_pair(decision.record_a, decision.record_b)
                if previous is not None:
                    note = f"replaces {_describe(previous)}"
        override, added = record_decision(con, decision)
        if kind == UNMERGE:
            resolution = resolve_unmerges(con, clusters_table=CUSTOMER_CLUSTERS)
            customer = _customer_of(con, decision.record_a)
            if decision.record_a in resolution.pending or customer is None:
                note = "resolved against its customer at the next clustering run"
            else:
                note = (
                    f"leaves customer {customer[0]} "
                    f"({customer[1] - 1} other record(s) become cannot-links)"
                )
    verb = "recorded" if added else "already recorded"
    _echo(f"{verb} {override.describe()}")
    if note:
        _echo(f"  {note}")
    _echo("  takes effect at the next clustering run (customer_clusters)")
    return 0


def _list(args: argparse.Namespace) -> int:
    project = _project(args)
    if not project.warehouse.exists():
        history, in_force = [], frozenset()
    else:
        with _warehouse(project, read_only=True) as con:
            history = list_overrides(con)
            in_force = effective_overrides(con).in_force_ids
    if args.json:
        rows = [{**o.to_json(), "in_force": o.override_id in in_force} for o in history]
        _echo(json.dumps(rows, indent=2))
        return 0
    if not history:
        _echo(f"no steward overrides recorded in {project.warehouse}")
        return 0
    header = ("override_id", "decided_at", "decision", "record_a", "record_b", "steward")
    header += ("origin", "in_force", "reason")
    table = [header] + [
        (
            o.override_id,
            o.decided_at.isoformat(sep=" ", timespec="seconds"),
            o.decision,
            o.record_a,
            o.record_b or "",
            o.steward,
            o.origin,
            "yes" if o.override_id in in_force else "",
            o.reason,
        )
        for o in history
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        _echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _load(args: argparse.Namespace) -> int:
    project = _project(args)
    if args.path:
        path = Path(args.path).expanduser().resolve()
    elif project.overrides.path:
        path = project.resolve(project.overrides.path)
    else:
        raise OverrideError(
            f"{project.config_path}: overrides.path is not set; name the file to load"
        )
    with _warehouse(project, read_only=False) as con:
        load = load_overrides_csv(con, path)
        resolve_unmerges(con, clusters_table=CUSTOMER_CLUSTERS)
        warnings = effective_overrides(
            con, records_table=CUSTOMER_RECORDS if table_exists(con, CUSTOMER_RECORDS) else None
        ).warnings
    _echo(f"{path}: {load.rows} decision(s), {load.added} new, {load.already_recorded} known")
    for line in warnings:
        _echo(f"  warning: {line}", err=True)
    return 0


def _with_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="project config (default: $MELD_CONFIG)")


def _with_decision(parser: argparse.ArgumentParser, *, check_records: bool = True) -> None:
    parser.add_argument("--steward", required=True, help="who decides (required)")
    parser.add_argument("--reason", required=True, help="why (required)")
    parser.add_argument(
        "--decided-at",
        help="when it was decided, ISO 8601 (default now); the latest decision wins",
    )
    if check_records:
        parser.add_argument(
            "--allow-unknown",
            action="store_true",
            help=f"record it even if a record is not in {CUSTOMER_RECORDS} (yet)",
        )
    _with_config(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``meld override ...`` to the ``meld`` command's subparsers.

    Examples:
        ```py
        parser = argparse.ArgumentParser(prog="meld")
        register(parser.add_subparsers(dest="command", required=True))
        ```
    """
    override = subparsers.add_parser(
        "override",
        help="steward decisions: must-link, cannot-link, unmerge, revoke, list, load",
        description="Record, load and list steward decisions (who and why required).",
    )
    commands = override.add_subparsers(dest="override_command", required=True)
    for name, kind, text in (
        ("must-link", MUST_LINK, "two records are one customer, whatever the model says"),
        ("cannot-link", CANNOT_LINK, "two records are never one customer"),
    ):
        parser = commands.add_parser(name, help=text, description=text)
        parser.add_argument("record_a", help="unique_id, <source>:<id>")
        parser.add_argument("record_b", help="unique_id, <source>:<id>")
        _with_decision(parser)
        parser.set_defaults(handler=_guarded(partial(_record, kind=kind)))
    text = "take a record out of its customer (cannot-link with its other records)"
    parser = commands.add_parser("unmerge", help=text, description=text)
    parser.add_argument("record_a", help="unique_id, <source>:<id>")
    _with_decision(parser)
    parser.set_defaults(handler=_guarded(partial(_record, kind=UNMERGE)))
    text = "cancel the decision in force between two records, or the unmerge of one"
    parser = commands.add_parser("revoke", help=text, description=text)
    parser.add_argument("record_a", help="unique_id, <source>:<id>")
    parser.add_argument("record_b", nargs="?", help="the other record; omit to revoke an unmerge")
    _with_decision(parser, check_records=False)
    parser.set_defaults(handler=_guarded(partial(_record, kind=REVOKE)))
    text = "every recorded decision, oldest first, and whether it is in force"
    parser = commands.add_parser("list", help=text, description=text)
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    _with_config(parser)
    parser.set_defaults(handler=_guarded(_list))
    text = "load a file of decisions (default overrides.path); loading it again adds nothing"
    parser = commands.add_parser("load", help=text, description=text)
    parser.add_argument("path", nargs="?", help="CSV of decisions (default: overrides.path)")
    _with_config(parser)
    parser.set_defaults(handler=_guarded(_load))
