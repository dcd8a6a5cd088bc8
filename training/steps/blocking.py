"""The blocking-analysis step of a run: what the prediction rules cost, and what they
reach, before anything is scored (``blocking_analysis``).

With automatic blocking the rules are those training chose (``blocking_rule_candidates``),
and with a truth file or labels each candidate's measured reach is added beside its
estimate. It loads the truth file and the clerical labels itself, as the evaluation does.
"""

from __future__ import annotations

from dataclasses import replace

import duckdb

from linkage.config import ProjectConfig
from linkage.model.blocking import usable_rules
from linkage.model.blocking_analysis import (
    BlockingAnalysis,
    analyse_blocking,
    measure_candidate_reach,
)
from linkage.model.rule_selection import candidate_rule_keys, chosen_rules, read_candidates
from linkage.tables import CLERICAL_LABELS, CUSTOMER_RECORDS, GROUND_TRUTH
from training.project_inputs import load_project_labels, load_project_truth
from training.train import columns_with_data

LARGEST_BLOCKS = 5


def analyse_project_blocking(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig
) -> BlockingAnalysis:
    """Count each prediction rule's pairs against ``model.max_comparisons``, list its
    largest blocks and, with truth or labels, the share of true pairs the rules reach.

    Raises:
        SourceError: The truth file cannot be read ("truth: ...").
        LabelsError: The labels file cannot be used ("labels: ...").
    """
    truth_table = GROUND_TRUTH if load_project_truth(con, project) else None
    labels = project.labels
    labels_table = CLERICAL_LABELS if load_project_labels(con, project) is not None else None
    spec = project.model_spec()
    chosen = chosen_rules(con) if spec.blocking == "auto" and not spec.rules_pinned else None
    rules = chosen or usable_rules(
        spec.prediction_rules, columns_with_data(con, CUSTOMER_RECORDS, spec.candidate_columns)
    )
    if chosen:
        measure_candidate_reach(
            con,
            CUSTOMER_RECORDS,
            candidate_rule_keys(con),
            truth_table=truth_table,
            labels_table=labels_table,
            label_threshold=labels.match_score_threshold if labels else 0.5,
        )
    analysis = analyse_blocking(
        con,
        CUSTOMER_RECORDS,
        rules,
        max_comparisons=project.model.max_comparisons,
        truth_table=truth_table,
        labels_table=labels_table,
        label_threshold=labels.match_score_threshold if labels else 0.5,
        largest_blocks=LARGEST_BLOCKS,
    )
    return replace(analysis, candidates=read_candidates(con)) if chosen else analysis
