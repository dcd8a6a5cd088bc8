"""Remove an erased person's values from files: artifacts, MLflow artifacts, record files.

:func:`purge_files` searches the text of every file under the given folders for the
person's values (see :mod:`linkage.privacy.values`), after undoing HTML and JSON
escapes. A table file loses only the rows that hold a value: Parquet (customer
snapshots, term-frequency tables) and CSV are rewritten, JSON Lines loses the lines;
any other text file that holds a value (charts, dashboards, reports) is deleted, since
the next run makes it again. Binary files, model definitions and Meld's own key and
head files are left alone. Only paths are reported, never the values found.

:func:`rewrite_record_files` drops the rows naming an erased record from the CSV files a
steward keeps (the overrides file, clerical labels, the truth file), so the next run
does not bring the ids back.

Examples:
    ```py
    changes = purge_files([artifacts, mlflow_artifacts], matcher, dry_run=False)
    [(c.path, c.action) for c in changes]
    ```
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from linkage.privacy.values import ValueMatcher

logger = logging.getLogger(__name__)

DELETED, REWRITTEN = "deleted", "rewritten"
SKIPPED_SUFFIXES = frozenset(
    {".duckdb", ".wal", ".db", ".sqlite", ".pkl", ".png", ".jpg", ".jpeg", ".gif", ".whl"}
)
KEPT_FILE_NAMES = frozenset(
    {
        "MLmodel",
        "requirements.txt",
        "conda.yaml",
        "python_env.yaml",
        "ledger_head.txt",
        ".meld_erasure_key",
    }
)
"""Model definitions and Meld's own files: never deleted for a matching word."""
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class FileChange:
    """One file an erasure removed or rewrote (paths only, never values)."""

    path: Path
    action: str
    rows_removed: int = 0


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


def _atomic_write(path: Path, write) -> None:
    temporary = path.with_name(path.name + ".erasing")
    write(temporary)
    os.replace(temporary, path)


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda target: target.write_text(text, encoding="utf-8"))


def _purge_parquet(path: Path, matcher: ValueMatcher, dry_run: bool) -> FileChange | None:
    table = pq.read_table(path)
    keep = [True] * table.num_rows
    for column in table.columns:
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            continue
        for i, value in enumerate(column.to_pylist()):
            if keep[i] and value is not None and matcher.search(str(value)):
                keep[i] = False
    removed = keep.count(False)
    if not removed:
        return None
    if not dry_run:
        kept = table.filter(pa.array(keep, pa.bool_()))
        _atomic_write(path, lambda target: pq.write_table(kept, target))
    return FileChange(path, REWRITTEN, removed)


def _purge_csv(path: Path, text: str, matcher: ValueMatcher, dry_run: bool) -> FileChange | None:
    lines = text.splitlines(keepends=True)
    if not lines:
        return None
    if matcher.search(lines[0]):
        return _delete(path, dry_run)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    kept = [rows[0]] + [r for r in rows[1:] if not any(matcher.search(cell) for cell in r)]
    removed = len(rows) - len(kept)
    if not removed:
        return None
    if not dry_run:
        out = io.StringIO()
        csv.writer(out, dialect, lineterminator="\n").writerows(kept)
        _write_text(path, out.getvalue())
    return FileChange(path, REWRITTEN, removed)


def _purge_lines(path: Path, text: str, matcher: ValueMatcher, dry_run: bool) -> FileChange | None:
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not matcher.search(line)]
    removed = len(lines) - len(kept)
    if not removed:
        return None
    if not dry_run:
        _write_text(path, "".join(kept))
    return FileChange(path, REWRITTEN, removed)


def _delete(path: Path, dry_run: bool) -> FileChange:
    if not dry_run:
        path.unlink()
    return FileChange(path, DELETED)


def purge_file(path: Path, matcher: ValueMatcher, *, dry_run: bool) -> FileChange | None:
    """Remove the values from one file (see the module docstring); None when it holds
    none or is not a file Meld searches."""
    suffix = path.suffix.lower()
    if suffix in SKIPPED_SUFFIXES or path.name in KEPT_FILE_NAMES:
        return None
    if path.stat().st_size > MAX_FILE_BYTES:
        logger.warning("erasure: %s is larger than %d bytes, not searched", path, MAX_FILE_BYTES)
        return None
    if suffix == ".parquet":
        return _purge_parquet(path, matcher, dry_run)
    data = path.read_bytes()
    if _is_binary(data):
        return None
    text = data.decode("utf-8", errors="replace")
    if not matcher.search(text):
        return None
    if suffix in (".csv", ".tsv"):
        return _purge_csv(path, text, matcher, dry_run)
    if suffix in (".jsonl", ".ndjson"):
        return _purge_lines(path, text, matcher, dry_run)
    return _delete(path, dry_run)


def files_under(folders: Iterable[Path], *, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every file under ``folders`` (recursively), each once, minus ``exclude``."""
    excluded = {p.resolve() for p in exclude}
    found: dict[Path, None] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            real = path.resolve()
            if path.is_file() and not path.is_symlink() and real not in excluded:
                found.setdefault(real)
    return list(found)


def purge_files(
    paths: Sequence[Path], matcher: ValueMatcher | None, *, dry_run: bool
) -> list[FileChange]:
    """:func:`purge_file` on each path; the changes made (or, dry, that would be)."""
    if matcher is None:
        return []
    changes = [change for path in paths if (change := purge_file(path, matcher, dry_run=dry_run))]
    for change in changes:
        logger.info("erasure: %s %s", change.action, change.path)
    return changes


@dataclass(frozen=True)
class RecordFile:
    """A CSV a steward keeps whose rows name records: the columns that do.

    Attributes:
        path: The file.
        columns: ``(source column or None, id column)`` per record named in a row; with
            no source column the id is a unique id ``<source>:<record id>``.
    """

    path: Path
    columns: tuple[tuple[str | None, str], ...]


def _names_erased(row: dict[str, str], record_file: RecordFile, ids: set[str]) -> bool:
    for source_column, id_column in record_file.columns:
        record = (row.get(id_column) or "").strip()
        source = (row.get(source_column) or "").strip() if source_column else None
        if (f"{source}:{record}" if source else record) in ids:
            return True
    return False


@dataclass(frozen=True)
class StagedRewrite:
    """A record file's new text, written beside it until the erasure commits.

    Attributes:
        path: The record file.
        staged: The new version (``.<name>.erasing<suffix>``); None in a dry run.
        rows_removed: Rows that name an erased record.
    """

    path: Path
    staged: Path | None
    rows_removed: int

    @property
    def change(self) -> FileChange:
        return FileChange(self.path, REWRITTEN, self.rows_removed)


def _kept_rows(record_file: RecordFile, ids: set[str]) -> tuple[str, int] | None:
    """The file's text without the rows naming ``ids``, and how many went; None when
    none does."""
    text = record_file.path.read_text(encoding="utf-8-sig")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    rows = list(reader)
    kept = [row for row in rows if not _names_erased(row, record_file, ids)]
    if len(kept) == len(rows):
        return None
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=reader.fieldnames or [], dialect=dialect, lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(kept)
    return out.getvalue(), len(rows) - len(kept)


def stage_record_files(
    record_files: Sequence[RecordFile], unique_ids: Sequence[str], *, dry_run: bool
) -> list[StagedRewrite]:
    """Write each CSV record file without the rows naming an erased record, beside the
    original (:func:`commit_rewrites` puts them in place); a dry run writes nothing."""
    ids = set(unique_ids)
    staged = []
    for record_file in record_files:
        path = record_file.path
        if not path.is_file() or path.suffix.lower() != ".csv":
            continue
        rewritten = _kept_rows(record_file, ids)
        if rewritten is None:
            continue
        text, removed = rewritten
        temporary = None
        if not dry_run:
            temporary = path.with_name(f".{path.stem}.erasing{path.suffix}")
            temporary.write_text(text, encoding="utf-8")
        staged.append(StagedRewrite(path, temporary, removed))
    return staged


def commit_rewrites(staged: Sequence[StagedRewrite]) -> list[FileChange]:
    """Put each staged record file in place of the original."""
    for item in staged:
        if item.staged is not None:
            os.replace(item.staged, item.path)
    return [item.change for item in staged]


def discard_rewrites(staged: Sequence[StagedRewrite]) -> None:
    """Remove the staged versions (the erasure did not commit)."""
    for item in staged:
        if item.staged is not None:
            item.staged.unlink(missing_ok=True)
