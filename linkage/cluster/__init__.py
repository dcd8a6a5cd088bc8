"""Scored pairs into customers: ``pairwise_matches`` in, ``customer_clusters`` out.

- :mod:`~linkage.cluster.algorithms`: connected components and best links, in memory,
  with cannot-link barriers;
- :mod:`~linkage.cluster.warehouse_io` and :mod:`~linkage.cluster.clustering`: reading
  links, clustering and writing clusters and refused links;
- :mod:`~linkage.cluster.overrides`: steward decisions (must-link, cannot-link, unmerge);
- :mod:`~linkage.cluster.stable_ids`: customer (and household) ids that survive runs;
- :mod:`~linkage.cluster.graph_metrics`: how well each customer's links hold it together;
- :mod:`~linkage.cluster.conservation`: every record in one customer or in quarantine;
- :mod:`~linkage.cluster.steps`: the clustering step of a run.
"""
