"""Jobs an operator launches from the Dagster UI."""

from __future__ import annotations

import dagster as dg

meld_pipeline = dg.define_asset_job(
    "meld_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything: ingest every source, train, score, cluster, master, evaluate.",
)

ingest_sources = dg.define_asset_job(
    "ingest_sources",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Load and standardise every source; quarantine what cannot be used.",
)

JOBS = [meld_pipeline, ingest_sources]
