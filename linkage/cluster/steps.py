"""The clustering step of a run, one call: scored pairs in, ``customer_clusters`` out.

Records linked at or above the scoring model's threshold become one customer (with the
configured method and the steward decisions in force), keep stable customer ids across
runs, and leave a change log (id history, record moves, merge evidence) and graph
metrics behind.

Examples:
    ```py
    outcome = build_customer_clusters(con, ClusteringSpec(method="best_links"), run_id="r1")
    outcome.clustered.summary.customers, outcome.assignment.merged
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.atomic import transaction
from linkage.audit.change_log import record_merge_evidence
from linkage.cluster.graph_metrics import GraphMetricsSummary, customer_graph_metrics
from linkage.cluster.overrides.clustering import OverriddenClustering, cluster_with_overrides
from linkage.cluster.stable_ids.assign import assign_stable_ids
from linkage.cluster.stable_ids.matching import IdAssignment
from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES
from linkage.model.store import StoredModel, scoring_model
from linkage.tables import CUSTOMER_CLUSTERS, CUSTOMER_RECORDS, PAIRWISE_MATCHES

PROVISIONAL_CLUSTERS = "__meld_provisional_clusters"
CUSTOMER_IDS_SCRATCH = "__meld_customer_ids"


@dataclass(frozen=True)
class ClusteringSpec:
    """How scored pairs become customers (the ``clustering`` and ``overrides`` sections)."""

    method: str = "best_links"
    warn_cluster_size: int = 50
    overrides_csv: Path | None = None


@dataclass(frozen=True)
class CustomerClusters:
    """What :func:`build_customer_clusters` did."""

    model: StoredModel
    clustered: OverriddenClustering
    assignment: IdAssignment
    merge_evidence_links: int
    graph: GraphMetricsSummary
    sizes: list[tuple[int, int]]
    """(records per customer, customers of that size), smallest first."""


def _publish(con: duckdb.DuckDBPyConnection) -> None:
    """``customer_clusters`` from the provisional clusters and their stable ids."""
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_CLUSTERS} AS "
        "SELECT p.source_system, p.source_record_id, p.unique_id, s.customer_id, "
        "count(*) OVER (PARTITION BY s.customer_id) AS customer_record_count "
        f"FROM {PROVISIONAL_CLUSTERS} AS p JOIN {CUSTOMER_IDS_SCRATCH} AS s "
        "USING (unique_id) ORDER BY s.customer_id, p.unique_id"
    )
    for table in (PROVISIONAL_CLUSTERS, CUSTOMER_IDS_SCRATCH):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def build_customer_clusters(
    con: duckdb.DuckDBPyConnection, spec: ClusteringSpec, *, run_id: str
) -> CustomerClusters:
    """Cluster ``pairwise_matches`` into ``customer_clusters`` with stable customer ids.

    Uses the threshold of the model that scored the pairs (``scoring_model``). Also
    writes ``refused_links``, ``customer_id_history``, ``customer_record_moves``,
    ``merge_evidence`` and ``customer_graph_metrics``.

    Raises:
        OverrideError: The steward decisions file cannot be used.
        LookupError: No model has scored pairs in this warehouse.
    """
    stored = scoring_model(con)
    with transaction(con):  # customers, their ids, id history and evidence agree
        clustered = cluster_with_overrides(
            con,
            records_table=CUSTOMER_RECORDS,
            pairs_table=PAIRWISE_MATCHES,
            threshold=stored.match_threshold,
            out_table=PROVISIONAL_CLUSTERS,
            csv_path=spec.overrides_csv,
            published_clusters=CUSTOMER_CLUSTERS,
            method=spec.method,
        )
        assignment = assign_stable_ids(
            con,
            groups_table=PROVISIONAL_CLUSTERS,
            member_column="unique_id",
            group_column="customer_id",
            out_table=CUSTOMER_IDS_SCRATCH,
            tables=CUSTOMER_ID_TABLES,
            run_id=run_id,
        )
        _publish(con)
        evidence = record_merge_evidence(
            con, run_id=run_id, pairs_table=PAIRWISE_MATCHES, threshold=stored.match_threshold
        )
        graph = customer_graph_metrics(
            con,
            clusters_table=CUSTOMER_CLUSTERS,
            pairs_table=PAIRWISE_MATCHES,
            threshold=stored.match_threshold,
            warn_cluster_size=spec.warn_cluster_size,
        )
    sizes = con.execute(
        "SELECT customer_record_count, count(DISTINCT customer_id) "
        f"FROM {CUSTOMER_CLUSTERS} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return CustomerClusters(
        model=stored,
        clustered=clustered,
        assignment=assignment,
        merge_evidence_links=evidence,
        graph=graph,
        sizes=[(int(size), int(n)) for size, n in sizes],
    )
