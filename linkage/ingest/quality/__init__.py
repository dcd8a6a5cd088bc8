"""Data quality of the staged sources: rates, rules, profile and report.

- :mod:`~linkage.ingest.quality.rules`: null and validity rates and the rules they meet;
- :mod:`~linkage.ingest.quality.profiling` and :mod:`~linkage.ingest.quality.masking`:
  the per-field profile with personal data masked;
- :mod:`~linkage.ingest.quality.staging_runs`: staged row counts run after run;
- :mod:`~linkage.ingest.quality.report`: the offline HTML report;
- :mod:`~linkage.ingest.quality.checks`: the report and check steps of a run.
"""
