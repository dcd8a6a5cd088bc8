"""How Meld is run: the Dagster wiring (:mod:`~orchestration.definitions`,
:mod:`~orchestration.build`, jobs, schedules, sensors) and the ``meld`` command line
(:mod:`orchestration.cli`). Nothing below imports this package."""
