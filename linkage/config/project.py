"""The whole project config, :class:`ProjectConfig`, and its translation into the plain
specs the domain code takes (model, sources, files, databases)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import Field, PrivateAttr, field_validator, model_validator

from linkage.cluster.steps import ClusteringSpec
from linkage.config.base import ENV_VAR_PATTERN, SOURCE_NAME_PATTERN, ConfigError, StrictModel
from linkage.config.model import ModelConfig
from linkage.config.paths import InputRoots, resolve_path
from linkage.config.roles import RolesConfig
from linkage.config.sections import (
    ClusteringConfig,
    EvaluationConfig,
    HouseholdConfig,
    LabelsConfig,
    MasteringConfig,
    MlflowConfig,
    OverridesConfig,
    PromotionConfig,
    RelationshipsConfig,
    TruthConfig,
)
from linkage.config.sources import QualityConfig, SourceConfig
from linkage.ingest.identifiers import DEFAULT_NATIONAL_ID_KEY_ENV
from linkage.ingest.landing import matching_files
from linkage.ingest.quality.checks import SourceQuality
from linkage.ingest.readers.database import DatabaseSpec
from linkage.ingest.staging import FieldSpec
from linkage.ingest.steps import RawSourceSpec, StagingSpec
from linkage.master.golden import resolve_rules
from linkage.master.steps import HouseholdSpec
from linkage.model.settings import ModelSpec
from linkage.model.training_options import TrainingOptions
from linkage.tables import CLERICAL_LABEL_MATCHES

SourceName = Annotated[str, Field(pattern=SOURCE_NAME_PATTERN)]


class ProjectConfig(StrictModel):
    """A whole Meld deployment. Paths are already resolved against the config file."""

    config_path: Path
    warehouse: Path
    artifacts: Path
    _input_roots: InputRoots | None = PrivateAttr(default=None)
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
    roles: RolesConfig = RolesConfig()
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
    def _roles_name_known_fields(self) -> ProjectConfig:
        self.roles.check_fields(self.custom_fields)
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

    def source_pattern(self, name: str) -> Path | None:
        """The resolved file or glob of a file source; None for a database source."""
        path = self.sources[name].path
        return self.resolve(path) if path else None

    def source_files(self, name: str) -> list[Path]:
        """The files a file source names today, oldest first; none for a database source.

        Ingestion, the landing sensor and ``meld check-config`` all list files this way.
        """
        pattern = self.source_pattern(name)
        files = matching_files(pattern) if pattern is not None else []
        roots = self._input_roots
        for path in files if roots is not None else []:
            if not roots.contains(path):  # e.g. a symlink dropped into a landing folder
                raise ConfigError(
                    f"sources.{name}.path: {path} resolves outside the project's folders "
                    "(a link?); move the file in, or declare its folder in data_roots"
                )
        return files

    def confine_inputs(self, roots: InputRoots) -> None:
        """Check every file :meth:`source_files` lists against ``roots`` from now on:
        files that appear after the config was read are confined too."""
        self._input_roots = roots

    def database_spec(self, name: str) -> DatabaseSpec | None:
        """Where a database source reads from, as the readers take it; None for files."""
        db = self.sources[name].database
        if db is None:
            return None
        return DatabaseSpec(
            kind=db.kind,
            path=self.resolve(db.path) if db.path else None,
            url_env=db.url_env,
            table=db.table,
            query=db.query,
        )

    def raw_source_spec(self, name: str) -> RawSourceSpec:
        """What loading source ``name`` into ``raw_<name>`` needs."""
        source = self.sources[name]
        mapped = {f"fields.{field}": spec.column for field, spec in source.fields.items()}
        mapped.update(
            {f"custom_fields.{field}": column for field, column in source.custom_fields.items()}
        )
        national_id = source.fields.get("national_id")
        return RawSourceSpec(
            source_system=name,
            id_column=source.id_column,
            mapped_columns=mapped,
            pattern=self.source_pattern(name),
            database=self.database_spec(name),
            delimiter=source.delimiter,
            encoding=source.encoding,
            national_id_column=national_id.column if national_id else None,
            national_id_key_env=self.national_id_key_env,
        )

    def staging_spec(self, name: str) -> StagingSpec:
        """What standardising ``raw_<name>`` into ``staged_<name>`` needs."""
        source = self.sources[name]
        return StagingSpec(
            source_system=name,
            fields={field: FieldSpec(m.column, m.format) for field, m in source.fields.items()},
            default_country=source.default_country,
            dob_range=self.dob_range,
            required_fields=source.required_fields,
            max_field_length=self.quality.max_field_length,
            custom_fields=source.custom_fields,
            match_invalid_values=self.quality.match_invalid_values,
        )

    def quality_spec(self, name: str) -> SourceQuality:
        """A source's mapped fields (canonical and custom) and each field's quality rule."""
        source = self.sources[name]
        fields = {
            **{field: spec.column for field, spec in source.fields.items()},
            **source.custom_fields,
        }
        rules = {field: source.quality_rule(field, self.quality) for field in fields}
        return SourceQuality(source_system=name, fields=fields, rules=rules)

    def quality_specs(self) -> list[SourceQuality]:
        """:meth:`quality_spec` of every source, in config order."""
        return [self.quality_spec(name) for name in self.sources]

    def training_options(
        self, *, seed: int | None = None, u_max_pairs: float | None = None
    ) -> TrainingOptions:
        """The ``model`` section (and ``labels.estimate_m``) as training options;
        ``seed`` and ``u_max_pairs`` override it for one run."""
        model, labels = self.model, self.labels
        return TrainingOptions(
            deterministic_recall=model.deterministic_recall,
            u_max_pairs=u_max_pairs or model.u_max_pairs,
            seed=model.seed if seed is None else seed,
            em_max_iterations=model.em_max_iterations,
            match_threshold=model.match_threshold,
            max_comparisons=model.max_comparisons,
            comparisons_per_record=model.comparisons_per_record,
            model=self.model_spec(),
            labels_table=(
                CLERICAL_LABEL_MATCHES if labels is not None and labels.estimate_m else None
            ),
        )

    def clustering_spec(self) -> ClusteringSpec:
        """The ``clustering`` section and the steward decisions file, for clustering."""
        path = self.overrides.path
        return ClusteringSpec(
            method=self.clustering.method,
            warn_cluster_size=self.clustering.warn_cluster_size,
            overrides_csv=self.resolve(path) if path else None,
        )

    def survivorship_rules(self) -> dict[str, str]:
        """The survivorship rule of every golden field (``mastering.rules``, else
        ``mastering.default_rule``)."""
        return resolve_rules(self.mastering.rules, self.mastering.default_rule)

    def household_spec(self) -> HouseholdSpec:
        """The ``households`` section as the mastering step takes it."""
        households = self.households
        return HouseholdSpec(
            enabled=households.enabled,
            match_on=households.match_on,
            max_customers=households.max_customers,
        )

    def fingerprint(self) -> str:
        """A hash of the effective config, stable across machines."""
        payload = self.model_dump(mode="json", exclude={"config_path"})
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
