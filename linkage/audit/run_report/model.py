"""The run report's model and thresholds sections: prior, levels with m, u and weights.

The model is the Splink settings dict the run scored with; it holds m and u
probabilities and SQL over column names, no record values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from linkage.audit.run_report.formatting import is_number
from linkage.audit.run_report.markup import Html, html_table, mono, note, png_image
from linkage.charts import match_weights_png
from linkage.model.match_weights import level_weights, match_weight

logger = logging.getLogger(__name__)


def _prior_table(model: Mapping[str, Any], entry: Mapping[str, Any]) -> Html:
    """The model's name, version and link type, and its prior as probability and weight."""
    prior = model.get("probability_two_random_records_match")
    prior_weight = match_weight(prior)
    return html_table(
        ["", "value"],
        [
            ("Model", entry.get("model_name")),
            ("Version", entry.get("model_version")),
            ("Alias", entry.get("model_alias")),
            ("Link type", model.get("link_type")),
            ("Prior: probability two random records match", prior),
            ("Prior as match weight (log2 odds)", prior_weight),
            ("Prior: one match in", 1.0 / prior if prior else None),
        ],
        table_id="model-prior",
    )


def _levels(model: Mapping[str, Any]) -> list[Html]:
    """Each comparison level with m, u and partial weight, and the match-weight chart."""
    rows = level_weights(model)
    if not rows:
        return [note("The model has no comparisons.")]
    firsts = [
        i == 0 or row["comparison"] != rows[i - 1]["comparison"] for i, row in enumerate(rows)
    ]
    parts = [
        Html("<h3>Comparisons and levels</h3>"),
        html_table(
            ["comparison", "level", "m", "u", "partial match weight (log2 m/u)", ""],
            [
                (
                    row["comparison"] if first else "",
                    row["level"],
                    row["m"],
                    row["u"],
                    row["weight"],
                    row["notes"],
                )
                for row, first in zip(rows, firsts, strict=True)
            ],
            table_id="model-levels",
            row_classes=["group-start" if first else "" for first in firsts],
        ),
    ]
    if any(row["weight"] not in (None, 0.0) and math.isfinite(row["weight"]) for row in rows):
        parts.append(png_image(match_weights_png(dict(model)), "match weights of the model"))
    return parts


def _blocking_rules(model: Mapping[str, Any]) -> list[Html]:
    """The prediction blocking rules, numbered from 1 (none: nothing)."""
    rules = model.get("blocking_rules_to_generate_predictions") or []
    if not rules:
        return []
    return [
        Html("<h3>Blocking rules</h3>"),
        html_table(
            ["#", "rule"],
            [
                (i, mono(rule.get("blocking_rule") if isinstance(rule, Mapping) else rule))
                for i, rule in enumerate(rules, start=1)
            ],
            table_id="blocking-rules",
        ),
    ]


def model_section(model: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> Html:
    """The model: prior, comparison levels with weights and chart, blocking rules."""
    if not model:
        return note("No model is recorded for this run.")
    parts = [_prior_table(model, entry), *_levels(model), *_blocking_rules(model)]
    return Html("".join(parts))


def thresholds_section(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Html:
    """The run's thresholds, probabilities also as match weights, beside the previous run's."""
    thresholds = entry.get("thresholds") or {}
    if not thresholds:
        return note("The ledger holds no thresholds for this run.")
    rows = []
    for name, value in thresholds.items():
        probability = "threshold" in name or "floor" in name
        weight = match_weight(value) if probability and is_number(value) else None
        rows.append((name, value, weight))
    headers = ["threshold", "value", "as match weight"]
    if previous is not None:
        before = previous.get("thresholds") or {}
        headers.append("previous run")
        rows = [(*row, before.get(row[0])) for row in rows]
    return html_table(headers, rows, table_id="thresholds")
