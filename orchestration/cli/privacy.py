"""``meld erase``, ``meld erasures`` and ``meld revoke-erasure``: forget a person on request.

``meld erase`` shows what would go (rows per table, files; never a value), asks for
confirmation (or takes ``--yes``), then removes the records from every table and file,
re-clusters the customers, refuses the records on later deliveries and records the
erasure in the ledger with a keyed hash of the subject. ``docs/erasure.md`` is the guide.

Examples:
    ```sh
    meld erase cus_04f0b242742c4e75 --requested-by dpo@shop.se --reason "GDPR ticket 4711"
    meld erase anna.berg@example.com --requested-by dpo --reason "ticket 4712" --dry-run
    meld erasures --json
    meld revoke-erasure era_1f2e3d4c5b6a7988 --requested-by dpo --reason "ticket 4711 withdrawn"
    ```
"""

from __future__ import annotations

import argparse
import json
import sys

from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.privacy.erasure import (
    ErasureOutcome,
    ErasurePreview,
    apply_erasure,
    preview_erasure,
    revoke_erasure,
)
from linkage.privacy.erasure_log import erasure_events
from linkage.privacy.spec import erasure_spec
from orchestration.cli.warehouse import read_warehouse, write_warehouse

FILES_SHOWN = 20


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``erase``, ``erasures`` and ``revoke-erasure`` to the ``meld`` parser."""
    erase = commands.add_parser(
        "erase",
        help="erase a person (GDPR): every table and file, refused on later deliveries",
        description="Erase the records a subject names from every table and file, "
        "re-cluster the customers, deny the records on later deliveries and record the "
        "erasure in the ledger (a keyed hash of the subject, no personal data).",
    )
    erase.add_argument("subject", help="customer id, <source>:<record id>, e-mail or phone number")
    _who_and_why(erase)
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.add_argument("--dry-run", action="store_true", help="show what would go, change nothing")
    erase.add_argument("--json", action="store_true", help="print the outcome as JSON")
    erase.set_defaults(handler=_erase)
    listing = commands.add_parser(
        "erasures", help="list the erasures and revokes (no personal data)"
    )
    listing.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_erasures)
    revoke = commands.add_parser(
        "revoke-erasure",
        help="let an erased person's records in again on later deliveries",
    )
    revoke.add_argument("erasure_id", help="the erasure id (era_...) from `meld erasures`")
    _who_and_why(revoke)
    revoke.set_defaults(handler=_revoke)


def _who_and_why(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requested-by", required=True, help="who asked (kept in the ledger)")
    parser.add_argument(
        "--reason", required=True, help="why: a ticket or case number, not the person's name"
    )
    parser.add_argument("--config", help="project config (default: $MELD_CONFIG)")


def _project(args: argparse.Namespace) -> ProjectConfig:
    return load_project(args.config or config_path_from_env())


def _print_preview(preview: ErasurePreview, *, out=sys.stdout) -> None:
    target = preview.target
    print(
        f"Erasing {preview.subject.describe()}: {len(target.records)} record(s)"
        + (f" and {len(target.raw_rows)} row(s) without id" if target.raw_rows else "")
        + f", of {len(target.customers)} customer(s).",
        file=out,
    )
    print("Rows per table:", file=out)
    for table, rows in sorted(preview.counts.items()):
        print(f"  {table:<36} {rows:>7}", file=out)
    changes = [*preview.files, *preview.record_files]
    print(f"Files holding the person's values: {len(changes)}", file=out)
    for change in changes[:FILES_SHOWN]:
        verb = "delete" if change.action == "deleted" else "rewrite"
        print(f"  {verb:<8} {change.path}", file=out)
    if len(changes) > FILES_SHOWN:
        print(f"  ... and {len(changes) - FILES_SHOWN} more", file=out)


def _confirmed(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("meld erase: pass --yes to erase without a terminal to confirm", file=sys.stderr)
        return False
    answer = input("Erase these records for good? Type 'erase' to go on: ")
    return answer.strip().lower() == "erase"


def _outcome_json(outcome: ErasureOutcome) -> dict:
    return {
        "erasure_id": outcome.erasure_id,
        "rows_by_table": outcome.counts,
        "deny_list_entries": outcome.deny_entries,
        "customer_ids": {
            "kept": outcome.rebuild.kept,
            "retired": outcome.rebuild.retired,
            "split": outcome.rebuild.split,
        },
        "files": [
            {"path": str(c.path), "action": c.action, "rows_removed": c.rows_removed}
            for c in [*outcome.files, *outcome.record_files]
        ],
        "leftover_columns": [f"{t}.{c}" for t, c in outcome.leftovers],
        "ledger_seq": outcome.ledger_seq,
    }


def _print_outcome(outcome: ErasureOutcome) -> None:
    rows = sum(outcome.counts.values())
    files = [*outcome.files, *outcome.record_files]
    print(
        f"Erasure {outcome.erasure_id}: {rows} row(s) in {len(outcome.counts)} table(s), "
        f"{len(files)} file(s); {outcome.deny_entries} deny-list entries; ledger row "
        f"#{outcome.ledger_seq}."
    )
    for change in files:
        print(f"  {change.action:<9} {change.path}")
    if outcome.rebuild.rebuilt:
        r = outcome.rebuild
        print(
            f"Customers rebuilt: {r.customers}; ids kept {r.kept}, retired {r.retired}, "
            f"split {r.split}."
        )
    for table, column in outcome.leftovers:
        print(
            f"WARNING: {table}.{column} still names an erased record: Meld does not know this "
            "table; remove the rows by hand and report it",
            file=sys.stderr,
        )


def _erase(args: argparse.Namespace) -> int:
    project = _project(args)
    spec = erasure_spec(project)
    shown = sys.stderr if args.json else sys.stdout
    if args.dry_run:
        with read_warehouse(project.warehouse) as con:
            _print_preview(preview_erasure(con, spec, args.subject), out=shown)
        return 0
    # Compacted afterwards: DuckDB leaves deleted values in the file's free blocks.
    with write_warehouse(project.warehouse, command="meld erase", compact=True) as con:
        preview = preview_erasure(con, spec, args.subject)
        _print_preview(preview, out=shown)
        if not _confirmed(args):
            print("nothing erased", file=sys.stderr)
            return 1
        outcome = apply_erasure(
            con, spec, preview, requested_by=args.requested_by, reason=args.reason
        )
    if args.json:
        print(json.dumps(_outcome_json(outcome), indent=2))
    else:
        _print_outcome(outcome)
    return 1 if outcome.leftovers else 0


def _erasures(args: argparse.Namespace) -> int:
    project = _project(args)
    if not project.warehouse.exists():
        print(f"no warehouse yet at {project.warehouse}", file=sys.stderr)
        return 1
    with read_warehouse(project.warehouse) as con:
        events = erasure_events(con)
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2))
        return 0
    if not events:
        print("no erasure recorded")
        return 0
    print(
        f"{'erasure':<21} {'event':<8} {'when (UTC)':<19} {'subject':<8} {'hash':<12} "
        f"{'rows':>6} {'files':>5} {'deny':>5} {'ledger':>6}  requested by: reason"
    )
    for e in events:
        print(
            f"{e.erasure_id:<21} {e.event:<8} {e.recorded_at.isoformat()[:19]:<19} "
            f"{e.subject_kind or '-':<8} {(e.subject_hash or '')[:12]:<12} "
            f"{sum(e.counts.values()):>6} {e.files:>5} {e.deny_entries:>5} "
            f"{'#' + str(e.ledger_seq) if e.ledger_seq else '-':>6}  {e.requested_by}: {e.reason}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    project = _project(args)
    spec = erasure_spec(project)
    with write_warehouse(project.warehouse, command="meld revoke-erasure") as con:
        event = revoke_erasure(
            con, spec, args.erasure_id, requested_by=args.requested_by, reason=args.reason
        )
    print(
        f"Erasure {event.erasure_id} revoked: {event.deny_entries} deny-list entries lifted "
        f"(ledger row #{event.ledger_seq}); its records are let in by the next delivery. "
        "What was erased stays erased."
    )
    return 0
