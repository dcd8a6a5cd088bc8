"""The promotion step of a run (``model_promotion``): the version the latest evaluation
scored becomes champion when it is good enough (see :func:`training.promotion.promote`)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from linkage.config import ProjectConfig
from linkage.errors import MeldError
from linkage.tables import LINKAGE_EVALUATION
from linkage.warehouse import quote
from training.mlflow_store import MlflowTarget
from training.promotion import PromotionDecision, model_aliases, promote

PROMOTION_ASSET = "model_promotion"


class PromotionError(MeldError, ValueError):
    """There is nothing to promote, or the configured metric was not measured."""


@dataclass(frozen=True)
class Promotion:
    """The decision on the latest evaluated version, and the aliases after it."""

    decision: PromotionDecision
    version: str
    metric: str
    """The metric compared: ``promotion.metric``, or its ``label_`` variant."""
    aliases: dict[str, str]


def latest_evaluation(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, float]]:
    """The model version of the latest ``linkage_evaluation`` and its metrics.

    Raises:
        PromotionError: Nothing has been evaluated yet.
    """
    rows = con.execute(
        f"SELECT model_version, metric, value FROM {quote(LINKAGE_EVALUATION)} "
        f"WHERE evaluated_at = (SELECT max(evaluated_at) FROM {quote(LINKAGE_EVALUATION)})"
    ).fetchall()
    if not rows:
        raise PromotionError(
            f"{LINKAGE_EVALUATION} is empty: materialize it before {PROMOTION_ASSET}"
        )
    return rows[0][0], {name: value for _, name, value in rows}


def promote_evaluated_version(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, target: MlflowTarget
) -> Promotion:
    """Compare the latest evaluated version with the champion on ``promotion.metric``
    (its ``label_`` variant with clerical labels only) and promote it if it wins.

    Raises:
        PromotionError: Nothing evaluated, or the metric is not among the evaluation's
            ("promotion.metric: ...").
    """
    version, scores = latest_evaluation(con)
    metric = project.promotion.metric
    compared = metric
    if compared not in scores and f"label_{compared}" in scores:
        compared = f"label_{compared}"  # evaluated against clerical labels only
    if compared not in scores:
        raise PromotionError(
            f"promotion.metric: '{metric}' is not among the metrics of the latest "
            f"evaluation of version {version}: {sorted(scores)}"
        )
    decision = promote(
        target,
        target.registered_model,
        version,
        compared,
        float(scores[compared]),
        project.promotion.tolerance,
        con,
    )
    return Promotion(
        decision=decision,
        version=version,
        metric=compared,
        aliases=model_aliases(target, target.registered_model),
    )
