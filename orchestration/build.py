"""Build Dagster definitions for a project config, with no side effects at import.

Tests, benchmarks and tools import from here; :mod:`orchestration.definitions` calls
:func:`build_definitions` once for the config named by ``MELD_CONFIG``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.audit import build_audit_assets, build_failure_hook
from assets.blocking import build_blocking_assets, build_blocking_checks
from assets.checks import build_checks
from assets.evaluation import build_evaluation_assets, build_labelling_assets
from assets.ingestion import build_ingestion_assets
from assets.linkage import build_linkage_assets
from assets.mastering import build_mastering_assets
from assets.promotion import build_promotion_assets
from assets.quality import build_quality_assets, build_quality_checks
from assets.relationships import build_relationship_assets
from assets.resources import MlflowResource, WarehouseResource
from linkage.config import ProjectConfig, load_project
from orchestration.jobs import JOBS
from orchestration.schedules import SCHEDULES
from orchestration.sensors import build_failure_sensor, build_landing_sensor


def build_resources(project: ProjectConfig) -> dict[str, dg.ConfigurableResource]:
    """The warehouse and MLflow resources for a project.

    The warehouse resource knows the config file, so that a run can record earlier runs
    that were killed before they finished (see :mod:`assets.resources`).
    """
    return {
        "warehouse": WarehouseResource(
            path=str(project.warehouse), config_path=str(project.config_path)
        ),
        "mlflow": MlflowResource.from_project(project),
    }


def build_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """Every asset of the pipeline for a project, in flow order, the run ledger last.

    Each carries the failure hook that records a failed run in the ledger.
    """
    pipeline = [
        *build_ingestion_assets(project),
        *build_quality_assets(project),
        *build_blocking_assets(project),
        *build_linkage_assets(project),
        *build_mastering_assets(project),
        *build_relationship_assets(project),
        *build_evaluation_assets(project),
        *build_promotion_assets(project),
    ]
    upstream = [key for asset in pipeline for key in asset.keys]
    hook = build_failure_hook(project)
    return [
        asset.with_hooks({hook}) for asset in (*pipeline, *build_audit_assets(project, upstream))
    ]


def build_definitions(config_path: str | Path) -> dg.Definitions:
    """Definitions for the project described by ``config_path``.

    Steps run in one process: the DuckDB warehouse is a single file that one writer
    holds at a time.
    """
    project = load_project(config_path)
    return dg.Definitions(
        # The labelling tool is on demand (job label_pairs), so not among build_assets.
        assets=[*build_assets(project), *build_labelling_assets(project)],
        asset_checks=[
            *build_checks(project),
            *build_quality_checks(project),
            *build_blocking_checks(project),
        ],
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=[build_landing_sensor(project), build_failure_sensor(project)],
        resources=build_resources(project),
        executor=dg.in_process_executor,
    )
