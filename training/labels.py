"""Clerical labels: record pairs a steward judged, in Splink's pairwise label format.

A labels file (CSV or Parquet) has ``unique_id_l``, ``unique_id_r`` and
``clerical_match_score`` (0 to 1; at or above the configured threshold is a match),
and optionally the columns naming each record's source (Splink's ``source_dataset_l``
and ``source_dataset_r``). Its ids are mapped to Meld's ``unique_id``
(``<source_system>:<source_record_id>``) by the first rule that applies:

1. Source columns configured: each row's source column names the source (it must be
   one of the project's sources) and the id is that source's record id.
2. Every id is already a Meld ``unique_id``: kept as is. This is what Splink's labelling
   tool writes for the pairs :func:`write_labelling_tool` puts in front of stewards.
3. The project has exactly one source: every id is a record id of that source.

Otherwise, or when an id names no record the sources delivered (``customer_records`` or
``quarantined_records``), loading fails with a message listing a few of the ids.

The labels land in ``clerical_labels`` (one row per pair, ``unique_id_l`` <
``unique_id_r``, repeated pairs averaged) and the view ``clerical_label_matches`` (the
matching pairs, as Splink's ``estimate_m_from_pairwise_labels`` expects: it treats every
row as a match).

The model's links are judged against the labels in :mod:`training.label_evaluation`;
:mod:`training.labelling_tool` puts uncertain pairs in front of stewards to label.

Examples:
    ```py
    summary = load_labels(con, path=Path("labels.csv"), sources=["fake_1000"])
    summary.pairs, summary.matches, summary.id_mapping
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from linkage.errors import MeldError, safe_error_text
from linkage.tables import (
    CLERICAL_LABEL_MATCHES,
    CLERICAL_LABELS,
    CUSTOMER_RECORDS,
    QUARANTINED_RECORDS,
)
from linkage.warehouse import table_exists

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("unique_id_l", "unique_id_r", "clerical_match_score")
EXAMPLES_IN_ERRORS = 5
"""How many offending rows an error message lists."""

_FRAME = "__meld_labels_frame"


class LabelsError(MeldError, ValueError):
    """The labels file cannot be used; the message names the file, rows and ids."""


@dataclass(frozen=True)
class LabelsSummary:
    """What :func:`load_labels` loaded.

    Attributes:
        rows: Data rows in the file.
        pairs: Distinct labelled pairs kept in ``clerical_labels``.
        matches: Of which a match (mean score at or above the threshold).
        repeated_rows: Rows that labelled a pair already labelled (scores averaged).
        self_pairs: Rows pairing a record with itself (dropped).
        id_mapping: The rule that mapped ids: ``source_columns``, ``unique_id`` or
            ``single_source``.
    """

    rows: int
    pairs: int
    matches: int
    repeated_rows: int
    self_pairs: int
    id_mapping: str


def _read_labels_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise LabelsError(f"labels file '{path}': not found (config key labels.path)")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype("string").fillna("")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LabelsError(
            f"labels file '{path}': not a readable CSV: {safe_error_text(exc)}"
        ) from exc


def _rows_text(frame: pd.DataFrame, mask: pd.Series, columns: Sequence[str]) -> str:
    """A few offending rows as 'row N: col 'value', ...' (N counts data rows from 1)."""
    shown = frame[mask].head(EXAMPLES_IN_ERRORS)
    parts = [
        f"row {index + 1}: " + ", ".join(f"{c} '{row[c]}'" for c in columns)
        for index, row in shown.iterrows()
    ]
    more = int(mask.sum()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _known_ids_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Every record the sources delivered: the clustered-to-be and the quarantined."""
    sql = f"SELECT unique_id FROM {CUSTOMER_RECORDS}"
    if table_exists(con, QUARANTINED_RECORDS):
        sql += (
            " UNION ALL SELECT source_system || ':' || source_record_id "
            f"FROM {QUARANTINED_RECORDS} WHERE source_record_id IS NOT NULL"
        )
    return sql


def _unknown_ids(
    con: duckdb.DuckDBPyConnection, ids_l: pd.Series, ids_r: pd.Series
) -> list[tuple[str, int]]:
    """Ids that name no delivered record, each with the first data row (from 1) it is on."""
    frame = pd.DataFrame(
        {
            "row": list(range(1, len(ids_l) + 1)) * 2,
            "id": [*ids_l.astype(str), *ids_r.astype(str)],
        }
    )
    con.register(_FRAME, frame)
    try:
        rows = con.execute(
            f"WITH known AS ({_known_ids_sql(con)}) SELECT f.id, min(f.row) AS first_row "
            f"FROM {_FRAME} AS f WHERE NOT EXISTS (SELECT 1 FROM known AS k "
            "WHERE k.unique_id = f.id) GROUP BY f.id ORDER BY first_row, f.id"
        ).fetchall()
    finally:
        con.unregister(_FRAME)
    return [(str(row[0]), int(row[1])) for row in rows]


def _map_ids(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    path: Path,
    sources: Sequence[str],
    source_dataset_l: str | None,
    source_dataset_r: str | None,
) -> tuple[pd.Series, pd.Series, str]:
    """Map the file's ids to unique ids; see the module docstring for the rules."""
    ids_l, ids_r = frame["unique_id_l"].str.strip(), frame["unique_id_r"].str.strip()
    if source_dataset_l or source_dataset_r:
        if not (source_dataset_l and source_dataset_r):
            raise LabelsError(
                f"labels file '{path}': give both labels.source_dataset_l and "
                "labels.source_dataset_r, or neither"
            )
        source_l = frame[source_dataset_l].str.strip()
        source_r = frame[source_dataset_r].str.strip()
        unknown = ~source_l.isin(sources) | ~source_r.isin(sources)
        if unknown.any():
            raise LabelsError(
                f"labels file '{path}': {int(unknown.sum())} row(s) name a source that is "
                f"not in the project ({sorted(sources)}): "
                + _rows_text(frame, unknown, [source_dataset_l, source_dataset_r])
            )
        return source_l + ":" + ids_l, source_r + ":" + ids_r, "source_columns"
    if not _unknown_ids(con, ids_l, ids_r):
        return ids_l, ids_r, "unique_id"
    if len(sources) == 1:
        prefix = f"{sources[0]}:"
        return prefix + ids_l, prefix + ids_r, "single_source"
    raise LabelsError(
        f"labels file '{path}': its ids are not Meld unique ids ('<source>:<record id>') and "
        f"the project has {len(sources)} sources ({sorted(sources)}), so an id alone does not "
        "say which record it is; set labels.source_dataset_l and labels.source_dataset_r to "
        "the columns that name each record's source"
    )


def load_labels(
    con: duckdb.DuckDBPyConnection,
    *,
    path: Path,
    sources: Sequence[str],
    source_dataset_l: str | None = None,
    source_dataset_r: str | None = None,
    match_score_threshold: float = 0.5,
) -> LabelsSummary:
    """Load a labels file into ``clerical_labels`` and ``clerical_label_matches``.

    Needs ``customer_records`` (and ``quarantined_records`` when there is one) to know
    which ids exist.

    Args:
        con: Warehouse connection.
        path: CSV or Parquet in Splink's pairwise label format.
        sources: The project's source names.
        source_dataset_l: Column naming the left record's source, if the file has one.
        source_dataset_r: Column naming the right record's source.
        match_score_threshold: ``clerical_match_score`` at or above which a pair matches.

    Returns:
        Counts of rows, pairs and matches, and which id mapping rule applied.

    Raises:
        LabelsError: The file is missing or unreadable, lacks a column, has a score that
            is not a number from 0 to 1, names an unknown source, or an id that is no
            delivered record; the message names the file and lists a few rows.
        LookupError: ``customer_records`` does not exist yet.
    """
    if not table_exists(con, CUSTOMER_RECORDS):
        raise LookupError("no customer_records in the warehouse: materialize it first")
    frame, scores = _validated_frame(
        path, source_dataset_l=source_dataset_l, source_dataset_r=source_dataset_r
    )
    ids_l, ids_r, mapping = _map_ids(
        con,
        frame,
        path=path,
        sources=sources,
        source_dataset_l=source_dataset_l,
        source_dataset_r=source_dataset_r,
    )
    _check_known_ids(con, ids_l, ids_r, path=path, mapping=mapping)
    self_pair = ids_l == ids_r
    if self_pair.any():
        logger.warning("labels: dropped %d row(s) pairing a record with itself", self_pair.sum())
    pairs = pd.DataFrame(
        {
            "unique_id_l": ids_l.where(ids_l < ids_r, ids_r),
            "unique_id_r": ids_r.where(ids_l < ids_r, ids_l),
            "clerical_match_score": scores.astype(float),
        }
    )[~self_pair]
    kept, matches = _store_labels(con, pairs, match_score_threshold)
    summary = LabelsSummary(
        rows=len(frame),
        pairs=int(kept),
        matches=int(matches),
        repeated_rows=len(pairs) - int(kept),
        self_pairs=int(self_pair.sum()),
        id_mapping=mapping,
    )
    logger.info(
        "loaded %d labelled pairs (%d matches) from %d rows; ids mapped by rule '%s'",
        summary.pairs,
        summary.matches,
        summary.rows,
        mapping,
    )
    return summary


def _validated_frame(
    path: Path, *, source_dataset_l: str | None, source_dataset_r: str | None
) -> tuple[pd.DataFrame, pd.Series]:
    """The labels file with its columns, ids and scores checked, and the scores as numbers."""
    frame = _read_labels_file(path)
    required = [*REQUIRED_COLUMNS, *(c for c in (source_dataset_l, source_dataset_r) if c)]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        # Counted, not listed: without its header row, the file has a record there.
        hint = "" if set(required) & set(frame.columns) else " (is the header row missing?)"
        raise LabelsError(
            f"labels file '{path}': missing column(s) {missing}; the file has "
            f"{len(frame.columns)} column(s){hint}"
        )
    empty = (frame["unique_id_l"].str.strip() == "") | (frame["unique_id_r"].str.strip() == "")
    if empty.any():
        raise LabelsError(
            f"labels file '{path}': {int(empty.sum())} row(s) without an id: "
            + _rows_text(frame, empty, ["unique_id_l", "unique_id_r"])
        )
    scores = pd.to_numeric(frame["clerical_match_score"].str.strip(), errors="coerce")
    bad_score = scores.isna() | (scores < 0) | (scores > 1)
    if bad_score.any():
        raise LabelsError(
            f"labels file '{path}': clerical_match_score must be a number from 0 to 1; "
            + _rows_text(frame, bad_score, ["clerical_match_score"])
        )
    return frame, scores


def _check_known_ids(
    con: duckdb.DuckDBPyConnection,
    ids_l: pd.Series,
    ids_r: pd.Series,
    *,
    path: Path,
    mapping: str,
) -> None:
    """Raise :class:`LabelsError` listing mapped ids that name no delivered record."""
    unknown = _unknown_ids(con, ids_l, ids_r)
    if unknown:
        shown = ", ".join(f"'{uid}' (row {row})" for uid, row in unknown[:EXAMPLES_IN_ERRORS])
        more = len(unknown) - EXAMPLES_IN_ERRORS
        raise LabelsError(
            f"labels file '{path}': {len(unknown)} id(s) name no record the sources delivered "
            f"(ids mapped to '<source>:<record id>' by rule '{mapping}'; known records are in "
            f"customer_records and quarantined_records): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )


def _store_labels(
    con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame, match_score_threshold: float
) -> tuple[int, int]:
    """Replace ``clerical_labels`` (pairs averaged) and ``clerical_label_matches``;
    return how many pairs were kept and how many of them match."""
    con.register(_FRAME, pairs)
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {CLERICAL_LABELS} AS SELECT unique_id_l, unique_id_r, "
            "avg(clerical_match_score) AS clerical_match_score, "
            "avg(clerical_match_score) >= ? AS is_match, count(*) AS label_rows "
            f"FROM {_FRAME} GROUP BY unique_id_l, unique_id_r ORDER BY unique_id_l, unique_id_r",
            [match_score_threshold],
        )
    finally:
        con.unregister(_FRAME)
    con.execute(
        f"CREATE OR REPLACE VIEW {CLERICAL_LABEL_MATCHES} AS SELECT unique_id_l, unique_id_r, "
        f"clerical_match_score FROM {CLERICAL_LABELS} WHERE is_match"
    )
    kept, matches = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE is_match) FROM {CLERICAL_LABELS}"
    ).fetchall()[0]
    return kept, matches
