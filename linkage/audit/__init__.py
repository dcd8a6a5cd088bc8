"""Audit: what each run did, why records were linked, and what changed.

- :mod:`~linkage.audit.ledger`: the append-only, hash-chained run ledger (``linkage_runs``);
- :mod:`~linkage.audit.run_facts` and :mod:`~linkage.audit.run_entry`: what a ledger row
  records (inputs, code version, counts, hashes);
- :mod:`~linkage.audit.change_log`: id events, record moves and merge evidence per run;
- :mod:`~linkage.audit.explain`: why two records are (or are not) one customer;
- :mod:`~linkage.audit.reproduce`: re-run a run's scoring and clustering and compare;
- :mod:`~linkage.audit.run_report`: the per-run HTML report;
- :mod:`~linkage.audit.summary`: what the last run produced, for ``meld summary``.
"""
