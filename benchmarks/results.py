"""Results of the accuracy benchmark and the text tables that show them.

:class:`AccuracyRow` is one data set's scores as ``linkage_evaluation`` computed them;
:func:`report` is the accuracy table with its notes; :func:`fixed_width_table` is the
layout every benchmark table here shares (the ablation's too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.ceiling import JARO_WINKLER_NAME_THRESHOLD
from benchmarks.datasets import DEMO_300K_PERSONS
from benchmarks.overrides import format_overrides


@dataclass(frozen=True)
class AccuracyRow:
    """One data set's scores and cost; metrics come from ``linkage_evaluation``."""

    dataset: str
    records: int
    clustering: str
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    cluster_precision: float
    cluster_recall: float
    cluster_f1: float
    seconds: float
    peak_rss_mb: float
    input_rows: int
    quarantined_rows: int
    prepare_seconds: float
    ceiling_cluster_recall: float | None = None
    largest_customer: int | None = None


@dataclass(frozen=True)
class Failure:
    """A data set that did not produce a row, and why."""

    dataset: str
    error: str


def fixed_width_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1
) -> str:
    """Cells already formatted, as a table: the first ``text_columns`` columns
    left-aligned, the others (numbers) right-aligned, a rule under the headers.

    Examples:
        >>> print(fixed_width_table(["name", "F1"], [["a", "0.900"], ["bb", "1.000"]]))
        name     F1
        ----  -----
        a     0.900
        bb    1.000
    """
    widths = [max(len(text) for text in column) for column in zip(headers, *rows, strict=True)]

    def line(texts: Sequence[str]) -> str:
        return "  ".join(
            text.ljust(width) if index < text_columns else text.rjust(width)
            for index, (text, width) in enumerate(zip(texts, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(texts) for texts in rows)])


COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, AccuracyRow field, format)
    ("dataset", "dataset", "s"),
    ("clustering", "clustering", "s"),
    ("records", "records", ",d"),
    ("pair P", "pairwise_precision", ".3f"),
    ("pair R", "pairwise_recall", ".3f"),
    ("pair F1", "pairwise_f1", ".3f"),
    ("clus P", "cluster_precision", ".3f"),
    ("clus R", "cluster_recall", ".3f"),
    ("clus F1", "cluster_f1", ".3f"),
    ("ceil R", "ceiling_cluster_recall", ".3f"),
    ("largest", "largest_customer", ",d"),
    ("seconds", "seconds", ".1f"),
    ("peak MB", "peak_rss_mb", ",.0f"),
)


def format_table(rows: Sequence[AccuracyRow]) -> str:
    """The accuracy table: text left-aligned, numbers right-aligned, ``-`` for none."""
    cells = [
        [
            "-" if getattr(row, field) is None else format(getattr(row, field), spec)
            for _, field, spec in COLUMNS
        ]
        for row in rows
    ]
    text_columns = sum(1 for _, _, spec in COLUMNS if spec == "s")
    return fixed_width_table([header for header, _, _ in COLUMNS], cells, text_columns)


def report(
    rows: Sequence[AccuracyRow],
    failures: Sequence[Failure],
    *,
    demo_persons: int,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> str:
    """The table plus the notes a reader needs to read it: the seed and the config
    overrides every data set ran with."""
    lines = []
    if rows:
        lines.append(format_table(rows))
        lines.append(
            "records: clustered records with a known entity; largest: records in the "
            "largest customer; seconds: pipeline wall time; peak MB: peak RSS of the data "
            "set's process."
        )
    if any(row.ceiling_cluster_recall is not None for row in rows):
        lines.append(
            "ceil R: demo only; cluster recall reachable by linking only true pairs that "
            "share an e-mail, a phone, an identifier, or a similar name (Jaro-Winkler >= "
            f"{JARO_WINKLER_NAME_THRESHOLD}) plus date of birth or postcode; its cluster "
            "precision is 1 by construction."
        )
    demo_rows = sorted({row.dataset for row in rows if row.dataset.startswith("demo10k")})
    if demo_rows:
        lines.append(f"{', '.join(demo_rows)}: {demo_persons:,} persons.")
    if any(row.dataset == "demo300k" for row in rows):
        lines.append(f"demo300k: {DEMO_300K_PERSONS:,} persons.")
    if seed is not None:
        lines.append(f"seed (demo data and models): {seed}.")
    lines.append(f"config overrides: {format_overrides(overrides or {})}.")
    lines.extend(f"FAILED {failure.dataset}: {failure.error}" for failure in failures)
    return "\n".join(lines)


def write_json(
    path: Path, rows: Sequence[AccuracyRow], failures: Sequence[Failure], settings: dict
) -> None:
    """The settings, rows and failures of a run as one JSON file."""
    payload = {
        "settings": settings,
        "results": [asdict(row) for row in rows],
        "failures": [asdict(failure) for failure in failures],
    }
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
