"""Sensors: start the pipeline when new source files land."""

import glob
import hashlib
import json
import os

import dagster as dg
from dagster import SensorEvaluationContext

from orchestration.jobs import meld_pipeline
from orchestration.project import ProjectConfig


def landing_state(project: ProjectConfig) -> dict[str, str]:
    """A cheap signature of each source's files: name, size and modification time."""
    state = {}
    for name, source in project.sources.items():
        pattern = str(project.resolve(source.path))
        parts = []
        for path in sorted(glob.glob(pattern, recursive=True)):
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
        state[name] = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return state


def build_landing_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    """A sensor that runs the pipeline when any source's landing files change."""

    @dg.sensor(
        name="landing_files_sensor",
        job=meld_pipeline,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Runs meld_pipeline when a source's landing files are added or changed.",
    )
    def landing_files_sensor(context: SensorEvaluationContext) -> dg.SensorResult:
        state = landing_state(project)
        previous = json.loads(context.cursor) if context.cursor else {}
        changed = sorted(name for name, value in state.items() if previous.get(name) != value)
        cursor = json.dumps(state, sort_keys=True)
        if not changed:
            return dg.SensorResult(skip_reason="no new or changed landing files", cursor=cursor)
        run_key = hashlib.sha256(cursor.encode()).hexdigest()[:16]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=run_key, tags={"meld/changed": ",".join(changed)})],
            cursor=cursor,
        )

    return landing_files_sensor
