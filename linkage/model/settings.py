"""Assemble the Splink settings of a Meld linkage model from the project's model section.

:class:`ModelSpec` is the ``model:`` section of the project config as plain data (the
pydantic schema lives in :mod:`linkage.config.project`): which comparisons to build or
drop, the prediction, deterministic and training blocking rules, and the m and u
probabilities a data scientist fixed by hand. Left empty, it is Meld's default model.

Examples:
    ```py
    spec = ModelSpec.from_config(
        {"comparisons": {"phone": {"off": True}}, "fixed": {"email": {"2": {"m": 0.95}}}}
    )
    built = model_settings(["first_name", "last_name", "email", "phone"], spec)
    built.fixed_levels[0].label   # 'Exact match on email' (gamma_email = 2)
    ```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from splink import SettingsCreator
from splink.internals.comparison import Comparison
from splink.internals.comparison_creator import ComparisonCreator
from splink.internals.comparison_level import ComparisonLevel

from linkage.canonical import MATCHING_COLUMNS
from linkage.model.blocking import (
    BLOCKING_KEYS,
    DETERMINISTIC_RULES,
    PREDICTION_RULES,
    TRAINING_RULES,
    to_splink,
    usable_rules,
)
from linkage.model.comparisons import (
    ADDRESS_PARTS,
    ComparisonSpec,
    library_comparison,
    model_comparisons,
)
from linkage.model.tolerant_comparisons import MATCHING_AIDS

logger = logging.getLogger(__name__)

Rule = tuple[str, ...]


@dataclass(frozen=True)
class FixedProbabilities:
    """m and/or u of one comparison level, fixed by hand: training keeps them."""

    m: float | None = None
    u: float | None = None

    def __post_init__(self) -> None:
        if self.m is None and self.u is None:
            raise ValueError("give m, u or both")
        for name, value in (("m", self.m), ("u", self.u)):
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1]; found {value}")


@dataclass(frozen=True)
class FixedLevel:
    """A comparison level whose m and/or u a model took from the config."""

    comparison: str
    label: str
    comparison_vector_value: int
    """The level's ``gamma_<comparison>`` value in ``pairwise_matches``."""
    m: float | None
    u: float | None


@dataclass(frozen=True)
class ModelSpec:
    """What a project says about its model; the defaults are Meld's default model."""

    comparisons: Mapping[str, ComparisonSpec] = field(default_factory=dict)
    """Comparison name (a matching column, a custom field or ``address``) to its spec."""
    prediction_rules: tuple[Rule, ...] = PREDICTION_RULES
    deterministic_rules: tuple[Rule, ...] = DETERMINISTIC_RULES
    training_rules: tuple[Rule, ...] = TRAINING_RULES
    fixed: Mapping[str, Mapping[str, FixedProbabilities]] = field(default_factory=dict)
    """Comparison name to level (its label, or its comparison vector value as text) to
    the fixed probabilities."""
    custom_fields: tuple[str, ...] = ()
    """Custom fields of the project's sources, in order of first declaration."""
    robust_comparisons: bool = True
    """Tolerant name, date-of-birth and phone comparisons (phonetic codes, initials,
    transposed digits, national numbers); false gives the plain ones."""
    blocking: str = "auto"
    """``auto``: prediction rules chosen from the data (see
    :mod:`linkage.model.rule_selection`); ``fixed``: :data:`PREDICTION_RULES`. Rules
    given in the config are used as given either way."""
    rules_pinned: bool = False
    """The config named its prediction rules: they are used as given."""
    probability_floor: float = 1e-3
    """No trained m or u goes below this; 0 turns the floor off."""

    @classmethod
    def from_config(cls, model: Mapping[str, Any], custom_fields: Iterable[str] = ()) -> ModelSpec:
        """Read the ``model:`` section (``ModelConfig.model_dump()``); unknown keys are
        ignored, missing ones take the defaults."""
        comparisons = {}
        for name, entry in (model.get("comparisons") or {}).items():
            entry = dict(entry or {})
            comparisons[str(name)] = ComparisonSpec(
                function=entry.get("function"),
                args=dict(entry.get("args") or {}),
                term_frequency_adjustments=bool(entry.get("term_frequency_adjustments")),
                off=bool(entry.get("off")),
            )

        def rules(key: str, default: tuple[Rule, ...]) -> tuple[Rule, ...]:
            given = model.get(key)
            return default if given is None else tuple(tuple(rule) for rule in given)

        fixed = {
            str(name): {
                str(level): FixedProbabilities(m=values.get("m"), u=values.get("u"))
                for level, values in levels.items()
            }
            for name, levels in (model.get("fixed") or {}).items()
        }
        return cls(
            comparisons=comparisons,
            robust_comparisons=bool(model.get("robust_comparisons", True)),
            blocking=str(model.get("blocking") or "auto"),
            rules_pinned=model.get("prediction_rules") is not None,
            probability_floor=float(model.get("probability_floor", 1e-3)),
            prediction_rules=rules("prediction_rules", PREDICTION_RULES),
            deterministic_rules=rules("deterministic_rules", DETERMINISTIC_RULES),
            training_rules=rules("training_rules", TRAINING_RULES),
            fixed=fixed,
            custom_fields=tuple(custom_fields),
        )

    @property
    def known_fields(self) -> tuple[str, ...]:
        """Columns comparisons and rules may name: matching columns and custom fields."""
        return (*MATCHING_COLUMNS, *self.custom_fields)

    @property
    def candidate_columns(self) -> tuple[str, ...]:
        """Columns a model may use when they hold data. ``country`` only when the config
        compares or blocks on it: the default model does neither."""
        named = {c for rules in self._rule_sets().values() for rule in rules for c in rule}
        country = self.comparisons.get("country")
        use_country = "country" in named or (country is not None and country.function)
        fields = tuple(c for c in self.known_fields if c != "country" or use_country)
        return (*fields, *MATCHING_AIDS)

    def _rule_sets(self) -> dict[str, tuple[Rule, ...]]:
        return {
            "prediction_rules": self.prediction_rules,
            "deterministic_rules": self.deterministic_rules,
            "training_rules": self.training_rules,
        }

    def check(self) -> None:
        """Check the spec against every column it may see, before any data is read.

        Raises:
            ValueError: The message starts with the config key at fault, e.g.
                ``model.comparisons.city`` or ``model.fixed.email``.
        """
        known = set(self.known_fields)
        for name, spec in self.comparisons.items():
            key = f"model.comparisons.{name}"
            if name not in known | {"address"}:
                raise ValueError(
                    f"{key}: unknown field {name!r}; expected a matching column "
                    f"{list(MATCHING_COLUMNS)}, 'address' or a custom field "
                    f"{list(self.custom_fields)}"
                )
            if spec.off and spec.function is not None:
                raise ValueError(f"{key}: give either 'off' or 'function', not both")
            if name == "address" and spec.function is not None:
                raise ValueError(
                    f"{key}: 'address' is Meld's comparison of {list(ADDRESS_PARTS)}; "
                    "give a part its own comparison instead (e.g. model.comparisons.city)"
                )
            if name == "country" and spec.function is None and not spec.off:
                raise ValueError(f"{key}: country has no default comparison; give a function")
            if spec.function is not None:
                try:
                    library_comparison(
                        name,
                        spec.function,
                        spec.args,
                        term_frequency_adjustments=spec.term_frequency_adjustments,
                    )
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from exc
        rule_names = known | set(BLOCKING_KEYS) | set(MATCHING_AIDS)
        for key, rules in self._rule_sets().items():
            if not rules and key != "deterministic_rules":
                raise ValueError(f"model.{key}: give at least one rule")
            for index, rule in enumerate(rules):
                unknown = sorted(set(rule) - rule_names)
                if not rule or unknown:
                    raise ValueError(
                        f"model.{key}[{index}]: rule {list(rule)} names unknown field(s) "
                        f"{unknown}; expected columns of {sorted(known)} or derived keys "
                        f"{sorted(set(BLOCKING_KEYS) | set(MATCHING_AIDS))}"
                    )
        if self.fixed:
            comparisons = model_comparisons(
                self.candidate_columns,
                self.comparisons,
                self.custom_fields,
                robust=self.robust_comparisons,
            )
            _apply_fixed(comparisons, self.fixed, strict=True)


@dataclass(frozen=True)
class ModelSettings:
    """Splink settings for the columns with data, and the rules and fixed levels used."""

    settings: SettingsCreator
    prediction_rules: list[Rule]
    deterministic_rules: list[Rule]
    training_rules: list[Rule]
    fixed_levels: list[FixedLevel]


def model_settings(
    available: Iterable[str], spec: ModelSpec | None = None, *, em_max_iterations: int = 25
) -> ModelSettings:
    """Splink settings for deduplicating ``customer_records`` across all sources.

    Only comparisons and rules whose columns hold data are used. Each identifier with
    data (national id, loyalty card, ...) gets an exact-match comparison and, by
    default, a prediction blocking rule of its own. Levels fixed in ``spec`` carry their
    m and/or u with Splink's ``fix_m_probability`` / ``fix_u_probability``, which u
    sampling, EM and estimates from labels all leave alone.

    Args:
        available: Matching columns (and custom fields) that hold data.
        spec: The project's model section; default Meld's default model.
        em_max_iterations: Cap on EM iterations per training session.

    Returns:
        Settings for a ``dedupe_only`` model keyed on ``unique_id``, and what went in.

    Raises:
        ValueError: No usable comparison or prediction rule (nothing to match on), or a
            fixed level that is not in the model.
    """
    spec = spec or ModelSpec()
    columns = list(available)
    comparisons = model_comparisons(
        columns, spec.comparisons, spec.custom_fields, robust=spec.robust_comparisons
    )
    prediction = usable_rules(spec.prediction_rules, columns)
    if len(comparisons) < 2 or not prediction:
        raise ValueError(
            "too little to match on: need at least two of first_name, last_name, "
            "date_of_birth, email, phone, address fields, identifiers (national_id, "
            f"loyalty_card, ...) with data; found {sorted(columns)}"
        )
    configured, fixed_levels = _apply_fixed(comparisons, spec.fixed, strict=False)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=configured,
        blocking_rules_to_generate_predictions=to_splink(prediction),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["source_system"],
        max_iterations=em_max_iterations,
        em_convergence=0.0001,
    )
    return ModelSettings(
        settings=settings,
        prediction_rules=prediction,
        deterministic_rules=usable_rules(spec.deterministic_rules, columns),
        training_rules=usable_rules(spec.training_rules, columns),
        fixed_levels=fixed_levels,
    )


def build_settings(
    available: Iterable[str], *, em_max_iterations: int = 25, spec: ModelSpec | None = None
) -> SettingsCreator:
    """The Splink settings of :func:`model_settings`."""
    return model_settings(available, spec, em_max_iterations=em_max_iterations).settings


def _apply_fixed(
    comparisons: Sequence[ComparisonCreator],
    fixed: Mapping[str, Mapping[str, FixedProbabilities]],
    *,
    strict: bool,
) -> tuple[list[ComparisonCreator | dict[str, Any]], list[FixedLevel]]:
    """Write fixed m/u into the levels they name; those comparisons become dicts.

    ``strict`` (config checking, every column assumed present) refuses a comparison not
    in the model; otherwise one without data is skipped with a warning.
    """
    built = {c.get_comparison("duckdb").output_column_name: c for c in comparisons}
    for name in fixed:
        if name not in built:
            if strict:
                raise ValueError(
                    f"model.fixed.{name}: no comparison {name!r} in the model; "
                    f"comparisons are {list(built)}"
                )
            logger.warning("model.fixed.%s: no comparison with data; nothing fixed", name)
    result: list[ComparisonCreator | dict[str, Any]] = []
    fixed_levels: list[FixedLevel] = []
    for name, creator in built.items():
        if name not in fixed:
            result.append(creator)
            continue
        comparison = creator.get_comparison("duckdb")
        as_dict = comparison.as_dict()
        seen: set[int] = set()
        for key, values in fixed[name].items():
            level = _find_level(comparison, key, f"model.fixed.{name}")
            if level.comparison_vector_value in seen:
                raise ValueError(f"model.fixed.{name}: level {key!r} is fixed twice")
            seen.add(level.comparison_vector_value)
            level_dict = as_dict["comparison_levels"][comparison.comparison_levels.index(level)]
            for kind, value in (("m", values.m), ("u", values.u)):
                if value is not None:
                    level_dict[f"{kind}_probability"] = value
                    level_dict[f"fix_{kind}_probability"] = True
            fixed_levels.append(
                FixedLevel(
                    comparison=name,
                    label=level.label_for_charts,
                    comparison_vector_value=level.comparison_vector_value,
                    m=values.m,
                    u=values.u,
                )
            )
        result.append(as_dict)
    return result, fixed_levels


def _find_level(comparison: Comparison, key: str, where: str) -> ComparisonLevel:
    """The level a config key names: its label (any case) or its comparison vector value."""
    levels = comparison.comparison_levels
    if re.fullmatch(r"-?\d+", key.strip()):
        matches = [level for level in levels if level.comparison_vector_value == int(key)]
    else:
        matches = [level for level in levels if level.label_for_charts == key] or [
            level for level in levels if level.label_for_charts.lower() == key.strip().lower()
        ]
    described = "; ".join(
        f"{level.comparison_vector_value}: {level.label_for_charts}" for level in levels
    )
    if len(matches) != 1:
        found = "several levels" if matches else "no level"
        raise ValueError(f"{where}: {found} {key!r}; levels are {described}")
    if matches[0].is_null_level:
        raise ValueError(f"{where}: {key!r} is the null level, which has no m or u")
    return matches[0]
