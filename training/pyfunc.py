"""The linkage model as an MLflow pyfunc: score pairs of records.

``predict`` takes a DataFrame with one row per pair and, for every column the model
compares, a left and a right column (``first_name_l``, ``first_name_r``, ...). It
returns the pair's ``match_weight`` and ``match_probability``. Term frequencies come
from the lookup tables saved at training time, so scores equal those of the pipeline.

Examples:
    ```py
    model = mlflow.pyfunc.load_model("models:/meld-linkage@champion")
    model.predict(pd.DataFrame([{"first_name_l": "anna", "first_name_r": "ana", ...}]))
    ```
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pyarrow as pa

from training.tf_lookups import read_hashed_lookup, tf_values

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "splink_model"
TF_ARTIFACT_PREFIX = "tf_"


def model_input_columns(model: dict[str, Any]) -> list[str]:
    """Record columns the model needs, read from its comparisons' SQL."""
    from splink import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(model).get_settings("duckdb")
    id_column = settings.column_info_settings.unique_id_column_name
    names = [c.unquote().name for c in settings._columns_used_by_comparisons]
    return [name for name in names if name != id_column]


def tf_columns(model: dict[str, Any]) -> list[str]:
    """Columns with term-frequency adjustments in the model."""
    from splink import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(model).get_settings("duckdb")
    return [c.unquote().name for c in settings._term_frequency_columns]


class SplinkPairScorer(mlflow.pyfunc.PythonModel):
    """Score record pairs with a trained Splink model."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        artifacts = context.artifacts
        self._model = json.loads(Path(artifacts[MODEL_ARTIFACT]).read_text(encoding="utf-8"))
        self._tf_paths = {
            key[len(TF_ARTIFACT_PREFIX) :]: Path(path)
            for key, path in artifacts.items()
            if key.startswith(TF_ARTIFACT_PREFIX)
        }

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Match weight and probability of each left/right pair in ``model_input``."""
        return score_pairs_frame(self._model, model_input, self._tf_paths)


def _typed_table(records: pd.DataFrame) -> pa.Table:
    """Records as Arrow with explicit types, so a column holding only missing values
    still has the type the model's SQL expects (DATE, text, or a tf_ frequency)."""
    arrays = {}
    for column in records.columns:
        values = records[column].tolist()
        if column == "date_of_birth":
            parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce")
            arrays[column] = pa.array(
                [None if pd.isna(d) else d.date() for d in parsed], type=pa.date32()
            )
        elif column.startswith("tf_"):
            arrays[column] = pa.array(values, type=pa.float64())
        else:
            arrays[column] = pa.array(
                [
                    None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                    for v in values
                ],
                type=pa.string(),
            )
    return pa.table(arrays)


def score_pairs_frame(
    model: dict[str, Any], pairs: pd.DataFrame, tf_paths: dict[str, Path] | None = None
) -> pd.DataFrame:
    """Score each row of ``pairs`` (left/right columns) with a Splink model.

    A column the model compares but the input lacks (say ``loyalty_card_l`` when the
    caller has no loyalty cards) counts as missing on that side: the comparison's null
    level, which adds no evidence either way.

    Raises:
        ValueError: The input has none of the columns the model compares.
    """
    import duckdb
    from splink import DuckDBAPI, Linker

    columns = model_input_columns(model)
    present = [c for c in columns if f"{c}_l" in pairs.columns or f"{c}_r" in pairs.columns]
    if not present:
        expected = [f"{c}{side}" for c in columns for side in ("_l", "_r")]
        raise ValueError(f"model input has none of the compared columns {expected}")
    pairs = pairs.copy()
    for column in columns:
        for side in ("_l", "_r"):
            if f"{column}{side}" not in pairs.columns:
                pairs[f"{column}{side}"] = None
    left = pairs[[f"{c}_l" for c in columns]].copy()
    left.columns = columns
    right = pairs[[f"{c}_r" for c in columns]].copy()
    right.columns = columns
    left.insert(0, "unique_id", [f"l{i}" for i in range(len(pairs))])
    right.insert(0, "unique_id", [f"r{i}" for i in range(len(pairs))])
    shipped = dict(tf_paths or {})
    for column in tf_columns(model):
        hashed = read_hashed_lookup(shipped[column], column) if column in shipped else None
        if column not in shipped:
            # No lookup travels with the model for this column: neutral adjustment.
            left[f"tf_{column}"] = None
            right[f"tf_{column}"] = None
        elif hashed is not None:
            # The lookup holds hashes of the values (training.tf_lookups): look each up.
            for side in (left, right):  # object dtype: a value not in it stays None, not NaN
                side[f"tf_{column}"] = pd.Series(
                    tf_values(hashed, side[column]), index=side.index, dtype=object
                )
            del shipped[column]
    con = duckdb.connect()
    try:
        db_api = DuckDBAPI(connection=con)
        both = pd.concat([left, right], ignore_index=True)
        con.register("__meld_scored_records", _typed_table(both))
        records = db_api.register("__meld_scored_records")
        # Pairs scored here carry only compared columns: retain nothing else.
        scoring_model = {**model, "additional_columns_to_retain": []}
        linker = Linker(records, scoring_model, log_level=None)
        for column, path in shipped.items():  # lookups of values in clear
            lookup = db_api.register(pd.read_parquet(path))
            linker.table_management.register_term_frequency_lookup(lookup, column)
        rows = []
        for index in range(len(pairs)):
            sides = []
            for side in ("l", "r"):
                view = f"__meld_pair_{side}{index}"
                con.execute(
                    f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM __meld_scored_records "
                    f"WHERE unique_id = '{side}{index}'"  # an int we formatted: not user input
                )
                sides.append(db_api.register(view))
            scored = linker.inference.score_pair(*sides).as_pandas_dataframe()
            rows.append(scored[["match_weight", "match_probability"]].iloc[0])
    finally:
        con.close()
    return pd.DataFrame(rows, index=pairs.index).astype(float)
