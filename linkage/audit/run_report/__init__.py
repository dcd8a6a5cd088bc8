"""The per-run report: one self-contained HTML page that audits a pipeline run.

:func:`linkage.audit.run_report.page.write_run_report` writes the page. Its parts:
``formatting`` (how values and changes read), ``markup`` (escaped HTML tables, notes,
inline charts), the sections ``run`` (header, run facts, inputs, config), ``quality``,
``model`` (prior, levels and weights, thresholds), ``evaluation``, ``customers`` and
``changes`` (since the previous run), and ``page`` (CSS and the assembled page). The
match-weight maths is :mod:`linkage.model.match_weights`.
"""
