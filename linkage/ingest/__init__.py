"""The ingestion stage: source deliveries in, ``staged_<source>`` tables out.

- reading: :mod:`~linkage.ingest.readers` (one module per format) and
  :mod:`~linkage.ingest.landing` (which files a source's path names);
- loading: :mod:`~linkage.ingest.deliveries` (new deliveries, checked) and
  :mod:`~linkage.ingest.raw_tables` (``raw_history_<source>``, ``raw_<source>``);
- staging: :mod:`~linkage.ingest.staging` over :mod:`~linkage.ingest.standardise`,
  :mod:`~linkage.ingest.field_parts`, :mod:`~linkage.ingest.lookups`,
  :mod:`~linkage.ingest.identifiers` and :mod:`~linkage.ingest.quarantine`;
- data quality: :mod:`~linkage.ingest.quality.rules` (rates and rules),
  :mod:`~linkage.ingest.quality.profiling`, :mod:`~linkage.ingest.quality.masking`,
  :mod:`~linkage.ingest.quality.staging_runs`, :mod:`~linkage.ingest.quality.checks` and
  :mod:`~linkage.ingest.quality.report`;
- the run's steps: :mod:`~linkage.ingest.steps` and :mod:`~linkage.ingest.union`.
"""
