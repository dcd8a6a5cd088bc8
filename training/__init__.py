"""Training, evaluation and MLflow, with no Dagster.

- :mod:`~training.train`: the Fellegi-Sunter model trained with Splink;
- :mod:`~training.evaluate`, :mod:`~training.ground_truth`, :mod:`~training.labels`,
  :mod:`~training.label_evaluation`, :mod:`~training.threshold_curve` and
  :mod:`~training.evaluation_charts`: how good the customers are;
- :mod:`~training.labelling_tool`: Splink's clerical labelling page;
- :mod:`~training.mlflow_store`, :mod:`~training.tracking`,
  :mod:`~training.scoring_artifacts`, :mod:`~training.run_tracking`,
  :mod:`~training.promotion` and :mod:`~training.pyfunc`: MLflow runs, the registry
  (champion and challenger) and the registered model;
- :mod:`~training.steps`: the steps the Dagster assets call, one per asset.
"""
