"""Sensors: start the pipeline when new or changed source files land."""

import hashlib
import json
import os

import dagster as dg
from dagster import SensorEvaluationContext
from dagster_shared.error import SerializableErrorInfo

from assets.audit import record_failure
from assets.resources import REFUSED_TAG, MlflowResource, WarehouseResource
from linkage.config import ProjectConfig
from orchestration.jobs import meld_pipeline

MAX_LISTED_FILES = 20


def landing_state(project: ProjectConfig) -> dict[str, dict[str, str]]:
    """Each file-based source's files with a cheap signature: size and modification time.

    Database sources are not watched: schedule them instead.
    """
    state: dict[str, dict[str, str]] = {}
    for name, source in project.sources.items():
        if source.path is None:
            continue
        files: dict[str, str] = {}
        for path in project.source_files(name):  # the files ingestion reads, nothing else
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files[str(path)] = f"{stat.st_size}:{stat.st_mtime_ns}"
        state[name] = files
    return state


def new_or_changed_files(
    previous: dict[str, dict[str, str]], current: dict[str, dict[str, str]]
) -> dict[str, list[str]]:
    """Per source, the files that are new or whose size or modification time changed.

    A removed file is not a reason to run: deliveries already loaded stay loaded.
    """
    changed: dict[str, list[str]] = {}
    for source, files in current.items():
        before = previous.get(source, {})
        paths = sorted(path for path, signature in files.items() if before.get(path) != signature)
        if paths:
            changed[source] = paths
    return changed


def build_landing_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    """A sensor that runs the pipeline when any source's landing files are new or changed."""

    @dg.sensor(
        name="landing_files_sensor",
        job=meld_pipeline,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Watches each file source's landing path and runs meld_pipeline when files are "
            "new or changed (size or modification time). Loading skips content it has seen, "
            "so a touched but identical file adds nothing."
        ),
    )
    def landing_files_sensor(context: SensorEvaluationContext) -> dg.SensorResult:
        state = landing_state(project)
        try:
            previous = json.loads(context.cursor) if context.cursor else {}
        except json.JSONDecodeError:
            previous = {}
        if not all(isinstance(v, dict) for v in previous.values()):
            previous = {}  # a cursor from an older version of this sensor
        changed = new_or_changed_files(previous, state)
        cursor = json.dumps(state, sort_keys=True)
        if not changed:
            return dg.SensorResult(skip_reason="no new or changed landing files", cursor=cursor)
        listed = [os.path.basename(p) for paths in changed.values() for p in paths]
        context.log.info("new or changed files: %s", ", ".join(listed[:MAX_LISTED_FILES]))
        run_key = hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:16]
        run_key = hashlib.sha256((run_key + cursor).encode()).hexdigest()[:16]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=run_key,
                    tags={
                        "meld/changed": ",".join(sorted(changed)),
                        "meld/changed_files": ",".join(listed[:MAX_LISTED_FILES]),
                    },
                )
            ],
            cursor=cursor,
        )

    return landing_files_sensor


FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "


def value_free_error(error: SerializableErrorInfo) -> str:
    """The text of a step's error as Dagster stored it, without record values.

    A ``dg.Failure`` comes from :func:`assets.failures.failure_at`, whose description
    holds none; any other error's message may quote a value, so only its type is kept,
    with that of its innermost cause (what went wrong first).

    Examples:
        >>> value_free_error(SerializableErrorInfo(FAILURE_PREFIX + "sources.crm: empty\\n",
        ...                                        [], "Failure"))
        'sources.crm: empty'
        >>> value_free_error(SerializableErrorInfo("KeyError: 'anna@example.se'", [],
        ...                                        "KeyError"))
        'KeyError (the message is left out: it may quote record values)'
    """
    if error.cls_name == "Failure":
        return error.message.removeprefix(FAILURE_PREFIX).strip() or "step failed"
    innermost = error
    while innermost.cause is not None:
        innermost = innermost.cause
    kind = error.cls_name
    if innermost is not error:
        kind = f"{kind} caused by {innermost.cls_name}"
    return f"{kind} (the message is left out: it may quote record values)"


def run_failure_text(event: dg.DagsterEvent) -> str:
    """Why a run failed outside any step: Dagster's own sentence, or the type of its error."""
    data = event.event_specific_data
    error = getattr(data, "error", None)
    if isinstance(error, SerializableErrorInfo):
        return value_free_error(error)
    return (event.message or "run failed").strip()


def build_failure_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    """Record in the run ledger every failed run the failure hook could not record.

    The hook on each asset records a run when a step fails; a run can also fail
    outside any asset step (a blocking asset check, a run that could not start).
    This sensor, run by the Dagster daemon, appends those runs as failed unless the
    ledger has them already.
    """

    @dg.run_failure_sensor(
        name="linkage_run_failures",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Appends failed runs to the run ledger linkage_runs with their error.",
    )
    def linkage_run_failures(
        context: dg.RunFailureSensorContext, warehouse: WarehouseResource, mlflow: MlflowResource
    ) -> None:
        run = context.dagster_run
        if REFUSED_TAG in run.tags:  # refused before writing anything: not a linkage run
            context.log.info(
                "run %s was refused while run %s held the warehouse; not recorded",
                run.run_id,
                run.tags[REFUSED_TAG],
            )
            return
        steps = context.get_step_failure_events()
        failed_step = steps[0].step_key if steps else None
        if steps and steps[0].step_failure_data.error is not None:
            error = value_free_error(steps[0].step_failure_data.error)
        else:
            error = run_failure_text(context.failure_event)
        if record_failure(
            project,
            warehouse,
            mlflow,
            instance=context.instance,
            run_id=run.run_id,
            job_name=run.job_name,
            failed_step=failed_step,
            error=error,
        ):
            context.log.info("run %s recorded as failed in linkage_runs", run.run_id)

    return linkage_run_failures
