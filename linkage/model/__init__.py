"""The linkage model: which record pairs are compared and how they are scored.

- :mod:`~linkage.model.comparisons`, :mod:`~linkage.model.blocking` and
  :mod:`~linkage.model.settings`: the Splink settings built from the ``model`` section;
- :mod:`~linkage.model.training_options`: what one training run is given;
- :mod:`~linkage.model.comparison_limit` and :mod:`~linkage.model.blocking_analysis`:
  what the blocking rules cost and reach before anything is scored;
- :mod:`~linkage.model.scoring`: every blocked pair scored into ``pairwise_matches``,
  with the link vetoes of :mod:`~linkage.model.vetoes`;
- :mod:`~linkage.model.match_weights`: the weights behind a model's levels;
- :mod:`~linkage.model.store`: trained models kept in the warehouse (``linkage_model``).
"""
