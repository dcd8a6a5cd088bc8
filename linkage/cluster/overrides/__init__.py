"""Steward decisions: must-link, cannot-link and unmerge, with who decided and why.

- :mod:`~linkage.cluster.overrides.decisions`: the decision model and its append-only
  tables (``steward_overrides``);
- :mod:`~linkage.cluster.overrides.csv_file`: decisions loaded from ``overrides.path``;
- :mod:`~linkage.cluster.overrides.in_force`: which decisions hold, unmerges resolved;
- :mod:`~linkage.cluster.overrides.clustering`: clustering with the decisions in force.
"""
