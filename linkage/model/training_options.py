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
    model: ModelSpec = field(default_factory=ModelSpec)
    """Comparisons, blocking rules and fixed m/u: the project's ``model:`` section."""
