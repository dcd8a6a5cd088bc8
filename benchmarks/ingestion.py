"""Ingestion benchmark: raw load and staging of generated demo data, per source, as one table.

Generates ``linkage.demo.generator`` for ``--persons`` persons (300,000 persons give about a
million records in four sources), or reuses the data in ``--data-dir``, then for each
source runs the two ingestion steps exactly as the ``raw_<source>`` and
``staged_<source>`` assets do (same functions, same arguments from the demo's
``meld.yaml``), each on its own connection to a fresh DuckDB file in the work folder.

For each source and step the table shows the rows produced, the wall time, the CPU time
(this process with its DuckDB threads, plus the staging worker processes of
:mod:`linkage.parallel`) and the peak resident memory. Memory is *sampled*: a thread adds
up the RSS of this process and its worker processes every 50 ms, so a spike shorter than
that can be missed, and pages shared between processes count once per process. The
generator runs in a child process, so its memory is not counted.

The total line sums the times and takes the largest peak; it passes when raw to staged
takes under ``--max-seconds`` (60) and under ``--max-memory-gb`` (3) GB. The exit code is
1 when a target is missed.

Usage::

    python benchmarks/ingestion.py [--persons 300000] [--seed 42] [--data-dir DIR]
        [--work-dir DIR] [--json results.json] [--max-seconds 60] [--max-memory-gb 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import psutil

from linkage import parallel
from linkage.config import ProjectConfig, SourceConfig, load_project
from linkage.ingest.steps import load_source, stage_and_record

logger = logging.getLogger("benchmarks.ingestion")

CONFIG_FILE = "meld.yaml"
WAREHOUSE_FILE = "ingestion.duckdb"
BENCHMARK_RUN_ID = "ingestion-benchmark"
SAMPLE_SECONDS = 0.05
"""How often the memory sampler reads the RSS of this process and its workers."""


@dataclass(frozen=True)
class StageRow:
    """One step of one source: what it produced and what it cost."""

    source: str
    stage: str
    rows: int
    quarantined: int | None
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Totals:
    """The whole raw-to-staged run against its targets."""

    raw_rows: int
    staged_rows: int
    quarantined: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    max_seconds: float
    max_memory_mb: float

    @property
    def fast_enough(self) -> bool:
        return self.seconds < self.max_seconds

    @property
    def small_enough(self) -> bool:
        return self.peak_rss_mb < self.max_memory_mb

    @property
    def passed(self) -> bool:
        return self.fast_enough and self.small_enough


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


def _processes() -> list[psutil.Process]:
    """This process and its children (the worker processes), as far as they still exist."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def _rss_bytes() -> int:
    total = 0
    for process in _processes():
        try:
            total += process.memory_info().rss
        except psutil.Error:  # a worker that just exited has no memory to count
            continue
    return total


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its live children."""
    total = 0.0
    for process in _processes():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


@dataclass
class Measurement:
    """Filled in by :func:`measure` when its block ends."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0


@contextmanager
def measure() -> Iterator[Measurement]:
    """Wall time, CPU time and sampled peak RSS (this process plus workers) of a block.

    Examples:
        ```py
        with measure() as cost:
            stage_source(con, ...)
        cost.seconds, cost.peak_rss_mb
        ```
    """
    result = Measurement()
    peak = _rss_bytes()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(SAMPLE_SECONDS):
            peak = max(peak, _rss_bytes())

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    sampler.start()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        result.cpu_seconds = _cpu_seconds() - cpu_before
        result.peak_rss_mb = max(peak, _rss_bytes()) / 1e6


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #


def prepare_data(data_dir: Path, *, persons: int, seed: int) -> float:
    """Generate demo data into ``data_dir`` unless its ``meld.yaml`` exists; the seconds taken.

    The generator runs in a child process, so its memory does not count against ingestion.
    """
    if (data_dir / CONFIG_FILE).is_file():
        logger.info("reusing the data in %s", data_dir)
        return 0.0
    started = time.perf_counter()
    command = [sys.executable, "-m", "linkage.demo", str(data_dir)]
    command += ["--persons", str(persons), "--seed", str(seed)]
    logger.info("generating %d persons into %s", persons, data_dir)
    subprocess.run(command, check=True, stdout=sys.stderr)
    return time.perf_counter() - started


Step = Callable[[duckdb.DuckDBPyConnection, ProjectConfig, str], tuple[int, int | None]]
"""One ingestion step of one source: (rows produced, rows quarantined or None)."""


def raw_step(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, name: str
) -> tuple[int, int | None]:
    """``raw_<name>`` as the raw asset loads it (file sources); (rows, None)."""
    result = load_source(con, project.raw_source_spec(name), run_id=BENCHMARK_RUN_ID)
    return result.rows, None


def staged_step(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, name: str
) -> tuple[int, int | None]:
    """``staged_<name>`` as the staged asset builds it; (staged rows, quarantined rows)."""
    result = stage_and_record(con, project.staging_spec(name), run_id=BENCHMARK_RUN_ID)
    return result.staged_rows, result.quarantined_rows


def _file_sources(project: ProjectConfig) -> dict[str, SourceConfig]:
    skipped = [name for name, source in project.sources.items() if not source.path]
    if skipped:
        logger.warning("skipping sources without files (database sources): %s", skipped)
    return {name: source for name, source in project.sources.items() if source.path}


def run_benchmark(
    data_dir: Path, work_dir: Path, *, max_seconds: float, max_memory_mb: float
) -> tuple[list[StageRow], Totals]:
    """Load and stage every file source of the demo in ``data_dir``; one row per step.

    Raises:
        FileNotFoundError: ``data_dir`` has no ``meld.yaml``.
    """
    project = load_project(data_dir / CONFIG_FILE)
    work_dir.mkdir(parents=True, exist_ok=True)
    warehouse = work_dir / WAREHOUSE_FILE
    for stale in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        stale.unlink(missing_ok=True)

    rows: list[StageRow] = []

    def run(name: str, stage: str, step: Step) -> None:
        with measure() as cost, duckdb.connect(str(warehouse)) as con:
            produced, quarantined = step(con, project, name)
        row = StageRow(
            source=name,
            stage=stage,
            rows=produced,
            quarantined=quarantined,
            seconds=round(cost.seconds, 2),
            cpu_seconds=round(cost.cpu_seconds, 2),
            peak_rss_mb=round(cost.peak_rss_mb, 1),
        )
        logger.info("%s %s: %s rows in %.1f s", name, stage, f"{row.rows:,}", row.seconds)
        rows.append(row)

    try:
        for name in _file_sources(project):
            run(name, "raw", raw_step)
            run(name, "staged", staged_step)
    finally:
        parallel.shutdown()

    totals = Totals(
        raw_rows=sum(r.rows for r in rows if r.stage == "raw"),
        staged_rows=sum(r.rows for r in rows if r.stage == "staged"),
        quarantined=sum(r.quarantined or 0 for r in rows),
        seconds=round(sum(r.seconds for r in rows), 2),
        cpu_seconds=round(sum(r.cpu_seconds for r in rows), 2),
        peak_rss_mb=max((r.peak_rss_mb for r in rows), default=0.0),
        max_seconds=max_seconds,
        max_memory_mb=max_memory_mb,
    )
    return rows, totals


# --------------------------------------------------------------------------- #
# Reporting
# --------------------------------------------------------------------------- #

COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, StageRow field, format)
    ("source", "source", "s"),
    ("stage", "stage", "s"),
    ("rows", "rows", ",d"),
    ("quarantined", "quarantined", ",d"),
    ("seconds", "seconds", ".1f"),
    ("cpu s", "cpu_seconds", ".1f"),
    ("peak MB", "peak_rss_mb", ",.0f"),
)


def format_table(rows: Sequence[StageRow], totals: Totals) -> str:
    """A fixed-width table, one line per source and step, then the total line."""
    total_cells = [
        "total",
        "raw->staged",
        format(totals.raw_rows, ",d"),
        format(totals.quarantined, ",d"),
        format(totals.seconds, ".1f"),
        format(totals.cpu_seconds, ".1f"),
        format(totals.peak_rss_mb, ",.0f"),
    ]
    cells = [
        [
            "-" if getattr(row, field) is None else format(getattr(row, field), spec)
            for _, field, spec in COLUMNS
        ]
        for row in rows
    ]
    headers = [header for header, _, _ in COLUMNS]
    widths = [
        max(len(text) for text in column)
        for column in zip(headers, total_cells, *cells, strict=True)
    ]

    def line(texts: Sequence[str]) -> str:
        return "  ".join(
            text.ljust(width) if spec == "s" else text.rjust(width)
            for text, width, (_, _, spec) in zip(texts, widths, COLUMNS, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(t) for t in cells), rule, line(total_cells)])


def report(rows: Sequence[StageRow], totals: Totals, *, data_note: str) -> str:
    """The table, the verdict against the targets and how to read the columns."""
    verdict = "PASS" if totals.passed else "FAIL"
    return "\n".join(
        [
            format_table(rows, totals),
            f"{verdict}: {totals.seconds:.1f} s "
            f"({'<' if totals.fast_enough else '>='} {totals.max_seconds:g} s), "
            f"peak {totals.peak_rss_mb:,.0f} MB "
            f"({'<' if totals.small_enough else '>='} {totals.max_memory_mb:,.0f} MB) "
            f"for {totals.raw_rows:,} records on {parallel.available_cpus()} CPU(s).",
            "rows: raw rows loaded, or rows staged; quarantined: rows set aside by staging; "
            "seconds: wall time; cpu s: CPU time of this process and its staging workers; "
            "peak MB: largest RSS of this process plus its workers, sampled every "
            f"{SAMPLE_SECONDS * 1000:.0f} ms.",
            data_note,
        ]
    )


def _write_json(path: Path, rows: Sequence[StageRow], totals: Totals, settings: dict) -> None:
    payload = {
        "settings": settings,
        "rows": [asdict(row) for row in rows],
        "total": {**asdict(totals), "passed": totals.passed},
    }
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/ingestion.py",
        description="Time raw loading and staging of generated demo data, per source.",
    )
    parser.add_argument(
        "--persons",
        type=int,
        default=300_000,
        help="persons to generate; about 3.3 records each (default 300000)",
    )
    parser.add_argument("--seed", type=int, default=42, help="demo data seed (default 42)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="demo data folder: reused when it holds meld.yaml, else generated into "
        "(default: generated into the work folder)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="folder for the DuckDB file (and the data, without --data-dir); default a "
        "temporary folder, removed afterwards",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="time target, raw to staged (60)"
    )
    parser.add_argument(
        "--max-memory-gb", type=float, default=3.0, help="peak memory target in GB (3)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit code: 0 when both targets are met."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.persons < 1:
        parser.error(f"--persons must be at least 1, got {args.persons}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)

    with tempfile.TemporaryDirectory(prefix="meld-bench-ingestion-") as scratch:
        work_dir = args.work_dir or Path(scratch)
        data_dir = args.data_dir or work_dir / "data"
        generated = prepare_data(data_dir, persons=args.persons, seed=args.seed)
        rows, totals = run_benchmark(
            data_dir,
            work_dir,
            max_seconds=args.max_seconds,
            max_memory_mb=args.max_memory_gb * 1000,
        )
    data_note = (
        f"data: {args.persons:,} persons, seed {args.seed}, generated in {generated:.1f} s "
        "(not counted)."
        if generated
        else f"data: reused {data_dir}."
    )
    settings = {
        "persons": args.persons if generated else None,
        "seed": args.seed if generated else None,
        "data_dir": str(data_dir),
        "cpus": parallel.available_cpus(),
    }
    if args.json is not None:
        _write_json(args.json, rows, totals, settings)
    print(report(rows, totals, data_note=data_note))
    return 0 if totals.passed else 1


if __name__ == "__main__":
    sys.exit(main())
