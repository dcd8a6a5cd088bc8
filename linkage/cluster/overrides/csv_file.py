"""The steward decisions file: read, validate and append to the history.

A CSV (``overrides.path`` in the project config, or any file type Meld reads) with the
columns :data:`CSV_COLUMNS` (``record_a, record_b, decision, steward, reason,
decided_at``). Every row must be a valid decision: nothing is loaded from a file with a
bad row. Loading the same file again, or under another name, adds nothing (see
:mod:`linkage.cluster.overrides.decisions`).

Examples:
    ```py
    load = load_overrides_csv(con, Path("config/overrides.csv"))
    load.added, load.already_recorded
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.cluster.overrides.decisions import (
    Decision,
    OverrideError,
    append_decisions,
    make_decision,
)
from linkage.ingest.readers.delivery import SourceError
from linkage.ingest.readers.files import SUPPORTED_SUFFIXES, read_file
from linkage.tables import STEWARD_OVERRIDES

logger = logging.getLogger(__name__)

CSV_COLUMNS: tuple[str, ...] = (
    "record_a",
    "record_b",
    "decision",
    "steward",
    "reason",
    "decided_at",
)
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class CsvLoad:
    """What loading a CSV of decisions did.

    Attributes:
        path: The file.
        rows: Decisions read.
        added: Decisions new to ``steward_overrides``.
    """

    path: Path
    rows: int
    added: int

    @property
    def already_recorded(self) -> int:
        """Decisions that were in the history already."""
        return self.rows - self.added


def _csv_delimiter(path: Path) -> str | None:
    """The delimiter that splits the header into the expected columns, if one does."""
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    for delimiter in (",", ";", "\t", "|"):
        if set(CSV_COLUMNS) <= {name.strip() for name in header.split(delimiter)}:
            return delimiter
    return None


def read_overrides_csv(path: Path) -> list[tuple[int, Decision]]:
    """Read and validate a file of decisions (CSV, or any file type Meld reads).

    Columns: :data:`CSV_COLUMNS` (others are ignored). Every row must be a valid
    decision: nothing is read from a file with a bad row.

    Returns:
        ``(line, decision)`` for each row, in file order (the row number for files
        without lines, such as Parquet).

    Raises:
        OverrideError: The file is missing, lacks a column, or has bad rows; the message
            names the file, and the line and column of each bad row (up to 20).
    """
    if not path.is_file():
        raise OverrideError(f"steward overrides file '{path}': not found")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise OverrideError(
            f"steward overrides file '{path}': unsupported file type '{path.suffix}'; "
            f"expected one of {list(SUPPORTED_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        return []
    delimiter = _csv_delimiter(path) if path.suffix.lower() != ".parquet" else None
    try:
        delivery = read_file(path, source_system=STEWARD_OVERRIDES, delimiter=delimiter)
    except SourceError as exc:
        raise OverrideError(f"steward overrides file '{path}': {exc}") from exc
    columns = {name.strip(): name for name in delivery.table.column_names}
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        # Counted, not listed: without its header row, line 1 is a decision.
        hint = "" if set(CSV_COLUMNS) & set(columns) else " (is the header row missing?)"
        raise OverrideError(
            f"steward overrides file '{path}', line 1: missing column(s) {missing}; "
            f"expected {list(CSV_COLUMNS)}, found {len(columns)} column(s){hint}"
        )
    values = {c: delivery.table.column(columns[c]).to_pylist() for c in CSV_COLUMNS}
    decisions: list[tuple[int, Decision]] = []
    errors: list[str] = []
    for i in range(delivery.table.num_rows):
        line = delivery.lines[i]
        where = f"line {line}" if line is not None else f"row {delivery.row_numbers[i]}"
        if delivery.problems[i] is not None:
            column = (
                f", column '{delivery.problem_fields[i]}'" if delivery.problem_fields[i] else ""
            )
            errors.append(f"{where}{column}: {delivery.problems[i]}: {delivery.problem_details[i]}")
            continue
        try:
            decision = make_decision(
                values["decision"][i] or "",
                values["record_a"][i],
                values["record_b"][i],
                steward=values["steward"][i],
                reason=values["reason"][i],
                decided_at=values["decided_at"][i] or "",
            )
        except OverrideError as exc:
            detail = str(exc).removeprefix(f"{exc.column}: ")
            errors.append(f"{where}, column '{exc.column}': {detail}")
            continue
        decisions.append((line or delivery.row_numbers[i], decision))
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        raise OverrideError(
            f"steward overrides file '{path}': {len(errors)} bad row(s), nothing loaded:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return decisions


def load_overrides_csv(con: duckdb.DuckDBPyConnection, path: Path) -> CsvLoad:
    """Append a file's decisions to ``steward_overrides``; the same rows add nothing.

    Args:
        con: Warehouse connection.
        path: The file (see :func:`read_overrides_csv`).

    Returns:
        Rows read and decisions added.

    Raises:
        OverrideError: The file is missing or malformed (nothing is loaded).

    Examples:
        ```py
        load = load_overrides_csv(con, project.resolve(project.overrides.path))
        load.added, load.already_recorded
        ```
    """
    decisions = [d for _, d in read_overrides_csv(path)]
    added = append_decisions(con, decisions, f"csv:{path.name}")
    load = CsvLoad(path=path, rows=len(decisions), added=len(added))
    logger.info("steward overrides file %s: %d decisions, %d new", path, load.rows, load.added)
    return load
