"""``meld reproduce``: re-run a ledger run's scoring and clustering in a scratch warehouse.

The scoring input comes from the warehouse when its ``customer_records`` are still
the ones the run scored (same content hash); otherwise the run's input files (names
and SHA-256 in the ledger) are copied into a scratch landing folder, in delivery
order, and ingested with the run's effective config. A file that is gone or whose
content changed makes the run not reproducible, and the outcome says which.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import yaml

from assets.ingestion import INGESTION_GROUP
from linkage.audit.ledger import find_run
from linkage.audit.reproduce import (
    ReproduceOutcome,
    copy_table,
    current_records_match,
    rescore_and_cluster,
)
from linkage.config import ProjectConfig, load_project
from linkage.ingest.deliveries import file_sha256
from linkage.tables import CUSTOMER_RECORDS
from linkage.warehouse import open_warehouse
from orchestration.build import build_assets, build_resources

logger = logging.getLogger(__name__)

SCRATCH_WAREHOUSE = "reproduce.duckdb"


def _stage_inputs(entry: Mapping[str, Any], config: dict[str, Any], landing: Path) -> list[str]:
    """Copy each source's recorded deliveries into ``landing/<source>``; point the config
    at them. Returns the problems (missing or changed files)."""
    problems: list[str] = []
    inputs = entry.get("inputs") or []
    for name, source in config.get("sources", {}).items():
        if source.get("database") is not None:
            problems.append(f"source '{name}' reads a database: its rows are not kept")
            continue
        deliveries = sorted(
            (i for i in inputs if i.get("source") == name), key=lambda i: i["delivery_seq"]
        )
        if not deliveries:
            problems.append(f"source '{name}': the run recorded no input file")
            continue
        folder = landing / name
        folder.mkdir(parents=True, exist_ok=True)
        for order, delivery in enumerate(deliveries, start=1):
            original = Path(delivery["file"])
            if not original.is_file():
                problems.append(f"source '{name}': input file {original} is gone")
                continue
            if file_sha256(original) != delivery["sha256"]:
                problems.append(
                    f"source '{name}': input file {original} changed since the run "
                    "(SHA-256 differs)"
                )
                continue
            copy = folder / f"{order:05d}_{original.name}"
            shutil.copyfile(original, copy)
            os.utime(copy, (order, order))  # delivery order is file age order
        source["path"] = str(folder / "*")
    return problems


def _ingest(entry: Mapping[str, Any], folder: Path) -> list[str]:
    """Ingest the run's input files into ``folder``'s scratch warehouse."""
    config = dict(entry.get("config") or {})
    config["sources"] = {k: dict(v) for k, v in (config.get("sources") or {}).items()}
    problems = _stage_inputs(entry, config, folder / "landing")
    if problems:
        return problems
    config.update(
        warehouse=str(folder / SCRATCH_WAREHOUSE),
        artifacts=str(folder / "artifacts"),
        overrides={"path": None},
        relationships={},
        truth=None,
        labels=None,
    )
    path = folder / "project.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    project = load_project(path)
    ingestion = [
        a
        for a in build_assets(project)
        if a.group_names_by_key
        and all(group == INGESTION_GROUP for group in a.group_names_by_key.values())
    ]
    result = dg.materialize(
        ingestion,
        resources=build_resources(project),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    if not result.success:
        failures = [e.message or "" for e in result.all_events if e.is_step_failure]
        return [f"re-ingesting the input files failed: {'; '.join(failures)[:500]}"]
    return []


def _reader(
    project: ProjectConfig, notice: Callable[[str], None] | None
) -> Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]:
    """Opens the project's warehouse read-only (its snapshot while a run writes); the
    line saying a snapshot is read goes to ``notice`` (else the log) once."""
    said: set[str] = set()

    def once(line: str) -> None:
        if line in said:
            return
        said.add(line)
        if notice is not None:
            notice(line)
        else:
            logger.warning("%s", line)

    return lambda: open_warehouse(project.warehouse, read_only=True, notice=once)


def reproduce_run(
    project: ProjectConfig,
    reference: str,
    *,
    keep_folder: Path | None = None,
    from_files: bool = False,
    notice: Callable[[str], None] | None = None,
) -> ReproduceOutcome:
    """Re-run the scoring and clustering of ledger run ``reference`` and compare.

    Args:
        project: The project whose warehouse holds the ledger.
        reference: Run id, unique prefix, or ``#<seq>``.
        keep_folder: Where to leave the scratch warehouse (default: a temporary
            folder, removed afterwards).
        from_files: Re-ingest the run's input files even when the warehouse still
            holds the records the run scored (checks standardisation too).
        notice: Where the line saying that a run is writing and the published
            snapshot is read goes (said once); the log when None.

    Raises:
        linkage.ledger.LedgerError: No such run.
    """
    folder = keep_folder or Path(tempfile.mkdtemp(prefix="meld-reproduce-"))
    folder.mkdir(parents=True, exist_ok=True)
    warehouse = _reader(project, notice)
    try:
        with warehouse() as source:
            row = find_run(source, reference)
            entry = row.entry
            if row.status != "succeeded" or not entry.get("partition_sha256"):
                return ReproduceOutcome(
                    run_id=row.run_id,
                    problems=[f"run {row.run_id} {row.status}: it produced no customers"],
                )
            if not from_files and current_records_match(source, entry):
                with duckdb.connect(str(folder / SCRATCH_WAREHOUSE)) as scratch:
                    copy_table(source, scratch, CUSTOMER_RECORDS)
                    return rescore_and_cluster(
                        scratch, source=source, entry=entry, inputs="warehouse"
                    )
        problems = _ingest(entry, folder)
        if problems:
            return ReproduceOutcome(run_id=row.run_id, inputs="source files", problems=problems)
        with warehouse() as source, duckdb.connect(str(folder / SCRATCH_WAREHOUSE)) as scratch:
            return rescore_and_cluster(scratch, source=source, entry=entry, inputs="source files")
    finally:
        if keep_folder is None:
            shutil.rmtree(folder, ignore_errors=True)
