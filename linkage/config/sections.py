"""The smaller sections of the project config: MLflow, truth and labels, evaluation,
clustering, promotion, mastering, households, overrides and relationships."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from linkage.config.base import Encoding, StrictModel, shown
from linkage.model.vetoes import DEFAULT_LINK_VETOES, LINK_VETOES


class MlflowConfig(StrictModel):
    """Where MLflow keeps runs and models."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = Field(default="meld", min_length=1)
    registered_model: str = Field(default="meld-linkage", min_length=1)
    artifact_location: str = Field(
        default="",
        description="Folder for MLflow artifacts; default mlartifacts/ beside the store.",
    )
    record_level_artifacts: Literal["masked", "none"] = Field(
        default="masked",
        description="What MLflow gets of the charts and reports that show record values or "
        "record ids (waterfall charts, comparison viewer, term-frequency charts, run "
        "report): 'masked' logs a copy with every value masked, 'none' logs nothing. The "
        "charts themselves stay under the artifacts folder beside the warehouse.",
    )


class TruthConfig(StrictModel):
    """Known entity of each record, used only for evaluation."""

    path: str
    source_column: str = "source"
    id_column: str = "record_id"
    entity_column: str = "person_id"


class LabelsConfig(StrictModel):
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


class EvaluationConfig(StrictModel):
    """How models are evaluated against truth or labels."""

    beta: float = Field(default=1.0, gt=0.0, description="F-beta used to pick the best threshold.")
    worst_examples: int = Field(
        default=10, ge=0, le=200, description="False merges and missed links to chart."
    )


class ClusteringConfig(StrictModel):
    """How scored pairs become customers."""

    method: Literal["connected_components", "best_links"] = Field(
        default="best_links",
        description="connected_components links every pair above the threshold; best_links "
        "also refuses links that would chain different people through weak bridges.",
    )
    warn_cluster_size: int = Field(
        default=50, ge=2, description="Warn about customers with more records than this."
    )
    link_vetoes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LINK_VETOES),
        description="Evidence no score outweighs: pairs a veto forbids are never linked. "
        f"Known vetoes: {sorted(LINK_VETOES)}; [] applies none.",
    )

    @field_validator("link_vetoes")
    @classmethod
    def _known_vetoes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(LINK_VETOES))
        if unknown:
            raise ValueError(
                f"unknown link veto(es) {shown(unknown)}; expected some of {sorted(LINK_VETOES)}"
            )
        return value


class PromotionConfig(StrictModel):
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


class MasteringConfig(StrictModel):
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
                f"unknown golden field(s) {shown(unknown)}; "
                f"expected some of {list(GOLDEN_FIELD_NAMES)}"
            )
        return value


class HouseholdConfig(StrictModel):
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


class OverridesConfig(StrictModel):
    """Steward decisions: must-link, cannot-link and unmerge, with who and why."""

    path: str | None = Field(
        default=None,
        description="CSV of decisions (record_a, record_b, decision, steward, reason, "
        "decided_at); also recorded with `meld override`.",
    )


class TableFileConfig(StrictModel):
    """A file of related data (orders, products) and its column names."""

    path: str = Field(min_length=1, description="File or glob: csv, parquet, json(l).")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Meld column name to the file's column name."
    )
    delimiter: str | None = Field(default=None, max_length=1)
    encoding: Encoding = "utf-8"


class RelationshipsConfig(StrictModel):
    """What customers are related to: orders (with products, stores, staff)."""

    orders: TableFileConfig | None = None
    products: TableFileConfig | None = None
