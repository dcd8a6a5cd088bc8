"""The landing sensor asks for a run only when files are new or changed."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from orchestration.sensors import build_landing_sensor


def _evaluate(sensor: dg.SensorDefinition, cursor: str | None) -> dg.SensorResult:
    return sensor(dg.build_sensor_context(cursor=cursor))


def test_sensor_runs_on_new_and_changed_files_only(write_project, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "crm_1.csv").write_text("id,mail\n1,a@example.com\n")
    project = write_project(
        {
            "sources": {
                "crm": {"path": "landing/crm_*.csv", "id_column": "id", "fields": {"email": "mail"}}
            }
        }
    )
    sensor = build_landing_sensor(project)

    first = _evaluate(sensor, None)
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags["meld/changed"] == "crm"

    unchanged = _evaluate(sensor, first.cursor)
    assert not unchanged.run_requests

    (landing / "crm_2.csv").write_text("id,mail\n2,b@example.com\n")
    added = _evaluate(sensor, unchanged.cursor)
    assert len(added.run_requests) == 1

    path = landing / "crm_2.csv"
    path.write_text("id,mail\n2,b@example.com\n3,c@example.com\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = _evaluate(sensor, added.cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].run_key != added.run_requests[0].run_key


def test_sensor_names_only_the_new_files_and_ignores_removals(
    write_project, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in ("crm_1.csv", "crm_2.csv"):
        (landing / name).write_text("id,mail\n1,a@example.com\n")
    project = write_project(
        {
            "sources": {
                "crm": {"path": "landing/crm_*.csv", "id_column": "id", "fields": {"email": "mail"}}
            }
        }
    )
    sensor = build_landing_sensor(project)
    first = _evaluate(sensor, None)
    assert first.run_requests[0].tags["meld/changed_files"] == "crm_1.csv,crm_2.csv"

    (landing / "crm_3.csv").write_text("id,mail\n3,c@example.com\n")
    added = _evaluate(sensor, first.cursor)
    assert added.run_requests[0].tags["meld/changed_files"] == "crm_3.csv"

    (landing / "crm_1.csv").unlink()
    removed = _evaluate(sensor, added.cursor)
    assert not removed.run_requests


def test_sensor_skips_database_sources(write_project, tmp_path: Path) -> None:
    project = write_project(
        {
            "sources": {
                "legacy": {
                    "database": {"kind": "duckdb", "path": "legacy.duckdb", "table": "people"},
                    "id_column": "id",
                    "fields": {"email": "mail"},
                }
            }
        }
    )
    result = _evaluate(build_landing_sensor(project), None)
    assert not result.run_requests
