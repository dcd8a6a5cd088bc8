"""What a data scientist tunes for one training run, as plain data.

:meth:`linkage.config.ProjectConfig.training_options` builds it from the ``model``
section of the project config; :func:`training.train.train_linkage_model` takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linkage.model.settings import ModelSpec


@dataclass(frozen=True)
class TrainingOptions:
    """What a data scientist tunes for one training run."""

    deterministic_recall: float = 0.7
    u_max_pairs: float = 5e6
    seed: int = 42
    em_max_iterations: int = 25
    labels_table: str | None = None
    """Table of clerically labelled *matching* pairs (``unique_id_l``, ``unique_id_r``):
    when set, m is also estimated from them (one more estimate in Splink's median)."""
    match_threshold: float = 0.8
    """Match probability from which a pair is a likely match when choosing blocking rules."""
    max_comparisons: float = 2e8
    """Most pairs the prediction rules may generate (``model.max_comparisons``)."""
    comparisons_per_record: float = 300.0
    """Automatic blocking spends at most this many comparisons per record (and never
    more than ``max_comparisons``)."""
    model: ModelSpec = field(default_factory=ModelSpec)
    """Comparisons, blocking rules and fixed m/u: the project's ``model:`` section."""
