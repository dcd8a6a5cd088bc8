"""The training-side steps of a run, one call per asset: train and score
(:mod:`~training.steps.model`), blocking analysis, evaluation, labelling, promotion and
the run ledger (:mod:`~training.steps.audit`). Each takes the project config and an
MLflow target, and returns a typed outcome."""
