"""Ablation of Meld's accuracy defaults: each one switched away on its own, across data sets.

Every default that issue 13 introduced or questioned is a config knob. A *variant* is a
set of config overrides (dotted key -> value, see :mod:`benchmarks.overrides`):
``default`` changes nothing, and each other variant switches one knob away from the
default that the config schema declares, so the table shows what each default is worth:

- ``quality.match_invalid_values``: invalid phones, e-mails, ... stay comparable;
- ``model.robust_comparisons``: phonetic names, date-of-birth typos, initials, phone
  suffix levels;
- ``model.blocking``: prediction rules chosen from the data (``auto``) or fixed;
- ``model.probability_floor``: the m/u floor against accidental vetoes (0 = none);
- ``clustering.link_vetoes``: the explicit link veto(es), on or off;
- ``clustering.method``: ``best_links`` or ``connected_components``;
- ``model.match_threshold``: each of :data:`THRESHOLD_VARIANTS` but the default.

Each (variant, data set) runs in a child process exactly as ``benchmarks/accuracy.py``
runs a data set (:func:`benchmarks.accuracy.run_child`), at the development seed
(:data:`~benchmarks.datasets.DEV_SEED`, 42): defaults are chosen here, and the accuracy
table reports on another seed. Progress goes to stderr, the table to stdout: per data
set pairwise and cluster F1, their mean across data sets, and that mean's change from
``default``. A full run is about 30 pipeline runs; no test runs it.

Usage::

    python benchmarks/ablation.py [--datasets febrl3_noid,febrl4_noid,fake1000,demo10k]
        [--variants default,blocking_fixed,...] [--set KEY=VALUE ...] [--seed 42]
        [--demo-persons 10000] [--json ablation.json] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from benchmarks.accuracy import dataset_list, run_child
from benchmarks.datasets import CLUSTERING_METHODS, DEV_SEED
from benchmarks.overrides import Overrides, format_overrides, parse_overrides
from benchmarks.results import AccuracyRow, Failure
from linkage.config import ClusteringConfig, ModelConfig
from linkage.config.sources import QualityConfig

logger = logging.getLogger("benchmarks.ablation")

LINK_VETO = "first_name_and_date_of_birth_conflict"
"""The one link veto Meld has; the ``link_veto_on`` variant names it."""
FLOOR_ON = 0.001
"""The m/u floor of the ``floor_on`` variant, used only when the default has no floor."""
DEFAULT_VARIANT = "default"
THRESHOLD_VARIANTS: tuple[float, ...] = (0.5, 0.65, 0.8, 0.95)
"""Match thresholds tried besides the default one: recall is what the outside data
sets lose, and the threshold is where a model trades it against precision."""
ABLATION_DATASETS = ["febrl3_noid", "febrl4_noid", "fake1000", "demo10k", "demo10k_hostile"]
"""Data sets of an ablation by default."""


def _schema_default(model: type[BaseModel], field: str, fallback: Any) -> Any:
    """A config field's declared default, or ``fallback`` while the field does not exist."""
    info = model.model_fields.get(field)
    return fallback if info is None else info.get_default(call_default_factory=True)


def default_variants() -> dict[str, Overrides]:
    """``default`` plus one variant per knob, switched away from its schema default.

    A variant's name says which way it switches: ``keep_evidence_off`` when evidence is
    kept by default, ``keep_evidence_on`` when it is not, and so on.
    """
    keep = bool(_schema_default(QualityConfig, "match_invalid_values", True))
    robust = bool(_schema_default(ModelConfig, "robust_comparisons", True))
    blocking = "fixed" if _schema_default(ModelConfig, "blocking", "auto") == "auto" else "auto"
    floor = float(_schema_default(ModelConfig, "probability_floor", FLOOR_ON))
    vetoes = list(_schema_default(ClusteringConfig, "link_vetoes", [LINK_VETO]))
    method = next(m for m in CLUSTERING_METHODS if m != ClusteringConfig().method)
    return {
        DEFAULT_VARIANT: {},
        f"keep_evidence_{'off' if keep else 'on'}": {"quality.match_invalid_values": not keep},
        f"robust_comparisons_{'off' if robust else 'on'}": {"model.robust_comparisons": not robust},
        f"blocking_{blocking}": {"model.blocking": blocking},
        ("floor_off" if floor else "floor_on"): {
            "model.probability_floor": 0.0 if floor else FLOOR_ON
        },
        ("link_veto_off" if vetoes else "link_veto_on"): {
            "clustering.link_vetoes": [] if vetoes else [LINK_VETO]
        },
        method: {"clustering.method": method},
        **{
            f"threshold_{value}": {"model.match_threshold": value}
            for value in THRESHOLD_VARIANTS
            if value != _schema_default(ModelConfig, "match_threshold", 0.95)
        },
    }


# --------------------------------------------------------------------------- #
# The table
# --------------------------------------------------------------------------- #

Outcomes = Mapping[tuple[str, str], AccuracyRow | Failure]
"""(variant, data set) -> its row, or why it has none."""


@dataclass(frozen=True)
class VariantSummary:
    """One variant's F1 per data set (None: failed or not run), their means across data
    sets (None unless every data set has a score) and the means' change from default."""

    variant: str
    pairwise_f1: dict[str, float | None]
    cluster_f1: dict[str, float | None]
    mean_pairwise_f1: float | None
    mean_cluster_f1: float | None
    delta_pairwise_f1: float | None = None
    delta_cluster_f1: float | None = None


def _mean(values: Sequence[float | None]) -> float | None:
    if not values or any(value is None for value in values):
        return None
    return math.fsum(values) / len(values)  # type: ignore[arg-type]


def summarise(
    outcomes: Outcomes, variants: Sequence[str], datasets: Sequence[str]
) -> list[VariantSummary]:
    """Per variant: F1 per data set, the means, and the means minus ``default``'s."""
    summaries = []
    for variant in variants:
        rows = {d: outcomes.get((variant, d)) for d in datasets}
        pair = {d: r.pairwise_f1 if isinstance(r, AccuracyRow) else None for d, r in rows.items()}
        clus = {d: r.cluster_f1 if isinstance(r, AccuracyRow) else None for d, r in rows.items()}
        summaries.append(
            VariantSummary(
                variant, pair, clus, _mean(list(pair.values())), _mean(list(clus.values()))
            )
        )
    base = next((s for s in summaries if s.variant == DEFAULT_VARIANT), None)
    base_pair = base.mean_pairwise_f1 if base else None
    base_clus = base.mean_cluster_f1 if base else None

    def delta(value: float | None, reference: float | None) -> float | None:
        return None if value is None or reference is None else value - reference

    return [
        replace(
            s,
            delta_pairwise_f1=delta(s.mean_pairwise_f1, base_pair),
            delta_cluster_f1=delta(s.mean_cluster_f1, base_clus),
        )
        for s in summaries
    ]


def _cell(value: float | None, spec: str, failed: bool) -> str:
    if value is None:
        return "FAIL" if failed else "-"
    return format(value, spec)


def format_ablation(
    summaries: Sequence[VariantSummary], datasets: Sequence[str], outcomes: Outcomes
) -> str:
    """The ablation table: a row per variant; under each data set's name its pairwise
    and cluster F1, then the means and their change from ``default``. ``FAIL`` marks a
    run that failed, ``-`` a value that cannot be computed."""
    groups = [*datasets, "mean", "delta vs default"]
    rows = []
    for s in summaries:
        cells = [s.variant]
        for d in datasets:
            failed = isinstance(outcomes.get((s.variant, d)), Failure)
            cells += [_cell(s.pairwise_f1[d], ".3f", failed), _cell(s.cluster_f1[d], ".3f", failed)]
        cells += [_cell(s.mean_pairwise_f1, ".3f", False), _cell(s.mean_cluster_f1, ".3f", False)]
        cells += [
            _cell(s.delta_pairwise_f1, "+.3f", False),
            _cell(s.delta_cluster_f1, "+.3f", False),
        ]
        rows.append(cells)
    subheaders = ["variant", *(["pair F1", "clus F1"] * len(groups))]
    widths = [max(len(text) for text in column) for column in zip(subheaders, *rows, strict=True)]
    for index, title in enumerate(groups):  # each group's two columns fit its title
        left, right = 1 + 2 * index, 2 + 2 * index
        half = -(-(len(title) - 2) // 2)
        widths[left], widths[right] = max(widths[left], half), max(widths[right], half)

    def line(texts: Sequence[str]) -> str:
        return "  ".join(
            text.ljust(width) if index == 0 else text.rjust(width)
            for index, (text, width) in enumerate(zip(texts, widths, strict=True))
        ).rstrip()

    titles = [" " * widths[0]] + [
        title.center(widths[1 + 2 * i] + 2 + widths[2 + 2 * i]) for i, title in enumerate(groups)
    ]
    return "\n".join(
        [
            "  ".join(titles).rstrip(),
            line(subheaders),
            "  ".join("-" * width for width in widths),
            *(line(cells) for cells in rows),
        ]
    )


def report(
    outcomes: Outcomes,
    variants: Mapping[str, Overrides],
    datasets: Sequence[str],
    *,
    seed: int,
    demo_persons: int,
    base: Overrides,
) -> str:
    """The table, what each variant overrides, and every failure."""
    summaries = summarise(outcomes, list(variants), datasets)
    lines = [
        format_ablation(summaries, datasets, outcomes),
        "",
        "pair F1 / clus F1: pairwise and cluster F1 from linkage_evaluation; mean: across "
        "data sets (- when one failed); delta: mean minus the default's.",
        "variants (config overrides):",
        *(f"  {name}: {format_overrides(overrides)}" for name, overrides in variants.items()),
        f"overrides in every variant: {format_overrides(base)}; seed {seed}; demo data sets "
        f"{demo_persons:,} persons.",
    ]
    lines += [
        f"FAILED {variant} / {dataset}: {outcome.error}"
        for (variant, dataset), outcome in outcomes.items()
        if isinstance(outcome, Failure)
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Running and the command line
# --------------------------------------------------------------------------- #


def run_ablation(
    variants: Mapping[str, Overrides],
    datasets: Sequence[str],
    *,
    seed: int,
    demo_persons: int,
    base: Overrides,
    work_dir: Path | None,
) -> dict[tuple[str, str], AccuracyRow | Failure]:
    """Every (variant, data set) in its own child process, variant by variant; ``base``
    overrides apply to every variant, the variant's own after them. With ``work_dir``
    each run keeps its files in ``work_dir/<variant>/<data set>``."""
    outcomes: dict[tuple[str, str], AccuracyRow | Failure] = {}
    total = len(variants) * len(datasets)
    for variant, overrides in variants.items():
        for dataset in datasets:
            logger.info("[%d/%d] %s / %s: starting", len(outcomes) + 1, total, variant, dataset)
            started = time.perf_counter()
            outcome = run_child(
                dataset,
                demo_persons=demo_persons,
                seed=seed,
                work_dir=None if work_dir is None else work_dir / variant,
                overrides={**base, **overrides},
                echo_table=False,
            )
            outcomes[variant, dataset] = outcome
            seconds = time.perf_counter() - started
            if isinstance(outcome, AccuracyRow):
                logger.info(
                    "[%d/%d] %s / %s: pairwise F1 %.3f, cluster F1 %.3f (%.0f s)",
                    len(outcomes),
                    total,
                    variant,
                    dataset,
                    outcome.pairwise_f1,
                    outcome.cluster_f1,
                    seconds,
                )
            else:
                logger.info(
                    "[%d/%d] %s / %s: FAILED (%.0f s): %s",
                    len(outcomes),
                    total,
                    variant,
                    dataset,
                    seconds,
                    outcome.error,
                )
    return outcomes


def write_json(
    path: Path,
    outcomes: Outcomes,
    variants: Mapping[str, Overrides],
    datasets: Sequence[str],
    settings: dict,
) -> None:
    """Settings, every run (its overrides, row or failure) and the summary as JSON."""
    runs = [
        {
            "variant": variant,
            "dataset": dataset,
            "overrides": variants[variant],
            "result": asdict(outcome) if isinstance(outcome, AccuracyRow) else None,
            "failure": asdict(outcome) if isinstance(outcome, Failure) else None,
        }
        for (variant, dataset), outcome in outcomes.items()
    ]
    payload = {
        "settings": {**settings, "datasets": list(datasets), "variants": dict(variants)},
        "runs": runs,
        "summary": [asdict(s) for s in summarise(outcomes, list(variants), datasets)],
    }
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def _parser(variants: Mapping[str, Overrides]) -> argparse.ArgumentParser:
    def variant_list(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in variants]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown variant(s) {unknown or [text]}; expected some of {', '.join(variants)}"
            )
        return names

    parser = argparse.ArgumentParser(
        prog="python benchmarks/ablation.py",
        description="Switch each accuracy default away on its own and compare F1 across data sets.",
    )
    parser.add_argument(
        "--datasets",
        type=dataset_list,
        default=ABLATION_DATASETS,
        help=f"comma-separated data sets (default {','.join(ABLATION_DATASETS)})",
    )
    parser.add_argument(
        "--variants",
        type=variant_list,
        default=list(variants),
        help=f"comma-separated variants out of {','.join(variants)} (default all; "
        f"without '{DEFAULT_VARIANT}' there are no deltas)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a dotted config key in every variant, the value read as YAML (repeatable)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEV_SEED, help=f"demo data and model seed ({DEV_SEED})"
    )
    parser.add_argument(
        "--demo-persons", type=int, default=10_000, help="persons in demo data sets (10000)"
    )
    parser.add_argument("--json", type=Path, help="also write every run and the table here")
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="keep each run's files in WORK_DIR/<variant>/<data set> (default: temporary)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit code: 0 when every run produced a row."""
    every_variant = default_variants()
    parser = _parser(every_variant)
    args = parser.parse_args(argv)
    if args.demo_persons < 1:
        parser.error(f"--demo-persons must be at least 1, got {args.demo_persons}")
    try:
        base = parse_overrides(args.overrides)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    logger.setLevel(logging.INFO)
    variants = {name: every_variant[name] for name in args.variants}
    started = time.perf_counter()
    outcomes = run_ablation(
        variants,
        args.datasets,
        seed=args.seed,
        demo_persons=args.demo_persons,
        base=base,
        work_dir=args.work_dir,
    )
    settings = {"seed": args.seed, "demo_persons": args.demo_persons, "overrides": base}
    if args.json is not None:
        write_json(args.json, outcomes, variants, args.datasets, settings)
    print(
        report(
            outcomes,
            variants,
            args.datasets,
            seed=args.seed,
            demo_persons=args.demo_persons,
            base=base,
        )
    )
    logger.info("total %.1f s", time.perf_counter() - started)
    return 1 if any(isinstance(outcome, Failure) for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
