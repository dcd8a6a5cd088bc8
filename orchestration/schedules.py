"""Schedules. They start stopped: an operator turns them on in the UI."""

from __future__ import annotations

import dagster as dg

from orchestration.jobs import meld_pipeline

nightly_pipeline = dg.ScheduleDefinition(
    name="nightly_pipeline",
    job=meld_pipeline,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Run the whole pipeline every night at 02:00.",
)

SCHEDULES = [nightly_pipeline]
