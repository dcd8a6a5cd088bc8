"""The catalogue of warehouse tables and artifact files: every module names them from here.

Tables are listed in the order the data flows: per-source ingestion tables, the union of
all sources, the model, the customers, mastering and relationships, evaluation, audit.
A table published by an asset has the asset's name. Artifact paths are relative to the
project's ``artifacts`` folder.

Examples:
    >>> staged_table("crm_contacts")
    'staged_crm_contacts'
    >>> CUSTOMER_CLUSTERS
    'customer_clusters'
"""

from __future__ import annotations

# Ingestion: one table of each kind per source system.
RAW_PREFIX = "raw_"
RAW_HISTORY_PREFIX = "raw_history_"
STAGED_PREFIX = "staged_"
QUARANTINE_PREFIX = "quarantine_"
QUALITY_ISSUES_PREFIX = "quality_issues_"


def raw_table(source: str) -> str:
    """The current records of a source, every column as text."""
    return RAW_PREFIX + source


def raw_history_table(source: str) -> str:
    """Every version of every record a source ever delivered."""
    return RAW_HISTORY_PREFIX + source


def staged_table(source: str) -> str:
    """A source's records in the canonical schema, standardised."""
    return STAGED_PREFIX + source


def quarantine_table(source: str) -> str:
    """A source's rows that could not be used, with the reason."""
    return QUARANTINE_PREFIX + source


def quality_issues_table(source: str) -> str:
    """A source's field values that failed validation."""
    return QUALITY_ISSUES_PREFIX + source


SOURCE_DELIVERIES = "source_deliveries"
STAGING_RUNS = "staging_runs"
QUARANTINED_RECORDS = "quarantined_records"
DATA_QUALITY_ISSUES = "data_quality_issues"
DATA_QUALITY_PROFILE = "data_quality_profile"
CUSTOMER_RECORDS = "customer_records"

# The model.
BLOCKING_ANALYSIS = "blocking_analysis"
BLOCKING_LARGEST_BLOCKS = "blocking_largest_blocks"
BLOCKING_RULE_CANDIDATES = "blocking_rule_candidates"
LINK_VETOES_IN_FORCE = "link_vetoes_in_force"
LINKAGE_MODEL = "linkage_model"
SCORING_MODEL = "scoring_model"
PAIRWISE_MATCHES = "pairwise_matches"

# Customers: clusters, stable ids, steward decisions.
CUSTOMER_CLUSTERS = "customer_clusters"
REFUSED_LINKS = "refused_links"
CUSTOMER_GRAPH_METRICS = "customer_graph_metrics"
CUSTOMER_IDS = "customer_ids"
CUSTOMER_MEMBERSHIP = "customer_membership"
CUSTOMER_ID_HISTORY = "customer_id_history"
CUSTOMER_RECORD_MOVES = "customer_record_moves"
MERGE_EVIDENCE = "merge_evidence"
STEWARD_OVERRIDES = "steward_overrides"
STEWARD_UNMERGE_RESOLUTIONS = "steward_unmerge_resolutions"

# Mastering and relationships.
GOLDEN_CUSTOMERS = "golden_customers"
CUSTOMER_HOUSEHOLDS = "customer_households"
HOUSEHOLDS = "households"
OVERSIZED_HOUSEHOLDS = "oversized_households"
HOUSEHOLD_IDS = "household_ids"
HOUSEHOLD_MEMBERSHIP = "household_membership"
HOUSEHOLD_ID_HISTORY = "household_id_history"
HOUSEHOLD_MOVES = "household_moves"
CUSTOMER_360 = "customer_360"
ORDERS = "orders"
PRODUCTS = "products"
CUSTOMER_ORDERS = "customer_orders"
CUSTOMER_PRODUCTS = "customer_products"
CUSTOMER_GRAPH = "customer_graph"
ROLE_VIEWS = "role_views"  # the asset; its views live in one schema per role
ROLE_SCHEMA_PREFIX = "role_"


def role_schema(role: str) -> str:
    """The schema holding a role's views of the customer tables (``role_analyst``)."""
    return ROLE_SCHEMA_PREFIX + role


# Evaluation and promotion.
GROUND_TRUTH = "ground_truth"
CLERICAL_LABELS = "clerical_labels"
CLERICAL_LABEL_MATCHES = "clerical_label_matches"
LINKAGE_EVALUATION = "linkage_evaluation"
EVALUATION_WORST_PAIRS = "evaluation_worst_pairs"
MODEL_PROMOTIONS = "model_promotions"
LABELLING_TOOL = "labelling_tool"

# Audit.
LINKAGE_RUNS = "linkage_runs"
PUBLISHED_SNAPSHOT = "published_snapshot"  # only in the published copy: who published it
ERASURE_LOG = "erasure_log"  # meld erase: what was erased, keyed hashes only
ERASURE_DENY_LIST = "erasure_deny_list"  # keyed hashes refused at ingestion
ERASURE_REFUSALS = "erasure_refusals"  # rows refused per delivery

# Artifact files and folders, relative to the project's artifacts folder.
LEDGER_HEAD_FILE = "audit/ledger_head.txt"
QUALITY_REPORT_FILE = "data_quality/data_quality_report.html"
MODELS_FOLDER = "models"
SCORING_FOLDER = "scoring"
EVALUATION_FOLDER = "evaluation"
LABELLING_TOOL_FILE = "labelling/labelling_tool.html"
EXPLAIN_FOLDER = "explain"
RUNS_FOLDER = "runs"
RUN_REPORT_FILE = "run_report.html"
CUSTOMERS_SNAPSHOT_FILE = "customers.parquet"
