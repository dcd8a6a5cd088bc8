"""``meld explain`` and ``meld explain-customer`` over a real pipeline run.

The weights an explanation reports are checked against the scoring model itself
(``log2(m / u)`` of the level the pair reached, read from the model's JSON, and
Splink's term-frequency formula on the stored term frequencies), not against numbers
written down here.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from linkage.audit.explain.customer import explain_customer
from linkage.audit.explain.pair import chart_file_name, explain_pair
from linkage.audit.explain.pair_explanation import PairExplanation
from linkage.audit.explain.reads import ExplainError
from linkage.cluster.overrides.decisions import make_decision, record_decision
from linkage.config import ProjectConfig
from linkage.model.store import scoring_model
from orchestration.build import build_assets, build_resources
from orchestration.cli import main
from tests.projects import demo_project_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> ProjectConfig:
    """The whole pipeline materialized once for this module's tests."""
    project = demo_project_file(
        tmp_path_factory.mktemp("explain"),
        small_demo,
        mlflow_uri=mlflow_uri,
        experiment="test-explain",
    )
    result = dg.materialize(build_assets(project), resources=build_resources(project))
    assert result.success
    return project


@contextmanager
def _read(project: ProjectConfig) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _scored_rows(con: duckdb.DuckDBPyConnection, where: str, limit: int) -> list[dict[str, Any]]:
    cursor = con.execute(
        f"SELECT * FROM pairwise_matches WHERE {where} ORDER BY unique_id_l, unique_id_r LIMIT ?",
        [limit],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _linked_rows(con: duckdb.DuckDBPyConnection, limit: int = 12) -> list[dict[str, Any]]:
    """Linked pairs, half of them with a first-name term-frequency adjustment."""
    threshold = scoring_model(con).match_threshold
    linked = f"match_probability >= {threshold!r} AND link_veto IS NULL"
    return _scored_rows(con, f"{linked} AND mw_tf_adj_first_name <> 0", limit // 2) + (
        _scored_rows(con, f"{linked} AND gamma_first_name <> 5", limit // 2)
    )


def _model_levels(model: dict[str, Any], comparison: str) -> list[dict[str, Any]]:
    """The non-null levels of a comparison, in order: level i has gamma len - 1 - i."""
    levels = next(c for c in model["comparisons"] if c["output_column_name"] == comparison)
    return [lv for lv in levels["comparison_levels"] if not lv.get("is_null_level")]


def _check_against_model(explanation: PairExplanation, model: dict[str, Any]) -> int:
    """Assert each comparison's weight is log2(m / u) of its level in the model JSON and
    the parts add up to the match weight; return how many levels were checked."""
    lam = model["probability_two_random_records_match"]
    assert explanation.prior_weight == pytest.approx(math.log2(lam / (1 - lam)), abs=1e-12)
    checked = 0
    for c in explanation.comparisons:
        if c.gamma == -1:
            assert c.partial_weight == 0.0
            assert not c.tf_adjustment
            continue
        levels = _model_levels(model, c.comparison)
        level = levels[len(levels) - 1 - c.gamma]
        assert c.level == level["label_for_charts"]
        m, u = level.get("m_probability"), level.get("u_probability")
        assert c.m_estimated == (m is not None) and c.u_estimated == (u is not None)
        if m is not None and u is not None:
            assert c.m_probability == m and c.u_probability == u
            assert c.partial_weight == pytest.approx(math.log2(m / u), abs=1e-9)
            checked += 1
    total = explanation.prior_weight + sum(
        c.partial_weight + (c.tf_adjustment or 0.0) for c in explanation.comparisons
    )
    assert total == pytest.approx(explanation.match_weight, abs=1e-6)
    assert explanation.total_weight == pytest.approx(explanation.match_weight, abs=1e-6)
    bayes = 2.0**explanation.match_weight
    assert explanation.match_probability == pytest.approx(bayes / (1 + bayes), abs=1e-9)
    return checked


def test_explained_weights_are_the_models_partial_weights(project: ProjectConfig) -> None:
    with _read(project) as con:
        model = scoring_model(con).model
        rows = _linked_rows(con)
        explanations = [explain_pair(con, r["unique_id_r"], r["unique_id_l"]) for r in rows]
    assert len(rows) >= 8
    checked = 0
    adjusted = 0
    for row, e in zip(rows, explanations, strict=True):
        assert (e.record_l, e.record_r) == (row["unique_id_l"], row["unique_id_r"])
        assert e.scored_in_run and not e.computed_now and e.is_link
        assert e.match_weight == row["match_weight"]
        checked += _check_against_model(e, model)
        for c in e.comparisons:
            assert c.partial_weight == row[f"mw_{c.comparison}"]
            stored_tf = row.get(f"mw_tf_adj_{c.comparison}")
            assert c.tf_adjustment == stored_tf
            if c.tf_column is None or c.gamma == -1:
                continue
            # Splink's adjustment: weight * (log2(u of the exact match) - log2(max tf)).
            levels = _model_levels(model, c.comparison)
            level = levels[len(levels) - 1 - c.gamma]
            exact = next(
                lv
                for lv in levels
                if lv["sql_condition"] == f'"{c.tf_column}_l" = "{c.tf_column}_r"'
            )
            tf = max(row[f"tf_{c.tf_column}_l"], row[f"tf_{c.tf_column}_r"])
            expected = level["tf_adjustment_weight"] * (
                math.log2(exact["u_probability"]) - math.log2(tf)
            )
            assert c.tf_adjustment == pytest.approx(expected, abs=1e-9)
            assert (c.term_frequency_l, c.term_frequency_r) == (
                row[f"tf_{c.tf_column}_l"],
                row[f"tf_{c.tf_column}_r"],
            )
            adjusted += c.tf_adjustment != 0
    assert checked >= 4 * len(rows), "most levels of linked pairs have a trained m and u"
    assert adjusted >= len(rows) // 2


def test_scoring_a_run_pair_again_reproduces_the_run(project: ProjectConfig) -> None:
    with _read(project) as con:
        rows = _linked_rows(con, limit=4)
        for row in rows:
            stored = explain_pair(con, row["unique_id_l"], row["unique_id_r"])
            again = explain_pair(con, row["unique_id_l"], row["unique_id_r"], recompute=True)
            assert again.computed_now and again.scored_in_run
            assert again.found_by_blocking_rules is True
            assert again.match_weight == pytest.approx(stored.match_weight, abs=1e-9)
            assert again.link_veto == stored.link_veto
            for a, b in zip(again.comparisons, stored.comparisons, strict=True):
                assert (a.comparison, a.gamma) == (b.comparison, b.gamma)
                assert a.partial_weight == pytest.approx(b.partial_weight, abs=1e-9)
                assert a.tf_adjustment == pytest.approx(b.tf_adjustment, abs=1e-9)


def test_a_pair_the_run_did_not_score_is_computed_and_adds_up(project: ProjectConfig) -> None:
    with _read(project) as con:
        model = scoring_model(con).model
        left, right = con.execute(
            "SELECT a.unique_id, b.unique_id FROM customer_records AS a "
            "JOIN customer_records AS b ON a.unique_id < b.unique_id "
            "AND a.first_name <> b.first_name AND a.last_name = b.last_name "
            "ANTI JOIN pairwise_matches AS p "
            "ON p.unique_id_l = a.unique_id AND p.unique_id_r = b.unique_id "
            "ORDER BY 1, 2 LIMIT 1"
        ).fetchall()[0]
        e = explain_pair(con, right, left)
    assert (e.record_l, e.record_r) == (left, right)
    assert not e.scored_in_run and e.computed_now
    assert e.not_scored_reason in {"not_blocked", "below_prediction_floor"}
    assert (e.not_scored_reason == "not_blocked") == (e.found_by_blocking_rules is False)
    assert _check_against_model(e, model) >= 3
    last_name = next(c for c in e.comparisons if c.comparison == "last_name")
    assert last_name.level == "Exact match on last_name"
    assert last_name.tf_adjustment is not None and last_name.term_frequency_l is not None


def test_a_steward_decision_shows_up_in_the_explanation(
    project: ProjectConfig, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(project.warehouse, warehouse)
    with _read(project) as con:
        row = _linked_rows(con, limit=2)[0]
    a, b = row["unique_id_l"], row["unique_id_r"]
    con = duckdb.connect(str(warehouse))
    try:
        record_decision(
            con,
            make_decision(
                "cannot_link", b, a, steward="ann", reason="twins", decided_at="2025-03-01"
            ),
        )
        first = explain_pair(con, a, b)
        record_decision(
            con,
            make_decision(
                "must_link", a, b, steward="ben", reason="same passport", decided_at="2025-03-02"
            ),
        )
        record_decision(con, make_decision("unmerge", a, steward="cy", reason="wrong person"))
        second = explain_pair(con, a, b, mask=True)
    finally:
        con.close()
    assert first.same_customer
    assert first.override is not None and first.override["decision"] == "cannot_link"
    assert first.override["override"]["steward"] == "ann"
    assert first.override["override"]["reason"] == "twins"
    assert first.override_reflected is False, "decided after the run: not applied yet"
    assert [o["decision"] for o in first.override_history] == ["cannot_link"]
    assert second.override is not None and second.override["decision"] == "must_link"
    assert second.override_reflected is True
    assert [o["decision"] for o in second.override_history] == ["cannot_link", "must_link"]
    assert [u["decision"] for u in second.unmerges] == ["unmerge"]
    assert a not in json.dumps(second.to_dict()), "masked: record ids only by their shape"


def test_cli_json_agrees_with_the_function(project: ProjectConfig, capsys) -> None:
    with _read(project) as con:
        row = _linked_rows(con, limit=2)[0]
        a, b = row["unique_id_l"], row["unique_id_r"]
        direct = explain_pair(con, a, b).to_dict()
        email = con.execute(
            "SELECT email FROM customer_records WHERE unique_id = ?", [a]
        ).fetchall()[0][0]
    config = str(project.config_path)
    assert main(["explain", b, a, "--json", "--config", config, "--role", "steward"]) == 0
    printed = json.loads(capsys.readouterr().out)
    chart = project.artifacts / "explain" / chart_file_name(a, b)
    assert printed.pop("chart_path") == str(chart)
    direct.pop("chart_path")
    assert printed == direct
    html = chart.read_text(encoding="utf-8")
    assert "vega" in html and 'src="http' not in html, "self-contained chart"

    assert main(["explain", a, b, "--config", config]) == 0
    text = capsys.readouterr().out
    assert f"{row['match_weight']:+.3f}" in text and "first_name" in text

    assert main(["explain", a, b, "--json", "--mask", "--config", config]) == 0
    masked = capsys.readouterr().out
    assert email is None or email not in masked
    assert json.loads(masked)["match_weight"] == direct["match_weight"]


def test_explain_customer_shows_the_links_that_hold_it_together(
    project: ProjectConfig, capsys
) -> None:
    with _read(project) as con:
        threshold = scoring_model(con).match_threshold
        customer_id, records, bridges = con.execute(
            "SELECT customer_id, records, bridges FROM customer_graph_metrics "
            "WHERE records >= 3 AND link_components = 1 ORDER BY bridges DESC, records DESC, "
            "customer_id LIMIT 1"
        ).fetchall()[0]
        members = [
            r[0]
            for r in con.execute(
                "SELECT unique_id FROM customer_clusters WHERE customer_id = ? ORDER BY 1",
                [customer_id],
            ).fetchall()
        ]
        e = explain_customer(con, customer_id)
    assert e.status == "active" and e.current_id == customer_id
    assert [r["unique_id"] for r in e.records] == members
    assert len(e.spanning_tree) == records - 1 == len(members) - 1
    assert len(e.bridges) == bridges
    assert all(edge.match_probability >= threshold for edge in e.edges)
    # The tree connects every record ...
    parent = list(range(len(members)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for edge in e.spanning_tree:
        parent[find(edge.index_l)] = find(edge.index_r)
    assert len({find(i) for i in range(len(members))}) == 1
    # ... and is of maximum weight: no other link is stronger than the weakest tree link
    # on the path it would short-cut (the cycle property).
    tree = {i: [] for i in range(len(members))}
    for edge in e.spanning_tree:
        tree[edge.index_l].append((edge.index_r, edge.match_weight))
        tree[edge.index_r].append((edge.index_l, edge.match_weight))

    def weakest_on_path(start: int, goal: int) -> float:
        stack = [(start, -1, math.inf)]
        while stack:
            node, came_from, weakest = stack.pop()
            if node == goal:
                return weakest
            stack.extend((nxt, node, min(weakest, w)) for nxt, w in tree[node] if nxt != came_from)
        raise AssertionError("the tree does not connect the records")

    for edge in e.edges:
        if not edge.in_spanning_tree and edge.link_veto is None:
            assert edge.match_weight <= weakest_on_path(edge.index_l, edge.index_r) + 1e-12
    assert any(h["event"] == "new" and h["id"] == customer_id for h in e.id_history)

    config = str(project.config_path)
    assert (
        main(["explain-customer", customer_id, "--json", "--config", config, "--role", "steward"])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == e.to_dict()
    assert printed["spanning_tree_edges"] == len(members) - 1
    assert main(["explain-customer", customer_id, "--config", str(project.config_path)]) == 0
    assert "holds it together" in capsys.readouterr().out


def test_a_must_link_merge_retires_an_id_that_points_to_the_survivor(
    project: ProjectConfig, small_demo: Path, mlflow_uri: str, tmp_path: Path
) -> None:
    copy = demo_project_file(tmp_path, small_demo, mlflow_uri=mlflow_uri, experiment="test-explain")
    shutil.copy(project.warehouse, copy.warehouse)
    con = duckdb.connect(str(copy.warehouse))
    try:
        # Two customers of several records with no scored pair between them.
        first, a, second, b = con.execute(
            "WITH c AS (SELECT customer_id, min(unique_id) AS anchor FROM customer_clusters "
            "  WHERE customer_record_count >= 2 GROUP BY 1), "
            "touching AS (SELECT DISTINCT least(x.customer_id, y.customer_id) AS c1, "
            "  greatest(x.customer_id, y.customer_id) AS c2 FROM pairwise_matches AS p "
            "  JOIN customer_clusters AS x ON x.unique_id = p.unique_id_l "
            "  JOIN customer_clusters AS y ON y.unique_id = p.unique_id_r) "
            "SELECT c1.customer_id, c1.anchor, c2.customer_id, c2.anchor "
            "FROM c AS c1 JOIN c AS c2 ON c1.customer_id < c2.customer_id "
            "ANTI JOIN touching AS t ON t.c1 = c1.customer_id AND t.c2 = c2.customer_id "
            "ORDER BY 1, 3 LIMIT 1"
        ).fetchall()[0]
        record_decision(
            con, make_decision("must_link", a, b, steward="ann", reason="same passport")
        )
    finally:
        con.close()
    result = dg.materialize(
        build_assets(copy), resources=build_resources(copy), selection=["customer_clusters"]
    )
    assert result.success
    with _read(copy) as con:
        (survivor,) = {
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM customer_clusters WHERE unique_id IN (?, ?)", [a, b]
            ).fetchall()
        }
        retired_id = second if survivor == first else first
        retired = explain_customer(con, retired_id)
        kept = explain_customer(con, survivor)
        pair = explain_pair(con, a, b)
    assert retired.status == "retired" and not retired.records
    assert retired.merged_into == survivor == retired.current_id
    assert any(
        h["event"] == "merged" and h["id"] == retired_id and h["related_id"] == survivor
        for h in retired.id_history
    )
    assert [{m["record_a"], m["record_b"]} for m in kept.must_links] == [{a, b}]
    assert kept.link_components >= 2, "no link joins the two former customers"
    assert len(kept.spanning_tree) == len(kept.records) - kept.link_components
    assert pair.same_customer and pair.override_reflected is True
    assert pair.override is not None and pair.override["decision"] == "must_link"


def test_unknown_records_and_customers_exit_1_with_a_message(
    project: ProjectConfig, demo_project: ProjectConfig, capsys
) -> None:
    config = str(project.config_path)
    with _read(project) as con:
        known = con.execute("SELECT min(unique_id) FROM customer_records").fetchall()[0][0]
        with pytest.raises(ExplainError, match="crm_contacts:NOPE"):
            explain_pair(con, known, "crm_contacts:NOPE")
        with pytest.raises(ValueError, match="two different records"):
            explain_pair(con, known, known)
    assert main(["explain", known, "crm_contacts:NOPE", "--config", config]) == 1
    assert "crm_contacts:NOPE" in capsys.readouterr().err
    assert main(["explain-customer", "cus_0000000000000000", "--config", config]) == 1
    assert "cus_0000000000000000" in capsys.readouterr().err
    fresh = str(demo_project.config_path)
    assert main(["explain", known, "crm_contacts:NOPE", "--config", fresh]) == 1
    assert "make demo" in capsys.readouterr().err


def test_explain_shows_each_role_only_what_it_sees(
    project: ProjectConfig, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MELD_ROLE", raising=False)
    with _read(project) as con:
        row = _linked_rows(con, limit=2)[0]
        a, b = row["unique_id_l"], row["unique_id_r"]
        customer_id, first, email = con.execute(
            "SELECT c.customer_id, r.first_name, r.email FROM customer_records AS r "
            "JOIN customer_clusters AS c USING (unique_id) WHERE unique_id = ?",
            [a],
        ).fetchall()[0]
    config = str(project.config_path)
    assert main(["explain", a, b, "--json", "--config", config]) == 0
    out, err = capsys.readouterr()
    analyst = json.loads(out)
    assert "role analyst (the default role)" in err
    assert a not in out and first not in out and (email is None or email not in out)
    compared = {c for comparison in analyst["comparisons"] for c in comparison["values_l"]}
    assert not compared & {"first_name", "last_name", "email", "phone"}
    chart = Path(analyst["chart_path"])
    assert chart.parent.name == "masked" and first not in chart.read_text(encoding="utf-8")

    monkeypatch.setenv("MELD_ROLE", "steward")
    assert main(["explain", a, b, "--json", "--config", config]) == 0
    steward = json.loads(capsys.readouterr().out)
    assert steward["record_l"] == a
    assert any(c["values_l"].get("first_name") == first for c in steward["comparisons"])
    assert steward["match_weight"] == analyst["match_weight"]

    assert main(["explain-customer", customer_id, "--config", config, "--role", "analyst"]) == 0
    text = capsys.readouterr().out
    assert "(name hidden)" in text and a not in text and first not in text.lower()
