"""File writers of the demo sources: CSV, JSON lines and Parquet, byte for byte stable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["WRITERS", "write_csv", "write_jsonl", "write_parquet"]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """UTF-8 CSV with a header and ``\\n`` line ends, no index."""
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per row, non-ASCII characters written as they are."""
    keys = list(frame.columns)
    # One encoder for all rows: json.dumps(..., ensure_ascii=False) builds one per call.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in frame.itertuples(index=False, name=None):
            handle.write(encode(dict(zip(keys, row, strict=True))))
            handle.write("\n")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with every column as strings, zstd-compressed."""
    table = pa.table(
        {column: pa.array(frame[column].tolist(), type=pa.string()) for column in frame.columns}
    )
    pq.write_table(table, path, compression="zstd")


WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    ".csv": write_csv,
    ".jsonl": write_jsonl,
    ".parquet": write_parquet,
}
"""The writer for each file suffix."""
