"""The ``model`` section: the knobs of the linkage model a data scientist tunes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from linkage.config.base import StrictModel
from linkage.model.comparisons import LIBRARY_FUNCTIONS, library_comparison

Rule = Annotated[list[str], Field(min_length=1, max_length=10)]


class ComparisonConfig(StrictModel):
    """One comparison: Meld's default, a function of ``splink.comparison_library``, or off."""

    preset: Literal["default"] | None = Field(
        default=None, description="'default': Meld's own comparison for the field."
    )
    function: str | None = Field(
        default=None,
        description=f"A function of splink.comparison_library: one of {list(LIBRARY_FUNCTIONS)}.",
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of the function besides the column, e.g. "
        "{score_threshold_or_thresholds: [0.9, 0.8]}.",
    )
    term_frequency_adjustments: bool = Field(
        default=False, description="Adjust exact matches for how common the value is."
    )
    off: bool = Field(default=False, description="Leave this comparison out of the model.")

    @field_validator("function")
    @classmethod
    def _library_function(cls, value: str | None) -> str | None:
        if value is not None and value not in LIBRARY_FUNCTIONS:
            raise ValueError(
                f"unknown comparison function {value!r}; expected one of "
                f"{list(LIBRARY_FUNCTIONS)} (splink.comparison_library)"
            )
        return value

    @model_validator(mode="after")
    def _one_choice(self) -> ComparisonConfig:
        if (self.preset is not None) + (self.function is not None) + self.off > 1:
            raise ValueError("give one of 'preset', 'function' or 'off'")
        if self.function is None:
            if self.args or self.term_frequency_adjustments:
                raise ValueError("'args' and 'term_frequency_adjustments' go with a 'function'")
            return self
        library_comparison(
            "value",
            self.function,
            self.args,
            term_frequency_adjustments=self.term_frequency_adjustments,
        )
        return self


class FixedLevelConfig(StrictModel):
    """m and/or u of one comparison level, set by hand and kept by training."""

    m: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Share of true matches at this level."
    )
    u: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Share of non-matches at this level."
    )

    @model_validator(mode="after")
    def _something_fixed(self) -> FixedLevelConfig:
        if self.m is None and self.u is None:
            raise ValueError("give m, u or both")
        return self


class ModelConfig(StrictModel):
    """Knobs of the linkage model a data scientist tunes."""

    match_threshold: float = Field(
        default=0.8,
        gt=0.0,
        lt=1.0,
        description="Match probability at or above which two records are the same customer. "
        "0.8 was chosen with benchmarks/ablation.py across FEBRL3/4, fake_1000 and the demo "
        "profiles (0.5 to 0.95 tried): recall of 0.5-0.65 on FEBRL, precision of 0.95 at scale.",
    )
    prediction_floor: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Pairs scoring below this probability are not stored in pairwise_matches.",
    )
    deterministic_recall: float = Field(
        default=0.7, gt=0.0, le=1.0, description="Estimated recall of the deterministic rules."
    )
    u_max_pairs: float = Field(
        default=5e6, gt=0, description="Record pairs sampled to estimate u probabilities."
    )
    seed: int = Field(default=42, description="Seed for u sampling: same seed, same model.")
    em_max_iterations: int = Field(default=25, ge=1, le=1000)
    max_comparisons: float = Field(
        default=2e8,
        gt=0,
        description="Most record pairs the prediction rules may generate; more fails the run "
        "before scoring starts, instead of running out of memory.",
    )
    robust_comparisons: bool = Field(
        default=True,
        description="Tolerant comparisons: names that sound alike, initials, dates of birth "
        "with a typo or transposed digits, phones by national number and last digits.",
    )
    blocking: Literal["auto", "fixed"] = Field(
        default="auto",
        description="auto: choose prediction rules from the data within max_comparisons; "
        "fixed: Meld's fixed list. prediction_rules, when given, are used as given.",
    )
    comparisons_per_record: float = Field(
        default=300.0,
        gt=0,
        description="With blocking: auto, the chosen rules generate at most this many pairs "
        "per record (and never more than max_comparisons).",
    )
    probability_floor: float = Field(
        default=1e-3,
        ge=0.0,
        lt=0.1,
        description="No trained m or u probability goes below this, so no level becomes an "
        "accidental veto; 0 turns the floor off.",
    )
    comparisons: dict[str, ComparisonConfig] = Field(
        default_factory=dict,
        description="Comparison per field (a matching column, a custom field or 'address'); "
        "a field not listed keeps Meld's default, custom fields an exact match with "
        "term-frequency adjustment.",
    )
    prediction_rules: list[Rule] | None = Field(
        default=None,
        description="Blocking rules for scoring, each a list of fields that must be equal, "
        "e.g. [[email], [first_name, last_name]]; default Meld's nine plus one per identifier.",
    )
    deterministic_rules: list[Rule] | None = Field(
        default=None,
        description="Rules whose pairs are almost surely matches, with deterministic_recall "
        "they estimate lambda; default [[email], [first_name, last_name, date_of_birth]].",
    )
    training_rules: list[Rule] | None = Field(
        default=None,
        description="One EM session per rule; default [[first_name, last_name], "
        "[date_of_birth], [email]].",
    )
    fixed: dict[str, dict[str | int, FixedLevelConfig]] = Field(
        default_factory=dict,
        description="Manual match weights: comparison -> level (its chart label, or its "
        "gamma value as in pairwise_matches) -> {m, u}. Training keeps these values.",
    )

    @field_validator("comparisons", mode="before")
    @classmethod
    def _comparison_shorthand(cls, value: Any) -> Any:
        """``phone: off``, ``email: EmailComparison``, ``first_name: default``; and YAML
        1.1 reads the key ``off`` of ``{off: true}`` as false, which is taken back."""
        if not isinstance(value, dict):
            return value
        expanded = {}
        for name, entry in value.items():
            if entry is False or entry == "off":
                entry = {"off": True}
            elif entry is None or entry == "default":
                entry = {"preset": "default"}
            elif isinstance(entry, str):
                entry = {"function": entry}
            elif isinstance(entry, dict) and False in entry:
                entry = {("off" if key is False else key): v for key, v in entry.items()}
            expanded[name] = entry
        return expanded
