"""The project config: one YAML file that describes a Meld deployment.

The file's path comes from ``MELD_CONFIG`` (default ``config/demo.yaml``) and is read
once, in :mod:`orchestration.definitions`. Paths inside the file are relative to the
file itself. Every error names the file, the source and the key at fault.

Examples:
    ```py
    project = load_project("config/demo.yaml")
    project.sources["crm_contacts"].fields["email"].column
    ```
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from linkage.canonical import CANONICAL_FIELDS, STAGED_COLUMNS
from linkage.errors import MeldError
from linkage.ingest.deliveries import LINEAGE_COLUMNS
from linkage.ingest.identifiers import DEFAULT_NATIONAL_ID_KEY_ENV
from linkage.model.comparisons import LIBRARY_FUNCTIONS, library_comparison
from linkage.model.settings import ModelSpec

DEFAULT_CONFIG_PATH = "config/demo.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
ISO_COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
CUSTOM_FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
RESERVED_FIELD_NAMES: frozenset[str] = frozenset(
    {
        *CANONICAL_FIELDS,
        *STAGED_COLUMNS,
        *LINEAGE_COLUMNS,
        "address",
        "unique_id",
        "source_dataset",
        "match_weight",
        "match_probability",
        "link_veto",
        "customer_id",
        "household_id",
    }
)
"""Names a custom field may not take: canonical fields, staged and lineage columns and
columns Meld or Splink add to pairs and customers."""
RESERVED_FIELD_PREFIXES: tuple[str, ...] = ("gamma_", "tf_", "bf_", "mw_", "match_")
"""Prefixes of the columns Splink adds per comparison."""


class ConfigError(MeldError, ValueError):
    """The project config is wrong; the message names the file, source and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMapping(_Strict):
    """Where a canonical field comes from in a source, and how to read it."""

    column: str = Field(min_length=1, description="Column name in the source file.")
    format: str | None = Field(
        default=None, description="strptime format for dates, e.g. '%d/%m/%Y'."
    )


class DatabaseSource(_Strict):
    """A table or query in another database, read through DuckDB or SQLAlchemy.

    Credentials never sit in the YAML: a SQLAlchemy URL (PostgreSQL, MySQL, SQLite, ...)
    is read from the environment variable named by ``url_env``.
    """

    kind: Literal["duckdb", "sqlalchemy"] = Field(
        description="'duckdb' reads a DuckDB file; 'sqlalchemy' any database with a URL."
    )
    path: str | None = Field(default=None, description="DuckDB file (kind duckdb).")
    url_env: str | None = Field(
        default=None,
        pattern=ENV_VAR_PATTERN,
        description="Environment variable holding the SQLAlchemy URL (kind sqlalchemy).",
    )
    table: str | None = Field(default=None, min_length=1, description="Table to read.")
    query: str | None = Field(default=None, min_length=1, description="SELECT to run.")

    @model_validator(mode="after")
    def _one_location(self) -> DatabaseSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        if self.kind == "duckdb" and not self.path:
            raise ValueError("kind duckdb needs 'path' (the DuckDB file)")
        if self.kind == "sqlalchemy" and not self.url_env:
            raise ValueError(
                "kind sqlalchemy needs 'url_env', the environment variable holding the URL"
            )
        return self


class FieldQualityRule(_Strict):
    """Thresholds for one field's null and validity rates in a delivery."""

    max_null_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Highest share of rows without a value."
    )
    min_valid_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Lowest share of present values that pass validation.",
    )
    blocking: bool = Field(
        default=False, description="Stop downstream assets when the rule fails (else warn)."
    )


class QualityConfig(_Strict):
    """Data-quality rules shared by all sources; a source may override per field."""

    fields: dict[str, FieldQualityRule] = Field(
        default_factory=lambda: {"*": FieldQualityRule(min_valid_rate=0.9)},
        description="Rules per canonical field; '*' applies to every mapped field.",
    )
    max_row_drop: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Warn when a source's staged rows fall by more than this share.",
    )
    max_field_length: int = Field(
        default=1000, ge=10, description="Longer values are nulled as 'too_long'."
    )
    top_values: int = Field(default=10, ge=1, le=100, description="Top values in the report.")

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldQualityRule]) -> dict[str, FieldQualityRule]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS) - {"*"})
        if unknown:
            raise ValueError(f"unknown canonical field(s) {unknown}")
        return value


class SourceConfig(_Strict):
    """One source system: where its records are and how its columns map to canonical
    fields. Give either ``path`` (files) or ``database`` (a table or query)."""

    path: str | None = Field(
        default=None, min_length=1, description="File or glob: .csv, .parquet, .json, .jsonl."
    )
    database: DatabaseSource | None = None
    id_column: str = Field(min_length=1, description="The record's id in its source.")
    default_country: str | None = Field(
        default=None,
        pattern=ISO_COUNTRY_PATTERN,
        description="ISO country for phone numbers without a country code.",
    )
    delimiter: str | None = Field(default=None, max_length=1, description="CSV delimiter.")
    encoding: Literal["utf-8", "latin-1", "windows-1252"] = Field(
        default="utf-8", description="Text encoding of CSV and JSON Lines files."
    )
    fields: dict[str, FieldMapping] = Field(min_length=1)
    required_fields: list[str] = Field(
        default_factory=list,
        description="Fields a row cannot do without: missing or invalid means quarantine.",
    )
    quality: dict[str, FieldQualityRule] = Field(
        default_factory=dict, description="Per-field rules overriding the project's."
    )
    custom_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Custom field name to source column, e.g. {birth_place: place_of_birth}: "
        "staged as folded text, compared by exact match with term-frequency adjustment "
        "unless model.comparisons says otherwise.",
    )

    @field_validator("custom_fields")
    @classmethod
    def _custom_field_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, column in value.items():
            if not re.fullmatch(CUSTOM_FIELD_PATTERN, name):
                raise ValueError(
                    f"custom field name {name!r} must match {CUSTOM_FIELD_PATTERN} "
                    "(lower_snake_case, at most 40 characters)"
                )
            if name in RESERVED_FIELD_NAMES or name.startswith(RESERVED_FIELD_PREFIXES):
                raise ValueError(
                    f"custom field name {name!r} clashes with a canonical field or a column "
                    "Meld adds; choose another name"
                )
            if not isinstance(column, str) or not column:
                raise ValueError(f"custom field {name!r}: give the source column's name")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if (self.path is None) == (self.database is None):
            raise ValueError("give exactly one of 'path' (files) or 'database'")
        unmapped = sorted(set(self.required_fields) - set(self.fields))
        if unmapped:
            raise ValueError(f"required_fields {unmapped} are not mapped in 'fields'")
        unknown = sorted(set(self.quality) - set(CANONICAL_FIELDS) - {"*"})
        if unknown:
            raise ValueError(f"quality: unknown canonical field(s) {unknown}")
        return self

    def quality_rule(self, field: str, project: QualityConfig) -> FieldQualityRule | None:
        """The rule for a field: this source's, else the project's, else the '*' ones."""
        for rules in (self.quality, project.fields):
            if field in rules:
                return rules[field]
        for rules in (self.quality, project.fields):
            if "*" in rules:
                return rules["*"]
        return None

    @field_validator("fields", mode="before")
    @classmethod
    def _column_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            key: {"column": spec} if isinstance(spec, str) else spec for key, spec in value.items()
        }

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldMapping]) -> dict[str, FieldMapping]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {unknown}; expected some of {list(CANONICAL_FIELDS)}"
            )
        return value

    @field_validator("default_country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return value.upper() if value else value


class MlflowConfig(_Strict):
    """Where MLflow keeps runs and models."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = Field(default="meld", min_length=1)
    registered_model: str = Field(default="meld-linkage", min_length=1)
    artifact_location: str = Field(
        default="",
        description="Folder for MLflow artifacts; default mlartifacts/ beside the store.",
    )


class TruthConfig(_Strict):
    """Known entity of each record, used only for evaluation."""

    path: str
    source_column: str = "source"
    id_column: str = "record_id"
    entity_column: str = "person_id"


Rule = Annotated[list[str], Field(min_length=1, max_length=10)]


class ComparisonConfig(_Strict):
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


class FixedLevelConfig(_Strict):
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


class ModelConfig(_Strict):
    """Knobs of the linkage model a data scientist tunes."""

    match_threshold: float = Field(
        default=0.95,
        gt=0.0,
        lt=1.0,
        description="Match probability at or above which two records are the same customer.",
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


class LabelsConfig(_Strict):
    """Clerical labels in Splink's pairwise format."""

    path: str = Field(description="CSV with unique_id_l, unique_id_r, clerical_match_score.")
    source_dataset_l: str | None = Field(
        default=None, description="Column naming the left record's source, when ids repeat."
    )
    source_dataset_r: str | None = None
    match_score_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="clerical_match_score at or above = a match."
    )
    estimate_m: bool = Field(
        default=False, description="Also estimate m probabilities from the labels."
    )


class EvaluationConfig(_Strict):
    """How models are evaluated against truth or labels."""

    beta: float = Field(default=1.0, gt=0.0, description="F-beta used to pick the best threshold.")
    worst_examples: int = Field(
        default=10, ge=0, le=200, description="False merges and missed links to chart."
    )


class ClusteringConfig(_Strict):
    """How scored pairs become customers."""

    method: Literal["connected_components", "best_links"] = Field(
        default="best_links",
        description="connected_components links every pair above the threshold; best_links "
        "also refuses links that would chain different people through weak bridges.",
    )
    warn_cluster_size: int = Field(
        default=50, ge=2, description="Warn about customers with more records than this."
    )


class PromotionConfig(_Strict):
    """When a newly trained model (challenger) becomes the champion."""

    metric: str = Field(default="cluster_f1", description="Evaluation metric compared.")
    tolerance: float = Field(
        default=0.005, ge=0.0, description="A challenger may be this much worse and still win."
    )


SurvivorshipRule = Literal[
    "source_priority", "most_recent", "most_frequent", "most_complete", "longest"
]
GOLDEN_FIELD_NAMES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "address",
    "loyalty_card",
    "customer_number",
)


class MasteringConfig(_Strict):
    """How the golden record of a customer is chosen, field by field."""

    default_rule: SurvivorshipRule = Field(
        default="most_frequent",
        description="Rule for fields without their own: the value most records agree on.",
    )
    rules: dict[str, SurvivorshipRule] = Field(
        default_factory=dict,
        description="Rule per golden field, e.g. {email: most_recent, phone: source_priority}.",
    )
    source_priority: list[str] = Field(
        default_factory=list,
        description="Source systems, most trusted first, for the source_priority rule.",
    )

    @field_validator("rules")
    @classmethod
    def _known_golden_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(GOLDEN_FIELD_NAMES))
        if unknown:
            raise ValueError(
                f"unknown golden field(s) {unknown}; expected some of {list(GOLDEN_FIELD_NAMES)}"
            )
        return value


class HouseholdConfig(_Strict):
    """Which customers form a household."""

    enabled: bool = True
    match_on: Literal["address", "address_and_last_name"] = Field(
        default="address",
        description="Customers sharing a normalised address (street and postcode, else "
        "street and city), optionally also their last name.",
    )
    max_customers: int = Field(
        default=12,
        ge=2,
        description="Larger groups (care homes, offices, bad data) are not made households.",
    )


class OverridesConfig(_Strict):
    """Steward decisions: must-link, cannot-link and unmerge, with who and why."""

    path: str | None = Field(
        default=None,
        description="CSV of decisions (record_a, record_b, decision, steward, reason, "
        "decided_at); also recorded with `meld override`.",
    )


class TableFileConfig(_Strict):
    """A file of related data (orders, products) and its column names."""

    path: str = Field(min_length=1, description="File or glob: csv, parquet, json(l).")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Meld column name to the file's column name."
    )
    delimiter: str | None = Field(default=None, max_length=1)
    encoding: Literal["utf-8", "latin-1", "windows-1252"] = "utf-8"


class RelationshipsConfig(_Strict):
    """What customers are related to: orders (with products, stores, staff)."""

    orders: TableFileConfig | None = None
    products: TableFileConfig | None = None


SourceName = Annotated[str, Field(pattern=SOURCE_NAME_PATTERN)]


class ProjectConfig(_Strict):
    """A whole Meld deployment. Paths are already resolved against the config file."""

    config_path: Path
    warehouse: Path
    artifacts: Path
    mlflow: MlflowConfig = MlflowConfig()
    sources: dict[SourceName, SourceConfig] = Field(min_length=1)
    truth: TruthConfig | None = None
    model: ModelConfig = ModelConfig()
    dob_range: tuple[date, date] | None = Field(
        default=None,
        description="Earliest and latest plausible date of birth; default an age of 0 to 120.",
    )
    quality: QualityConfig = QualityConfig()
    labels: LabelsConfig | None = None
    evaluation: EvaluationConfig = EvaluationConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    promotion: PromotionConfig = PromotionConfig()
    mastering: MasteringConfig = MasteringConfig()
    households: HouseholdConfig = HouseholdConfig()
    overrides: OverridesConfig = OverridesConfig()
    relationships: RelationshipsConfig = RelationshipsConfig()
    national_id_key_env: str = Field(
        default=DEFAULT_NATIONAL_ID_KEY_ENV,
        pattern=ENV_VAR_PATTERN,
        description="Environment variable with the key national ids are hashed with.",
    )

    @field_validator("dob_range")
    @classmethod
    def _ordered_range(cls, value: tuple[date, date] | None) -> tuple[date, date] | None:
        if value is not None and value[0] >= value[1]:
            raise ValueError(f"earliest {value[0]} must be before latest {value[1]}")
        return value

    @model_validator(mode="after")
    def _priority_names_sources(self) -> ProjectConfig:
        unknown = sorted(set(self.mastering.source_priority) - set(self.sources))
        if unknown:
            raise ValueError(f"mastering.source_priority names unknown source(s) {unknown}")
        return self

    @model_validator(mode="after")
    def _model_names_known_fields(self) -> ProjectConfig:
        self.model_spec().check()
        return self

    @property
    def custom_fields(self) -> tuple[str, ...]:
        """Custom fields declared by any source, in order of first declaration."""
        names = (name for source in self.sources.values() for name in source.custom_fields)
        return tuple(dict.fromkeys(names))

    def model_spec(self) -> ModelSpec:
        """The ``model:`` section as plain data for :mod:`training.train`."""
        return ModelSpec.from_config(self.model.model_dump(), self.custom_fields)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the config are resolved against."""
        return self.config_path.parent

    def resolve(self, relative: str) -> Path:
        """Resolve a path from the config against the config file's folder."""
        return resolve_path(self.base_dir, relative)

    def fingerprint(self) -> str:
        """A hash of the effective config, stable across machines."""
        payload = self.model_dump(mode="json", exclude={"config_path"})
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_path(base: Path, relative: str) -> Path:
    """Resolve ``relative`` against ``base`` unless it is absolute; ``~`` is expanded."""
    path = Path(relative).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _resolve_tracking_uri(base: Path, uri: str) -> str:
    """Make a relative ``sqlite:///file.db`` URI absolute against the config folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(resolve_path(base, uri[len(prefix) :]))
    if "://" not in uri:
        return str(resolve_path(base, uri))
    return uri


def _artifact_location(base: Path, mlflow: dict[str, Any]) -> str:
    """Resolve the artifact folder; by default ``mlartifacts/`` beside a sqlite store."""
    given = mlflow.get("artifact_location")
    if given:
        return str(resolve_path(base, str(given)))
    uri = str(mlflow.get("tracking_uri", ""))
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///") :]).parent / "mlartifacts")
    return str(base / "mlartifacts")


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid project config"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<top level>"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_project(path: str | Path) -> ProjectConfig:
    """Read and validate a project config file.

    Args:
        path: The YAML file.

    Returns:
        The validated config with every path made absolute.

    Raises:
        ConfigError: The file is missing, is not YAML, or breaks the schema. The
            message names the file and the key.
    """
    config_path = Path(path).expanduser().resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: project config file not found (set MELD_CONFIG)")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top level")
    base = config_path.parent
    raw = dict(raw)
    if "warehouse" not in raw:
        raise ConfigError(f"{config_path}: warehouse: required key missing")
    raw["warehouse"] = resolve_path(base, str(raw["warehouse"]))
    raw["artifacts"] = resolve_path(
        base, str(raw.get("artifacts") or Path(str(raw["warehouse"])).parent / "artifacts")
    )
    mlflow = raw.get("mlflow")
    if isinstance(mlflow, dict) and isinstance(mlflow.get("tracking_uri"), str):
        raw["mlflow"] = {
            **mlflow,
            "tracking_uri": _resolve_tracking_uri(base, mlflow["tracking_uri"]),
        }
    elif mlflow is None:
        raw["mlflow"] = {"tracking_uri": _resolve_tracking_uri(base, "sqlite:///mlflow.db")}
    if isinstance(raw.get("mlflow"), dict):
        raw["mlflow"] = {
            **raw["mlflow"],
            "artifact_location": _artifact_location(base, raw["mlflow"]),
        }
    try:
        return ProjectConfig(config_path=config_path, **raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(config_path, exc)) from exc
    except TypeError as exc:
        raise ConfigError(f"{config_path}: {exc}") from exc


def config_path_from_env() -> Path:
    """``MELD_CONFIG`` or the demo config; a relative path that does not exist from the
    working directory is taken from the repository root."""
    path = Path(os.environ.get("MELD_CONFIG", DEFAULT_CONFIG_PATH)).expanduser()
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path
