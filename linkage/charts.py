"""Static PNG charts for places that cannot run Vega-Lite, such as Dagster metadata.

Splink's own interactive charts (HTML) go to MLflow; these are small summaries that
render anywhere.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def partial_match_weights(model: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(comparison, level label, log2(m/u)) for every non-null level with m and u."""
    rows = []
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if not m or not u:
                continue
            rows.append(
                (
                    comparison["output_column_name"],
                    level.get("label_for_charts", "?"),
                    math.log2(m / u),
                )
            )
    return rows


def match_weights_png(model: dict[str, Any]) -> bytes:
    """Horizontal bars: the partial match weight of each comparison level."""
    rows = partial_match_weights(model)
    labels = [f"{comparison}: {label}"[:60] for comparison, label, _ in rows]
    weights = [weight for _, _, weight in rows]
    figure, axis = plt.subplots(figsize=(8, 0.28 * len(rows) + 1))
    axis.barh(
        range(len(rows)), weights, color=["#2a9d8f" if w >= 0 else "#e76f51" for w in weights]
    )
    axis.set_yticks(range(len(rows)), labels, fontsize=8)
    axis.invert_yaxis()
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_xlabel("partial match weight (log2 m/u)")
    axis.set_title("Match weights of the linkage model")
    return _png(figure)


def cluster_sizes_png(sizes: Sequence[tuple[int, int]]) -> bytes:
    """Bars: number of customers (log scale) by number of records per customer."""
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.bar([str(size) for size, _ in sizes], [count for _, count in sizes], color="#264653")
    axis.set_yscale("log")
    axis.set_xlabel("records per customer")
    axis.set_ylabel("customers")
    axis.set_title("Customer size distribution")
    return _png(figure)


def markdown_image(png: bytes, alt: str) -> str:
    """A markdown image with the PNG inline, as Dagster's UI shows it."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
