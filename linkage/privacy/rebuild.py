"""After an erasure: cluster and master the customers again with the pipeline's own steps.

The remaining ``pairwise_matches`` are clustered by
:func:`linkage.cluster.steps.build_customer_clusters`; stable ids keep every customer
whose records did not change, retire a customer whose records are all erased and keep
(or split) one that lost some. Golden records, households, the orders' customer link,
the products and graph (when orders are loaded) and the single customer view are then
rebuilt by the mastering steps, as a pipeline run would.

Examples:
    ```py
    outcome = rebuild_customers(con, spec, run_id="era_1f2e")
    outcome.customers, outcome.retired
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from linkage.cluster.steps import ClusteringSpec, build_customer_clusters
from linkage.master.relationships import build_customer_graph, build_customer_products
from linkage.master.steps import (
    HouseholdSpec,
    master_customer_360,
    master_golden_customers,
    master_households,
    relate_orders,
)
from linkage.tables import CUSTOMER_CLUSTERS, ORDERS, PAIRWISE_MATCHES, SCORING_MODEL
from linkage.warehouse import table_exists

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildSpec:
    """What re-clustering and re-mastering need from the project config."""

    clustering: ClusteringSpec
    survivorship_rules: Mapping[str, str]
    source_priority: Sequence[str]
    households: HouseholdSpec


@dataclass(frozen=True)
class RebuildOutcome:
    """What the rebuild did; all zeros when there were no customers to rebuild."""

    customers: int = 0
    kept: int = 0
    retired: int = 0
    split: int = 0
    new: int = 0
    rebuilt: bool = False


def rebuild_customers(
    con: duckdb.DuckDBPyConnection, spec: RebuildSpec, *, run_id: str
) -> RebuildOutcome:
    """Re-cluster and re-master every customer (untouched ones keep their ids).

    Nothing is done when the warehouse has no clusters or no scored pairs yet (the
    erasure came before the first full run).
    """
    ready = all(table_exists(con, t) for t in (CUSTOMER_CLUSTERS, PAIRWISE_MATCHES, SCORING_MODEL))
    if not ready:
        logger.info("erasure: no customers built yet, nothing to re-cluster")
        return RebuildOutcome()
    clusters = build_customer_clusters(con, spec.clustering, run_id=run_id)
    golden = master_golden_customers(
        con, rules=spec.survivorship_rules, source_priority=spec.source_priority
    )
    master_households(con, spec.households, run_id=run_id)
    if table_exists(con, ORDERS):
        relate_orders(con)
        build_customer_products(con)
        build_customer_graph(con)
    master_customer_360(con)
    ids = clusters.assignment
    logger.info(
        "erasure %s: %d customers re-mastered (%d ids kept, %d retired, %d split, %d new)",
        run_id,
        golden.customers,
        ids.kept,
        ids.retired,
        ids.split,
        ids.new,
    )
    return RebuildOutcome(
        customers=golden.customers,
        kept=ids.kept,
        retired=ids.retired,
        split=ids.split,
        new=ids.new,
        rebuilt=True,
    )
