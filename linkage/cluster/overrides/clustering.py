"""Steward overrides: must-link, cannot-link and unmerge decisions, kept with history.

Data stewards correct the model with decisions between source records (``unique_id``
``<source>:<id>``), each with who decided and why:

- ``must_link A B``: A and B are one customer, whatever the model says.
- ``cannot_link A B``: A and B are never one customer; clustering refuses the weakest
  link that would join them, even when the model links them through other records.
- ``unmerge A``: take A out of the customer it is in (see *Unmerge* below).
- ``revoke A B`` cancels the decision in force between A and B; ``revoke A`` (no B)
  cancels the unmerges of A.

Decisions come from a CSV (``overrides.path`` in the project config; columns
``record_a, record_b, decision, steward, reason, decided_at``) or from ``meld override``.
Both append to the warehouse table ``steward_overrides``, which is never updated or
deleted from: it is the history. A decision's ``override_id`` is a hash of its content
(decision, the two records as an unordered pair, steward, reason, decided_at), so
loading the same CSV again, or under another name, adds nothing.

**What is in force.** Per unordered pair of records the latest decision (by
``decided_at``, then ``recorded_at``) wins; a ``revoke`` as latest leaves the pair
without a decision. The unmerges of a record are in force until a later ``revoke A``.

**Unmerge.** ``unmerge X`` means cannot-link between X and every other record of the
customer X was in *when the decision was first resolved*, and it is resolved once:
against ``customer_clusters`` as it stands (the customers the steward was looking at:
``meld override unmerge`` resolves at once, a CSV decision at the next clustering run),
or, for a record not in that table yet, against the first clustering that places it.
The resulting pairs are kept in ``steward_unmerge_resolutions`` and take part in the
"latest decision per pair wins" rule with the unmerge's ``decided_at``: a later
``must_link X Y`` brings Y back, a later ``revoke X Y`` lifts that one pair. Resolving
once matters: re-resolving against each run's customers would find X already alone
after the first run and let the model merge it back. Records that arrive later and
match X are free to join it. An unmerge of a record that was alone cuts nothing.

The pieces: :mod:`linkage.cluster.overrides.decisions` (the decision model, validation and the
history), :mod:`linkage.cluster.overrides.csv_file` (the decisions file) and
:mod:`linkage.cluster.overrides.in_force` (what is in force, unmerges resolved); this
module clusters with them.

Examples:
    ```py
    record_decision(con, make_decision("cannot_link", "crm:1", "shop:9",
                                       steward="anna", reason="twins"))
    load_overrides_csv(con, Path("config/overrides.csv"))
    result = cluster_with_overrides(
        con,
        records_table="customer_records",
        pairs_table="pairwise_matches",
        threshold=0.95,
        out_table="customer_clusters",
    )
    result.summary.links_refused, result.overrides.for_pair("crm:1", "shop:9")
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.cluster.algorithms import CONNECTED_COMPONENTS, ClusteringMethod
from linkage.cluster.clustering import ClusterSummary, cluster_records
from linkage.cluster.overrides.csv_file import CsvLoad, load_overrides_csv
from linkage.cluster.overrides.in_force import (
    EffectiveOverrides,
    effective_overrides,
    resolve_unmerges,
)
from linkage.tables import REFUSED_LINKS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverriddenClustering:
    """What :func:`cluster_with_overrides` did.

    Attributes:
        summary: The clustering.
        overrides: The decisions in force it applied.
        csv: The CSV load, when a file was given.
    """

    summary: ClusterSummary
    overrides: EffectiveOverrides
    csv: CsvLoad | None


def cluster_with_overrides(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str,
    csv_path: Path | None = None,
    refused_table: str = REFUSED_LINKS,
    published_clusters: str | None = None,
    method: ClusteringMethod = CONNECTED_COMPONENTS,
) -> OverriddenClustering:
    """Load the steward CSV, resolve unmerges, and cluster with the decisions in force.

    Unmerges are resolved against the customers stewards see, ``published_clusters``
    (default ``out_table``) as it stands before this run replaces it. An unmerge of a
    record that is in no customer there is resolved against this run's clustering,
    which is then run once more.

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id``, ``source_system``, ``source_record_id``.
        pairs_table: Scored pairs (see :func:`linkage.cluster.clustering.cluster_records`).
        threshold: Match probability at or above which two records are one customer.
        out_table: The customers table to replace (``customer_clusters``).
        csv_path: The steward decisions file (``overrides.path``), if configured.
        refused_table: Where refused links go.
        published_clusters: The customers stewards see (``customer_clusters``), when
            ``out_table`` is an intermediate table that is turned into it afterwards.
        method: ``connected_components`` or ``best_links`` (``clustering.method``); see
            :func:`linkage.cluster.clustering.cluster_records`.

    Returns:
        The clustering summary, the decisions applied and the CSV load.

    Raises:
        OverrideError: The CSV is missing or malformed.

    Examples:
        ```py
        result = cluster_with_overrides(
            con,
            records_table="customer_records",
            pairs_table="pairwise_matches",
            threshold=stored.match_threshold,
            out_table="customer_clusters",
            csv_path=project.resolve(project.overrides.path) if project.overrides.path else None,
            method=project.clustering.method,
        )
        ```
    """
    csv = load_overrides_csv(con, csv_path) if csv_path is not None else None
    resolve_unmerges(con, clusters_table=published_clusters or out_table)
    overrides = effective_overrides(con, records_table=records_table)

    def run() -> ClusterSummary:
        return cluster_records(
            con,
            records_table=records_table,
            pairs_table=pairs_table,
            threshold=threshold,
            out_table=out_table,
            must_link=overrides.must_link,
            cannot_link=overrides.cannot_link,
            refused_table=refused_table,
            method=method,
        )

    summary = run()
    if overrides.pending_unmerges and resolve_unmerges(con, clusters_table=out_table).resolved:
        overrides = effective_overrides(con, records_table=records_table)
        summary = run()
    for line in overrides.warnings:
        logger.warning(line)
    return OverriddenClustering(summary=summary, overrides=overrides, csv=csv)
