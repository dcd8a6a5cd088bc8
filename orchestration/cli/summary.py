"""``meld summary`` and ``meld check-config``: what the last run produced, and whether a
project config is ready to run.

Examples:
    ```sh
    meld summary                 # records, quarantine, customers, evaluation, where to look
    meld check-config other.yaml # validate a project config without running anything
    ```
"""

from __future__ import annotations

import argparse
import os
import sys

from linkage.audit.ledger import ledger_rows
from linkage.audit.summary import PipelineSummary, read_summary
from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.snapshot import snapshot_path
from linkage.tables import QUALITY_REPORT_FILE
from orchestration.cli.warehouse import read_warehouse


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``summary`` and ``check-config`` to the ``meld`` parser."""
    summary = commands.add_parser("summary", help="what the last pipeline run produced")
    summary.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    summary.set_defaults(handler=_summary)
    check = commands.add_parser("check-config", help="validate a project config")
    check.add_argument("config", nargs="?", help="project config (default: $MELD_CONFIG)")
    check.set_defaults(handler=_check_config)


def _format_summary(project: ProjectConfig, summary: PipelineSummary) -> str:
    lines = [f"Meld summary for {project.config_path}", ""]
    lines.append("Records per source (raw -> staged, quarantined; deliveries; invalid values):")
    for source, counts in summary.sources.items():
        lines.append(
            f"  {source:<24} {counts.raw:>9,} -> {counts.staged:>9,}   "
            f"quarantined {counts.quarantined:>6,}   deliveries {counts.deliveries:>3}   "
            f"invalid values {counts.invalid_values:>6,}"
        )
    lines.append(
        f"  {'total':<24} {summary.raw_total:>9,} -> {summary.staged_total:>9,}   "
        f"quarantined {summary.quarantined_total:>6,}"
    )
    if summary.quarantine_reasons:
        reasons = ", ".join(f"{k} {v:,}" for k, v in summary.quarantine_reasons.items())
        lines.append(f"  quarantine reasons: {reasons}")
    lines.append("")
    if summary.customers is not None:
        lines.append(
            f"Customers: {summary.customers:,} from {summary.clustered:,} records "
            f"({summary.multi_record_customers:,} with more than one record; "
            f"largest has {summary.largest_customer} records)"
        )
    if summary.model_version is not None:
        lines.append(
            f"Model: {project.mlflow.registered_model} version {summary.model_version}, "
            f"match threshold {summary.match_threshold}, MLflow run {summary.mlflow_run_id}"
        )
    e = summary.evaluation
    if "pairwise_f1" in e:
        lines.append(
            "Evaluation against truth: "
            f"pairwise P {e['pairwise_precision']:.4f} R {e['pairwise_recall']:.4f} "
            f"F1 {e['pairwise_f1']:.4f} | cluster P {e['cluster_precision']:.4f} "
            f"R {e['cluster_recall']:.4f} F1 {e['cluster_f1']:.4f}"
        )
        if "bcubed_f1" in e:
            lines.append(
                f"  B-cubed F1 {e['bcubed_f1']:.4f}, adjusted Rand index "
                f"{e['adjusted_rand_index']:.4f}, best threshold {e.get('best_threshold', 0):.3f}"
            )
    if "label_pairwise_f1" in e:
        lines.append(
            f"Evaluation against {int(e.get('label_pairs', 0)):,} clerical labels: "
            f"pairwise P {e['label_pairwise_precision']:.4f} R {e['label_pairwise_recall']:.4f} "
            f"F1 {e['label_pairwise_f1']:.4f} | same customer P "
            f"{e['label_cluster_precision']:.4f} R {e['label_cluster_recall']:.4f} "
            f"F1 {e['label_cluster_f1']:.4f}"
        )
    lines += [
        "",
        "Where to look:",
        f"  warehouse (DuckDB): {project.warehouse}",
        "      browse the copy the last run published with any DuckDB client, e.g. "
        f"duckdb.connect('{snapshot_path(project.warehouse)}', read_only=True)",
        "      (a client holding the warehouse itself open keeps the next run waiting)",
        f"  MLflow store:       {project.mlflow.tracking_uri}",
        f"      make mlflow-ui   (.venv/bin/mlflow ui --backend-store-uri "
        f"{project.mlflow.tracking_uri}) then http://127.0.0.1:5000",
        "  Dagster UI:         make ui   then http://127.0.0.1:3000",
        f"  charts and models:  {project.artifacts}",
        f"  data quality:       {project.artifacts / QUALITY_REPORT_FILE}",
        "      tables: quarantined_records, data_quality_issues, data_quality_profile, "
        "source_deliveries",
        f"  run reports:        {project.artifacts / 'runs'}/<run id>/run_report.html",
        "  audit:              meld runs | meld run <id> | meld diff <a> <b> | "
        "meld explain <record> <record> | meld explain-customer <id> | meld reproduce <id>",
    ]
    return "\n".join(lines)


def _summary(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    if not project.warehouse.exists():
        print(f"no warehouse yet at {project.warehouse}: run `make demo` first", file=sys.stderr)
        return 1
    with read_warehouse(project.warehouse) as con:
        summary = read_summary(con, list(project.sources))
        runs = ledger_rows(con)
    print(_format_summary(project, summary))
    if runs:
        last = runs[-1]
        report = last.entry.get("run_report") or "none (the run failed)"
        print(
            f"\nLast run in the ledger: #{last.seq} {last.run_id} {last.status}; "
            f"{len(runs)} run(s) recorded (meld runs)\n  run report: {report}"
        )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    missing = []
    for name, source in project.sources.items():
        if source.database is not None:
            db = source.database
            if db.kind == "duckdb" and db.path and not project.resolve(db.path).is_file():
                missing.append(
                    f"{project.config_path}: sources.{name}.database.path: "
                    f"no DuckDB file at {project.resolve(db.path)}"
                )
            if db.url_env and not os.environ.get(db.url_env):
                missing.append(
                    f"{project.config_path}: sources.{name}.database.url_env: "
                    f"environment variable {db.url_env} is not set"
                )
            continue
        if not project.source_files(name):
            missing.append(
                f"{project.config_path}: sources.{name}.path: "
                f"no file at {project.source_pattern(name)}"
            )
    for line in missing:
        print(line, file=sys.stderr)
    sources = len(project.sources)
    print(f"{project.config_path}: {sources} sources, config hash {project.fingerprint()}")
    return 1 if missing else 0
