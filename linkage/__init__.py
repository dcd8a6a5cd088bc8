"""Meld's domain code, with no Dagster: one subpackage per stage, in the order data flows.

- :mod:`linkage.config`: the project config (YAML) and its translation into specs;
- :mod:`linkage.ingest`: source files and databases in, ``staged_<source>`` tables and
  ``customer_records`` out, with quarantine and data quality;
- :mod:`linkage.model`: the Splink model (comparisons, blocking, settings), scoring into
  ``pairwise_matches``, link vetoes and the model store;
- :mod:`linkage.cluster`: scored pairs into customers (``customer_clusters``), steward
  overrides, stable ids and graph metrics;
- :mod:`linkage.master`: golden records, households, relationships, the customer view;
- :mod:`linkage.audit`: the run ledger, run facts, change log, explain, reproduce and the
  run report;
- :mod:`linkage.demo`: the demo data generator.

Shared by all: :mod:`linkage.tables` (every table and artifact name),
:mod:`linkage.warehouse` (DuckDB helpers), :mod:`linkage.canonical` (the canonical
schema), :mod:`linkage.errors`, :mod:`linkage.parallel` and :mod:`linkage.charts`.
Each stage's ``steps`` module holds the calls the Dagster assets make.
"""
