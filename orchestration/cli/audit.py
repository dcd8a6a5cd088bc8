"""``meld runs``, ``meld run``, ``meld diff``, ``meld verify-ledger``, ``meld reproduce``:
the run ledger for auditors.

Examples:
    ```sh
    meld runs                      # every linkage run, newest last
    meld run 1f2e                  # one run: inputs, model, counts, metrics, changes
    meld diff 1f2e 9a0b --json     # two runs compared, moved records included
    meld verify-ledger             # recompute the hash chain
    meld reproduce 1f2e            # re-run scoring and clustering, compare customers
    ```
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from linkage.audit.change_log import run_changes
from linkage.audit.ledger import LedgerError, LedgerRow, find_run, ledger_rows, verify_ledger
from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.tables import LEDGER_HEAD_FILE, PUBLISHED_SNAPSHOT
from linkage.warehouse import table_exists
from orchestration.cli.warehouse import read_warehouse, say

MOVES_SHOWN = 20
HEADLINE_METRICS = ("pairwise_f1", "cluster_f1", "label_pairwise_f1")


def _add(
    commands: argparse._SubParsersAction, name: str, help_text: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def register(commands: argparse._SubParsersAction) -> None:
    """Add the audit commands to the ``meld`` parser."""
    runs = _add(commands, "runs", "list the linkage runs in the ledger")
    runs.add_argument("--limit", type=int, default=50, help="newest N runs (default 50)")
    runs.set_defaults(handler=_runs)
    run = _add(commands, "run", "show one linkage run: inputs, model, counts, changes")
    run.add_argument("run", help="run id, a unique prefix of it, or #<ledger row>")
    run.set_defaults(handler=_run)
    diff = _add(commands, "diff", "compare two linkage runs: counts, metrics, moved records")
    diff.add_argument("run_a", help="the earlier run")
    diff.add_argument("run_b", help="the later run")
    diff.set_defaults(handler=_diff)
    verify = _add(commands, "verify-ledger", "check the ledger's hash chain for tampering")
    verify.add_argument(
        "--repair-head",
        action="store_true",
        help="when a head write was missed (the head file is behind an intact chain), "
        "rewrite the head file to the newest row",
    )
    verify.set_defaults(handler=_verify)
    reproduce = _add(
        commands, "reproduce", "re-run a run's scoring and clustering and compare customers"
    )
    reproduce.add_argument("run", help="run id, a unique prefix of it, or #<ledger row>")
    reproduce.add_argument("--keep", type=Path, help="keep the scratch warehouse in this folder")
    reproduce.add_argument(
        "--from-files",
        action="store_true",
        help="re-ingest the run's input files even when the warehouse still has its records",
    )
    reproduce.set_defaults(handler=_reproduce)


def _project(args: argparse.Namespace) -> ProjectConfig | None:
    project = load_project(args.config or config_path_from_env())
    if not project.warehouse.exists():
        print(f"no warehouse yet at {project.warehouse}: run `make demo` first", file=sys.stderr)
        return None
    return project


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _short(run_id: str) -> str:
    return run_id[:8]


def _duration(entry: Mapping[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(entry["started_at"])
        end = datetime.fromisoformat(entry["ended_at"])
    except (KeyError, TypeError, ValueError):
        return "-"
    return f"{(end - start).total_seconds():.0f}s"


def _runs(args: argparse.Namespace) -> int:
    project = _project(args)
    if project is None:
        return 1
    with read_warehouse(project.warehouse) as con:
        rows = ledger_rows(con)[-args.limit :] if args.limit > 0 else ledger_rows(con)
    if args.json:
        _print_json([_summary(row) for row in rows])
        return 0
    if not rows:
        print("no linkage run recorded yet: materialize the pipeline (make demo)")
        return 0
    header = (
        f"{'#':>4}  {'run':<8}  {'job':<22} {'status':<9} {'started':<19} {'took':>6}  "
        f"{'model':>5}  {'customers':>9} {'merged':>6} {'split':>5} {'moved':>6}  metric"
    )
    print(header)
    for row in rows:
        s = _summary(row)
        counts = s["counts"]
        metric = next(
            (f"{m} {s['metrics'][m]:.4f}" for m in HEADLINE_METRICS if m in s["metrics"]), ""
        )
        if row.status == "failed":
            metric = f"error in {s.get('failed_step') or '?'}: {(s.get('error') or '')[:60]}"
        print(
            f"{row.seq:>4}  {_short(row.run_id):<8}  {str(s['job_name'])[:22]:<22} "
            f"{row.status:<9} {str(s['started_at'] or '')[:19]:<19} {s['took']:>6}  "
            f"{str(s['model_version'] or '-'):>5}  {counts.get('customers', '-'):>9} "
            f"{counts.get('merged', '-'):>6} {counts.get('split', '-'):>5} "
            f"{counts.get('records_moved', '-'):>6}  {metric}"
        )
    return 0


def _summary(row: LedgerRow) -> dict[str, Any]:
    entry = row.entry
    return {
        "seq": row.seq,
        "run_id": row.run_id,
        "status": row.status,
        "job_name": entry.get("job_name"),
        "started_at": entry.get("started_at"),
        "ended_at": entry.get("ended_at"),
        "took": _duration(entry),
        "model_version": entry.get("model_version"),
        "counts": entry.get("counts") or {},
        "metrics": entry.get("metrics") or {},
        "failed_step": entry.get("failed_step"),
        "error": entry.get("error"),
        "row_hash": row.row_hash,
    }


def _with_changes(con: duckdb.DuckDBPyConnection, row: LedgerRow) -> dict[str, Any]:
    data = row.to_dict()
    clustering_run = row.entry.get("clustering_run_id")
    if clustering_run:
        data["changes"] = run_changes(con, clustering_run, limit=MOVES_SHOWN).to_dict()
    return data


def _run(args: argparse.Namespace) -> int:
    project = _project(args)
    if project is None:
        return 1
    with read_warehouse(project.warehouse) as con:
        try:
            row = find_run(con, args.run)
        except LedgerError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        data = _with_changes(con, row)
    if args.json:
        _print_json(data)
    else:
        print(_format_run(data))
    return 0


def _format_run(data: Mapping[str, Any]) -> str:
    e = data["entry"]
    code = e.get("code_version") or {}
    lines = [
        f"Run {data['run_id']} (ledger row #{data['seq']}): {data['status']}",
        f"  job             {e.get('job_name')}",
        f"  started, ended  {e.get('started_at')}  ->  {e.get('ended_at')} ({_duration(e)})",
        f"  MLflow run      {e.get('mlflow_run_id') or '-'}",
        f"  model           {e.get('model_name') or '-'} version {e.get('model_version') or '-'}"
        f" ({e.get('model_alias') or 'no alias'}), trained in MLflow run "
        f"{e.get('model_mlflow_run_id') or '-'}",
        f"  code            git {code.get('git_commit') or 'n/a'}"
        f"{' (uncommitted changes)' if code.get('git_dirty') else ''}, "
        f"meld {code.get('package_version') or 'n/a'}",
        f"  config hash     {e.get('config_hash')} (sha256 {e.get('config_sha256')})",
        f"  row hash        {data['row_hash']}",
    ]
    if data["status"] == "failed":
        lines.append(f"  failed step     {e.get('failed_step')}")
        lines.append(f"  error           {e.get('error')}")
    if e.get("thresholds"):
        lines.append(
            "  thresholds      " + ", ".join(f"{k} {v}" for k, v in sorted(e["thresholds"].items()))
        )
    lines.append("")
    lines.append(f"Inputs ({len(e.get('inputs') or [])} deliveries):")
    for item in e.get("inputs") or []:
        lines.append(
            f"  {item['source']:<20} #{item['delivery_seq']:<3} {item['file']}  "
            f"{item.get('rows')} rows, {item.get('size_bytes')} bytes, "
            f"sha256 {str(item.get('sha256'))[:16]}..."
        )
    if e.get("counts"):
        lines.append("")
        lines.append("Counts:")
        lines += [f"  {k:<24} {v:>10,}" for k, v in e["counts"].items()]
    if e.get("metrics"):
        lines.append("")
        lines.append("Evaluation:")
        lines += [f"  {k:<32} {v:.4f}" for k, v in sorted(e["metrics"].items())]
    changes = data.get("changes")
    if changes:
        lines.append("")
        c = changes["counts"]
        lines.append(
            f"Changes: {c['created']} customers created, {c['merged']} merged, "
            f"{c['split']} split, {c['retired']} retired; {c['records_moved']} records moved"
        )
        for event in changes["events"]:
            if event["event"] != "new":
                related = f" -> {event['related_id']}" if event["related_id"] else ""
                lines.append(
                    f"  {event['event']:<8} {event['customer_id']}{related} "
                    f"({event['records']} records)"
                )
        for move in changes["moves"]:
            lines.append(f"  moved    {move['unique_id']}: {move['from_id']} -> {move['to_id']}")
        for link in changes["merges"]:
            weight = (
                f"match weight {link['match_weight']:.2f}"
                if link["match_weight"] is not None
                else "no model link"
            )
            lines.append(
                f"  merge evidence {link['merged_id']} -> {link['survivor_id']}: "
                f"{link['unique_id_l']} ~ {link['unique_id_r']} ({link['evidence']}, {weight})"
            )
    if e.get("run_report"):
        lines.append("")
        lines.append(f"Report: {e['run_report']}")
    return "\n".join(lines)


def _moved_records(snapshot_a: str | None, snapshot_b: str | None) -> dict[str, Any]:
    if not (
        snapshot_a and snapshot_b and Path(snapshot_a).is_file() and Path(snapshot_b).is_file()
    ):
        return {"available": False}
    con = duckdb.connect()
    try:
        con.register("a", con.read_parquet(snapshot_a).to_arrow_table())
        con.register("b", con.read_parquet(snapshot_b).to_arrow_table())
        counts = con.execute(
            "SELECT count(*) FILTER (WHERE a.unique_id IS NOT NULL AND b.unique_id IS NOT NULL "
            "  AND a.customer_id <> b.customer_id), "
            "count(*) FILTER (WHERE b.unique_id IS NULL), "
            "count(*) FILTER (WHERE a.unique_id IS NULL) "
            "FROM a FULL JOIN b USING (unique_id)"
        ).fetchall()[0]
        moves = con.execute(
            "SELECT unique_id, a.customer_id, b.customer_id FROM a JOIN b USING (unique_id) "
            "WHERE a.customer_id <> b.customer_id ORDER BY unique_id LIMIT ?",
            [MOVES_SHOWN],
        ).fetchall()
    finally:
        con.close()
    return {
        "available": True,
        "records_moved": int(counts[0]),
        "records_only_in_a": int(counts[1]),
        "records_only_in_b": int(counts[2]),
        "moves": [{"unique_id": u, "customer_a": x, "customer_b": y} for u, x, y in moves],
    }


def _diff_data(a: LedgerRow, b: LedgerRow) -> dict[str, Any]:
    ea, eb = a.entry, b.entry

    def side_by_side(key: str) -> dict[str, dict[str, Any]]:
        va, vb = ea.get(key) or {}, eb.get(key) or {}
        out = {}
        for name in sorted(set(va) | set(vb)):
            x, y = va.get(name), vb.get(name)
            delta = y - x if isinstance(x, int | float) and isinstance(y, int | float) else None
            out[name] = {"a": x, "b": y, "delta": delta}
        return out

    files_a = {(i["source"], i["sha256"]) for i in ea.get("inputs") or []}
    return {
        "run_a": {"seq": a.seq, "run_id": a.run_id, "status": a.status},
        "run_b": {"seq": b.seq, "run_id": b.run_id, "status": b.status},
        "model": {"a": ea.get("model_version"), "b": eb.get("model_version")},
        "config_changed": ea.get("config_sha256") != eb.get("config_sha256"),
        "code": {
            "a": (ea.get("code_version") or {}).get("git_commit"),
            "b": (eb.get("code_version") or {}).get("git_commit"),
        },
        "thresholds": side_by_side("thresholds"),
        "counts": side_by_side("counts"),
        "metrics": side_by_side("metrics"),
        "new_inputs": [
            i for i in eb.get("inputs") or [] if (i["source"], i["sha256"]) not in files_a
        ],
        "same_customers": ea.get("partition_sha256") == eb.get("partition_sha256"),
        "moved_records": _moved_records(ea.get("customers_snapshot"), eb.get("customers_snapshot")),
    }


def _diff(args: argparse.Namespace) -> int:
    project = _project(args)
    if project is None:
        return 1
    with read_warehouse(project.warehouse) as con:
        try:
            a, b = find_run(con, args.run_a), find_run(con, args.run_b)
        except LedgerError as exc:
            print(str(exc), file=sys.stderr)
            return 1
    data = _diff_data(a, b)
    if args.json:
        _print_json(data)
        return 0
    lines = [
        f"Run #{a.seq} {_short(a.run_id)} ({a.status})  vs  run #{b.seq} {_short(b.run_id)} "
        f"({b.status})",
        f"  model version   {data['model']['a']} -> {data['model']['b']}",
        f"  config          {'changed' if data['config_changed'] else 'same'}",
        f"  code            {data['code']['a']} -> {data['code']['b']}",
        f"  customers       {'same grouping' if data['same_customers'] else 'grouping differs'}",
    ]
    for section in ("thresholds", "counts", "metrics"):
        if data[section]:
            lines.append(f"{section.capitalize()}:")
            for name, v in data[section].items():
                delta = "" if v["delta"] is None else f"  ({v['delta']:+g})"
                lines.append(f"  {name:<32} {v['a']!s:>12} -> {v['b']!s:<12}{delta}")
    if data["new_inputs"]:
        lines.append("New input deliveries:")
        lines += [f"  {i['source']}: {i['file']} ({i['rows']} rows)" for i in data["new_inputs"]]
    moved = data["moved_records"]
    if moved["available"]:
        lines.append(
            f"Records: {moved['records_moved']} moved to another customer, "
            f"{moved['records_only_in_a']} only in run a, "
            f"{moved['records_only_in_b']} only in run b"
        )
        lines += [
            f"  {m['unique_id']}: {m['customer_a']} -> {m['customer_b']}" for m in moved["moves"]
        ]
    else:
        lines.append("Records: a customers snapshot is missing; moved records not compared")
    print("\n".join(lines))
    return 0


def _verify(args: argparse.Namespace) -> int:
    project = _project(args)
    if project is None:
        return 1
    head = project.artifacts / LEDGER_HEAD_FILE
    notes: list[str] = []
    with read_warehouse(project.warehouse) as con:
        if table_exists(con, PUBLISHED_SNAPSHOT):
            # A run is writing: the live head may be ahead of the snapshot's rows.
            notes.append("read the published snapshot: the head file was not compared")
            result = verify_ledger(con)
        else:
            result = verify_ledger(con, head_file=head, repair_head=args.repair_head)
    notes += list(result.notes)
    if args.json:
        _print_json(
            {"ok": result.ok, "rows": result.rows, "problems": result.problems, "notes": notes}
        )
        return 0 if result.ok else 1
    if not result.ok:
        print(f"ledger BROKEN: {len(result.problems)} problem(s) in {result.rows} rows")
        for problem in result.problems:
            print(f"  {problem}")
    elif notes:
        print(f"ledger intact: {result.rows} rows, hash chain verified")
    else:
        print(f"ledger intact: {result.rows} rows, hash chain and head file ({head}) agree")
    for note in notes:
        print(f"  note: {note}")
    return 0 if result.ok else 1


def _reproduce(args: argparse.Namespace) -> int:
    from orchestration.reproduce import reproduce_run  # loads Dagster: only when asked

    project = _project(args)
    if project is None:
        return 1
    try:
        outcome = reproduce_run(
            project, args.run, keep_folder=args.keep, from_files=args.from_files, notice=say
        )
    except LedgerError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.json:
        _print_json(outcome.to_dict())
    else:
        o = outcome
        verdict = {True: "IDENTICAL", False: "DIFFERENT", None: "NOT REPRODUCIBLE"}[o.identical]
        lines = [f"Run {o.run_id}: customers {verdict}"]
        if o.identical is not None:
            lines += [
                f"  inputs from     {o.inputs}",
                f"  model           {o.model_name} version {o.model_version}, threshold "
                f"{o.match_threshold}, clustering {o.clustering_method}",
                f"  overrides       {o.overrides_applied} steward decisions recorded by the "
                "run's end",
                f"  customers       {o.customers_recorded} recorded, {o.customers_reproduced} "
                "reproduced",
                f"  partition hash  {o.partition_sha256_recorded}",
                f"                  {o.partition_sha256_reproduced}",
            ]
            if o.records_in_other_customers is not None:
                lines.append(f"  records grouped differently: {o.records_in_other_customers}")
            lines.append(f"  took {o.seconds}s")
        lines += [f"  problem: {p}" for p in o.problems]
        print("\n".join(lines))
    return {True: 0, False: 1, None: 2}[outcome.identical]
