"""Jobs an operator launches from the Dagster UI.

Every job writes the one warehouse, so every run carries the tag
:data:`WAREHOUSE_WRITER_TAG`: with the Dagster daemon's run queue limited to one run of
that tag (``config/dagster.yaml``), a second run waits in the queue instead of being
refused by the run lock (see docs/operations.md).
"""

from __future__ import annotations

import dagster as dg

from assets.audit import AUDIT_GROUP
from assets.evaluation import EVALUATION_GROUP
from assets.ingestion import INGESTION_GROUP
from assets.linkage import LINKAGE_GROUP, ScoringConfig
from linkage.tables import LABELLING_TOOL, LINKAGE_MODEL, PAIRWISE_MATCHES

WAREHOUSE_WRITER_TAG = {"meld/warehouse": "writer"}
"""Run tag of every Meld job; ``config/dagster.yaml`` lets one such run go at a time."""

# The labelling tool is written on demand (job label_pairs), not by every run.
_ON_DEMAND = dg.AssetSelection.from_string(f"key:{LABELLING_TOOL}")

meld_pipeline = dg.define_asset_job(
    "meld_pipeline",
    tags=WAREHOUSE_WRITER_TAG,
    selection=dg.AssetSelection.all() - _ON_DEMAND,
    description="Everything: ingest every source, train, score, cluster, master, evaluate.",
)

ingest_sources = dg.define_asset_job(
    "ingest_sources",
    tags=WAREHOUSE_WRITER_TAG,
    selection=dg.AssetSelection.groups(INGESTION_GROUP),
    description="Load and standardise every source; quarantine what cannot be used.",
)

train_model = dg.define_asset_job(
    "train_model",
    tags=WAREHOUSE_WRITER_TAG,
    # Tolerant string selection: labelling_tool exists only in some deployments.
    selection=(
        dg.AssetSelection.groups(INGESTION_GROUP, LINKAGE_GROUP, EVALUATION_GROUP, AUDIT_GROUP)
        - _ON_DEMAND
    ),
    description="Ingest, train a new model version (challenger), score, cluster, evaluate "
    "and decide whether it becomes champion, then record the run in the ledger. No "
    "mastering.",
)

score_customers = dg.define_asset_job(
    "score_customers",
    tags=WAREHOUSE_WRITER_TAG,
    selection=(
        dg.AssetSelection.all()
        - dg.AssetSelection.from_string(f"key:{LINKAGE_MODEL}")
        - dg.AssetSelection.groups(EVALUATION_GROUP)
        - _ON_DEMAND
    ),
    config=dg.RunConfig(ops={PAIRWISE_MATCHES: ScoringConfig(model="champion")}),
    description="Ingest, score with the registry's champion version (no training), cluster, "
    "master: the cheap, reproducible daily run. Evaluation and promotion belong to "
    "train_model.",
)

label_pairs = dg.define_asset_job(
    "label_pairs",
    tags=WAREHOUSE_WRITER_TAG,
    selection=_ON_DEMAND,
    description="Write Splink's labelling tool (offline HTML) for a sample of scored pairs "
    "near the match threshold, for stewards to label.",
)

JOBS = [meld_pipeline, ingest_sources, train_model, score_customers, label_pairs]
