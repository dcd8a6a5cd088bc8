"""Audit benchmark: what the run ledger, explain and reproduce cost, as one table.

Generates ``linkage.demo.generator`` for ``--persons`` persons (or reuses ``--data-dir``),
runs the whole pipeline once, then times, each on its own:

- ``linkage_runs``: the ledger step alone (hashes, customers snapshot, run report,
  MLflow linkage run), materialized again after the pipeline;
- ``verify-ledger``: recomputing the hash chain;
- ``explain pair`` and ``explain customer``: the strongest pair and the largest customer;
- ``reproduce (warehouse)``: re-scoring and re-clustering the run's records;
- ``reproduce (files)``: the same after re-ingesting the run's input files.

Peak memory is sampled (every 50 ms) over this process and its children. The exit
code is 1 when a reproduction is not identical.

Usage::

    python benchmarks/audit.py [--persons 10000] [--seed 42] [--data-dir DIR] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psutil
import yaml

from linkage.audit.explain.customer import explain_customer
from linkage.audit.explain.pair import explain_pair
from linkage.audit.ledger import ledger_rows, verify_ledger
from linkage.config import ProjectConfig, load_project
from linkage.tables import CUSTOMER_CLUSTERS, CUSTOMER_RECORDS, LINKAGE_RUNS, PAIRWISE_MATCHES
from orchestration.build import build_assets, build_resources
from orchestration.reproduce import reproduce_run

ROOT = Path(__file__).resolve().parents[1]

SAMPLE_SECONDS = 0.05


@dataclass
class Step:
    """One timed step."""

    name: str
    seconds: float
    peak_mb: float
    note: str = ""


@contextmanager
def sampled_peak() -> Iterator[list[float]]:
    """Sample the RSS of this process and its children; yields a one-item list (MB)."""
    peak = [0.0]
    done = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not done.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            peak[0] = max(peak[0], total / 1e6)
            done.wait(SAMPLE_SECONDS)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def timed(name: str, action: Callable[[], Any], note: Callable[[Any], str] | None = None) -> Step:
    """Run ``action`` and measure it."""
    with sampled_peak() as peak:
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
    return Step(name, round(seconds, 2), round(peak[0], 0), note(result) if note else "")


def prepare(data_dir: Path | None, work: Path, persons: int, seed: int) -> ProjectConfig:
    """A project over generated (or given) demo data, with its own warehouse and MLflow."""
    if data_dir is None:
        data_dir = work / "data"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "linkage.demo",
                str(data_dir),
                "--persons",
                str(persons),
                "--seed",
                str(seed),
            ],
            check=True,
            cwd=ROOT,
        )
    config = yaml.safe_load((data_dir / "meld.yaml").read_text(encoding="utf-8"))
    for source in config["sources"].values():
        source["path"] = str((data_dir / source["path"]).resolve())
    config["truth"]["path"] = str((data_dir / config["truth"]["path"]).resolve())
    for spec in config.get("relationships", {}).values():
        spec["path"] = str((data_dir / spec["path"]).resolve())
    config.update(
        data_roots=[str(data_dir.resolve())],
        warehouse=str(work / "warehouse.duckdb"),
        artifacts=str(work / "artifacts"),
        mlflow={
            "tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
            "experiment": "audit-benchmark",
            "artifact_location": str(work / "mlartifacts"),
        },
    )
    path = work / "project.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return load_project(path)


def run(project: ProjectConfig) -> list[Step]:
    """Every measured step, the pipeline first."""
    assets, resources = build_assets(project), build_resources(project)
    steps = [
        timed(
            "pipeline (all assets)",
            lambda: dg.materialize(assets, resources=resources),
            lambda r: f"{'ok' if r.success else 'FAILED'}",
        ),
        timed(
            "linkage_runs alone",
            lambda: dg.materialize(assets, resources=resources, selection=LINKAGE_RUNS),
        ),
    ]
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        records = con.execute(f"SELECT count(*) FROM {CUSTOMER_RECORDS}").fetchall()[0][0]
        steps.append(
            timed(
                "verify-ledger",
                lambda: verify_ledger(con),
                lambda v: f"{v.rows} rows, {'intact' if v.ok else 'BROKEN'}",
            )
        )
        left, right = con.execute(
            f"SELECT unique_id_l, unique_id_r FROM {PAIRWISE_MATCHES} "
            "ORDER BY match_weight DESC LIMIT 1"
        ).fetchall()[0]
        steps.append(timed("explain pair", lambda: explain_pair(con, left, right)))
        largest = con.execute(
            f"SELECT customer_id FROM {CUSTOMER_CLUSTERS} ORDER BY customer_record_count DESC, "
            "customer_id LIMIT 1"
        ).fetchall()[0][0]
        steps.append(
            timed(
                "explain customer (largest)",
                lambda: explain_customer(con, largest),
                lambda e: f"{len(e.records)} records",
            )
        )
        run_id = ledger_rows(con)[-1].run_id
    for name, from_files in (("reproduce (warehouse)", False), ("reproduce (files)", True)):
        steps.append(
            timed(
                name,
                lambda f=from_files: reproduce_run(project, run_id, from_files=f),
                lambda o: f"{'identical' if o.identical else 'NOT identical'} {o.problems or ''}",
            )
        )
    steps[0].note += f", {records:,} records"
    return steps


def format_table(steps: list[Step]) -> str:
    """The steps as a fixed-width table."""
    lines = [f"{'step':<28} {'seconds':>8} {'peak MB':>8}  note"]
    lines += [f"{s.name:<28} {s.seconds:>8.2f} {s.peak_mb:>8,.0f}  {s.note}" for s in steps]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, help="generated demo data to reuse")
    parser.add_argument("--work-dir", type=Path, help="keep the warehouse here")
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="meld-audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        project = prepare(args.data_dir, work, args.persons, args.seed)
        steps = run(project)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(steps))
    return 0 if all("NOT identical" not in s.note for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
