"""Blocking analysis asset: what the prediction rules cost before anything is scored.

``blocking_analysis`` counts the record pairs each prediction blocking rule generates
(alone, added to the rules before it, and in total), lists each rule's largest blocks
with their keys hashed and masked, and, when the config names a truth file or clerical
labels, the share of true pairs (same entity, or labelled a match) the rules can reach.
Its blocking check ``blocking_analysis_within_comparison_limit`` fails (ERROR) when one
rule alone or all together exceed ``model.max_comparisons``, and then stops every asset
downstream of ``blocking_analysis`` in the run before scoring runs out of memory.

The asset loads the truth file (``ground_truth``) and the clerical labels
(``clerical_labels``) itself, as ``linkage_evaluation`` does, rather than depending on
another asset for them: the analysis then runs right after ingestion, before a model
exists, and reloading the same files gives the same tables.
"""

import dagster as dg
from dagster import AssetExecutionContext

from assets.failures import failure_at
from assets.linkage import LINKAGE_GROUP
from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.charts import markdown_image
from linkage.config import ProjectConfig
from linkage.model.blocking_analysis import (
    BlockingAnalysis,
    analysed_rule_comparisons,
    cumulative_comparisons_png,
)
from linkage.model.comparison_limit import LIMIT_CONFIG_KEY, over_limit
from linkage.tables import BLOCKING_ANALYSIS, CUSTOMER_RECORDS, LINKAGE_MODEL
from training.steps.blocking import analyse_project_blocking

LIMIT_CHECK = f"{BLOCKING_ANALYSIS}_within_comparison_limit"


def build_blocking_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``blocking_analysis`` over ``customer_records`` with the project's prediction rules."""

    @dg.asset(
        group_name=LINKAGE_GROUP, kinds={"splink", "duckdb"}, deps=[CUSTOMER_RECORDS, LINKAGE_MODEL]
    )
    def blocking_analysis(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Record pairs each prediction blocking rule generates (alone, added to earlier
        rules, cumulative) against model.max_comparisons, each rule's largest blocks (keys
        hashed and masked, in blocking_largest_blocks) and, with a truth file or clerical
        labels, the share of true pairs the rules reach: an upper bound on the recall of
        scored pairs. With model.blocking: auto the rules are those the trained model
        chose; blocking_rule_candidates lists every candidate with its estimated reach
        (and measured reach, with truth or labels) and why it was or was not chosen."""
        with warehouse.connect() as con, failure_at(project.config_path):
            analysis = analyse_project_blocking(con, project)
            metadata = table_metadata(con, BLOCKING_ANALYSIS)
        message = analysis.limit_message()
        if message:
            context.log.warning(message)
        return dg.MaterializeResult(metadata={**metadata, **_analysis_metadata(analysis)})

    return [blocking_analysis]


def _analysis_metadata(analysis: BlockingAnalysis) -> dict:
    rule_schema = dg.TableSchema(
        columns=[
            dg.TableColumn("rule_number", "int"),
            dg.TableColumn("blocking_rule", "string"),
            dg.TableColumn("comparisons_alone", "int"),
            dg.TableColumn("marginal_comparisons", "int"),
            dg.TableColumn("cumulative_comparisons", "int"),
            dg.TableColumn("true_pair_recall_cumulative", "float"),
        ]
    )
    rule_records = [
        dg.TableRecord(
            {
                "rule_number": r.rule_number,
                "blocking_rule": r.rule,
                "comparisons_alone": r.comparisons_alone,
                "marginal_comparisons": r.marginal_comparisons,
                "cumulative_comparisons": r.cumulative_comparisons,
                "true_pair_recall_cumulative": (
                    round(r.true_pairs_cumulative / analysis.true_pairs, 4)
                    if analysis.true_pairs and r.true_pairs_cumulative is not None
                    else None
                ),
            }
        )
        for r in analysis.rules
    ]
    block_schema = dg.TableSchema(
        columns=[
            dg.TableColumn("blocking_rule", "string"),
            dg.TableColumn("block_rank", "int"),
            dg.TableColumn("key_masked", "string"),
            dg.TableColumn("key_hash", "string"),
            dg.TableColumn("block_records", "int"),
            dg.TableColumn("block_comparisons", "int"),
        ]
    )
    largest = sorted(analysis.largest_blocks, key=lambda b: -b.comparisons)[:10]
    block_records = [
        dg.TableRecord(
            {
                "blocking_rule": b.rule,
                "block_rank": b.rank,
                "key_masked": b.key_masked,
                "key_hash": b.key_hash,
                "block_records": b.records,
                "block_comparisons": b.comparisons,
            }
        )
        for b in largest
    ]
    metadata: dict = {
        "rules": dg.MetadataValue.table(records=rule_records, schema=rule_schema),
        "largest_blocks": dg.MetadataValue.table(records=block_records, schema=block_schema),
        "cumulative_comparisons": dg.MetadataValue.md(
            markdown_image(cumulative_comparisons_png(analysis), "cumulative comparisons")
        ),
        "total_comparisons": float(analysis.total_comparisons),
        "max_comparisons": float(analysis.max_comparisons),
        "share_of_all_pairs": (
            analysis.total_comparisons / analysis.all_pairs if analysis.all_pairs else 0.0
        ),
        "records": analysis.records,
        "counts_are_estimates": any(r.is_estimate for r in analysis.rules),
    }
    if analysis.candidates:
        metadata["candidate_rules"] = _candidates_table(analysis.candidates)
    if analysis.true_pairs is not None:
        metadata["true_pairs"] = analysis.true_pairs
    if analysis.true_pair_recall is not None:
        metadata["true_pair_recall"] = float(analysis.true_pair_recall)
    return metadata


def _candidates_table(candidates: list[dict]) -> dg.MetadataValue:
    """Every candidate of automatic blocking: cost, estimated and measured reach, why."""
    columns = {
        "blocking_rule": "string",
        "comparisons_alone": "int",
        "estimated_reach": "float",
        "true_pair_reach": "float",
        "chosen_order": "int",
        "why": "string",
    }
    records = [
        dg.TableRecord(
            {
                name: round(row[name], 4) if isinstance(row.get(name), float) else row.get(name)
                for name in columns
            }
        )
        for row in candidates
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()])
    return dg.MetadataValue.table(records=records, schema=schema)


def build_blocking_checks(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    """``blocking_analysis_within_comparison_limit``: ERROR and blocking."""
    max_comparisons = project.model.max_comparisons

    @dg.asset_check(
        asset=BLOCKING_ANALYSIS,
        name=LIMIT_CHECK,
        blocking=True,
        description=(
            f"The prediction blocking rules generate at most {LIMIT_CONFIG_KEY} = "
            f"{max_comparisons:,.0f} record comparisons, alone and together; more stops "
            "every asset downstream of blocking_analysis in the run."
        ),
    )
    def blocking_analysis_within_comparison_limit(
        warehouse: WarehouseResource,
    ) -> dg.AssetCheckResult:
        with warehouse.connect() as con, failure_at():
            counts = analysed_rule_comparisons(con)
        description = over_limit(CUSTOMER_RECORDS, counts, max_comparisons)
        total = counts[-1].cumulative if counts else 0
        worst = max(counts, key=lambda row: row.marginal) if counts else None
        return dg.AssetCheckResult(
            passed=description is None,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "total_comparisons": float(total),
                "max_comparisons": float(max_comparisons),
                "rule_adding_most": worst.rule if worst else "",
                "rule_adding_most_comparisons": float(worst.marginal if worst else 0),
            },
        )

    return [blocking_analysis_within_comparison_limit]
