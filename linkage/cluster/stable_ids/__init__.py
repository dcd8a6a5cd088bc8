"""Ids that survive runs: a customer (or household) keeps its id while its members stay
together; merges, splits and retirements are recorded with the records that moved.

- :mod:`~linkage.cluster.stable_ids.tables`: the id registry, membership and history tables;
- :mod:`~linkage.cluster.stable_ids.matching`: previous ids matched to this run's groups;
- :mod:`~linkage.cluster.stable_ids.assign`: :func:`assign_stable_ids`, the entry point.
"""
