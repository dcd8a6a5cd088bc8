"""Command line of the demo generator.

``python -m linkage.demo OUT [--persons N] [--seed S] [--profile clean|realistic|hostile]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from linkage.demo.generator import generate
from linkage.demo.knobs import DEFAULT_PROFILE, PROFILES
from linkage.demo.source_plans import CONFIG_FILE, SOURCE_FILES, TRUTH_FILE

__all__ = ["main"]


def _print_file_line(path: Path, what: str) -> None:
    print(f"{path}: {what}, {path.stat().st_size / 1e6:.1f} MB")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m linkage.demo OUT [--persons N] [--seed S] [--profile P]``."""
    parser = argparse.ArgumentParser(
        prog="python -m linkage.demo",
        description="Write deterministic synthetic customer records for Meld.",
    )
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--persons", type=int, default=10_000, help="persons (default 10000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--profile",
        choices=list(PROFILES),
        default=DEFAULT_PROFILE,
        help="how hard the data is: clean (the base errors only), realistic (adds the "
        "errors real customer data has), hostile (more of everything); "
        f"default {DEFAULT_PROFILE}",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    if args.persons < 1:
        parser.error(f"--persons must be at least 1, got {args.persons}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    started = time.perf_counter()
    counts = generate(args.out, args.persons, args.seed, profile=args.profile)
    for name, rows in counts.items():
        _print_file_line(args.out / SOURCE_FILES[name], f"{rows:,} records")
    with (args.out / TRUTH_FILE).open(encoding="utf-8") as handle:
        truth_rows = sum(1 for _ in handle) - 1
    _print_file_line(args.out / TRUTH_FILE, f"{truth_rows:,} ground-truth rows")
    _print_file_line(args.out / CONFIG_FILE, f"{len(SOURCE_FILES)} sources")
    total = sum(counts.values())
    print(
        f"{total:,} records of {args.persons:,} persons (seed {args.seed}, "
        f"profile {args.profile}) "
        f"in {time.perf_counter() - started:.1f} s"
    )
