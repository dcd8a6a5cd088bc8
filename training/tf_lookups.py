"""Term-frequency lookups that travel with the model without the values in clear.

The pyfunc model scores pairs with the term frequencies of training time (how common a
first name, last name, city or postcode was), so its scores equal the pipeline's. A
lookup lists values with their frequency; shipped into MLflow as it is, it would put
names and postcodes there. So MLflow gets a copy in which each value is replaced by its
SHA-256 (:func:`value_hash`), and the model hashes the values it scores to find their
frequency.

A hash hides a value from a reader of the store, not from someone who guesses it: hashing
a candidate name tells whether it was frequent at training time. The lookups keep only
values shared by several records (``training.train.MIN_SHIPPED_COUNT``).

Examples:
    ```py
    shipped = hashed_lookup_copy(Path("tf/first_name.parquet"), "first_name",
                                 Path("tf/hashed/first_name.parquet"))
    frequencies = read_hashed_lookup(shipped, "first_name")
    tf_values(frequencies, ["anna", "bo"])  # [0.012, None]
    ```
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "HASHED_VALUE_COLUMN",
    "hashed_lookup_copy",
    "read_hashed_lookup",
    "tf_values",
    "value_hash",
]

HASHED_VALUE_COLUMN = "value_sha256"
"""The column of a hashed lookup that replaces the column of values."""

_PREFIX = b"meld-tf:"


def value_hash(value: object) -> str | None:
    """SHA-256 (hex) of a value as the records hold it as text; None for a missing one.

    Examples:
        >>> value_hash("anna") == value_hash("anna") != value_hash("Anna")
        True
        >>> value_hash(None) is None
        True
    """
    if value is None or value != value:  # None or NaN
        return None
    return hashlib.sha256(_PREFIX + str(value).encode("utf-8")).hexdigest()


def hashed_lookup_copy(path: Path, column: str, out_path: Path) -> Path:
    """Write a copy of the lookup ``path`` (``<column>``, ``tf_<column>``) with the values
    replaced by their hashes (``value_sha256``, ``tf_<column>``)."""
    table = pq.read_table(path, columns=[column, f"tf_{column}"])
    hashes = [value_hash(v) for v in table.column(column).to_pylist()]
    hashed = pa.table(
        {
            HASHED_VALUE_COLUMN: pa.array(hashes, type=pa.string()),
            f"tf_{column}": table.column(f"tf_{column}"),
        }
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(hashed, out_path)
    return out_path


def read_hashed_lookup(path: Path, column: str) -> dict[str, float] | None:
    """Hash -> frequency from a hashed lookup; None when the lookup holds values in clear
    (a model logged before lookups were hashed)."""
    schema = pq.read_schema(path)
    if HASHED_VALUE_COLUMN not in schema.names:
        return None
    table = pq.read_table(path, columns=[HASHED_VALUE_COLUMN, f"tf_{column}"])
    return dict(
        zip(
            table.column(HASHED_VALUE_COLUMN).to_pylist(),
            table.column(f"tf_{column}").to_pylist(),
            strict=True,
        )
    )


def tf_values(frequencies: Mapping[str, float], values: Iterable[object]) -> list[float | None]:
    """Each value's frequency from a hashed lookup; None (no adjustment) when not in it.

    Examples:
        >>> tf_values({value_hash("anna"): 0.25}, ["anna", "bo", None])
        [0.25, None, None]
    """
    out: list[float | None] = []
    for value in values:
        digest = value_hash(value)
        out.append(None if digest is None else frequencies.get(digest))
    return out
