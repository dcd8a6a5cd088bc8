"""Clustering: thresholds, singletons, link vetoes and steward must- and cannot-links on
hand-made pairs; connected components on random graphs and on demo data; best links
(no chaining through weak bridges or vetoed pairs) and customer graph metrics."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from splink import DuckDBAPI
from splink.clustering import cluster_pairwise_predictions_at_threshold

from linkage.cluster.algorithms import DEFAULT_MIN_COHESION, best_links, constrained_union_find
from linkage.cluster.clustering import ClusterSummary, cluster_records
from linkage.cluster.graph_metrics import bridges_and_components, customer_graph_metrics
from linkage.ingest.identifiers import INVALID_HASH_TOKEN
from linkage.model.vetoes import apply_link_vetoes

RECORDS = pd.DataFrame(
    {
        "unique_id": ["s:1", "s:2", "s:3", "s:4", "s:5"],
        "source_system": ["s"] * 5,
        "source_record_id": ["1", "2", "3", "4", "5"],
    }
)


def _load_pairs(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.register("pairs_frame", _pairs(rows))
    con.execute("CREATE TABLE pairs AS SELECT * FROM pairs_frame")
    con.unregister("pairs_frame")


def _pairs(rows: list[tuple]) -> pd.DataFrame:
    rows = [row if len(row) == 9 else (*row, "berg", "berg") for row in rows]
    return pd.DataFrame(
        rows,
        columns=[
            "unique_id_l",
            "unique_id_r",
            "match_probability",
            "first_name_l",
            "first_name_r",
            "date_of_birth_l",
            "date_of_birth_r",
            "last_name_l",
            "last_name_r",
        ],
    )


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.register("records_frame", RECORDS)
    connection.execute("CREATE TABLE records AS SELECT * FROM records_frame")
    yield connection
    connection.close()


def _customers(con) -> dict[str, str]:
    return dict(con.execute("SELECT unique_id, customer_id FROM clusters").fetchall())


def test_pairs_at_threshold_join_and_everyone_gets_a_customer(con) -> None:
    d = date(1980, 1, 2)
    _load_pairs(
        con,
        [
            ("s:1", "s:2", 0.99, "anna", "anna", d, d),
            ("s:2", "s:3", 0.96, "anna", "ana", d, d),
            ("s:3", "s:4", 0.5, "ana", "anna", d, d),
        ],
    )
    summary = cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.95, out_table="clusters"
    )
    customers = _customers(con)
    assert customers["s:1"] == customers["s:2"] == customers["s:3"]
    assert len({customers["s:3"], customers["s:4"], customers["s:5"]}) == 3
    assert (summary.records, summary.customers, summary.largest_customer, summary.singletons) == (
        5,
        3,
        3,
        2,
    )
    assert all(c.startswith("cus_") for c in customers.values())


def test_customer_ids_are_reproducible(con) -> None:
    d = date(1980, 1, 2)
    _load_pairs(con, [("s:1", "s:2", 0.99, "anna", "anna", d, d)])
    cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.9, out_table="clusters"
    )
    first = _customers(con)
    cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.9, out_table="clusters"
    )
    assert _customers(con) == first


@pytest.mark.parametrize(
    ("first", "dobs", "vetoed"),
    [
        (("freddie", "bradley"), (date(2020, 5, 20), date(2020, 6, 23)), False),
        (("gesine", "nick"), (date(1986, 6, 7), date(1993, 10, 14)), True),
        (("olek", "aleksander"), (date(1995, 9, 6), date(1995, 9, 6)), False),
        (("olek", "aleksander"), (date(1995, 9, 6), None), False),
        (("anna", "anna"), (date(1980, 1, 1), date(1990, 1, 1)), False),
        (("lisa", "jan"), (date(1980, 3, 5), date(1980, 5, 3)), False),
    ],
    ids=[
        "names-swapped",
        "household",
        "nickname-same-dob",
        "nickname-no-dob",
        "same-name",
        "swapped-day-month",
    ],
)
def test_first_name_and_birth_date_conflict_vetoes_the_link(con, first, dobs, vetoed) -> None:
    last = ("bradley", "freddie") if first == ("freddie", "bradley") else ("berg", "berg")
    _load_pairs(
        con, [("s:1", "s:2", 0.999, first[0], first[1], dobs[0], dobs[1], last[0], last[1])]
    )
    counts = apply_link_vetoes(con, "pairs")
    assert counts["first_name_and_date_of_birth_conflict"] == int(vetoed)
    cluster_records(
        con, records_table="records", pairs_table="pairs", threshold=0.9, out_table="clusters"
    )
    customers = _customers(con)
    assert (customers["s:1"] != customers["s:2"]) is vetoed


@pytest.mark.parametrize(
    ("national_ids", "vetoed"),
    [(("h1", "h1"), False), (("h1", "h2"), True), (("h1", None), True)],
    ids=["same-national-id", "different-national-ids", "one-national-id"],
)
def test_the_same_national_id_lifts_the_veto(con, national_ids, vetoed) -> None:
    frame = _pairs([("s:1", "s:2", 0.999, "gesine", "nick", date(1986, 6, 7), date(1993, 10, 14))])
    frame["national_id_l"], frame["national_id_r"] = national_ids
    _load_pairs_frame(con, frame)
    assert apply_link_vetoes(con, "pairs")["first_name_and_date_of_birth_conflict"] == int(vetoed)


def test_an_invalid_national_id_on_both_sides_does_not_lift_the_veto(con) -> None:
    frame = _pairs([("s:1", "s:2", 0.999, "gesine", "nick", date(1986, 6, 7), date(1993, 10, 14))])
    frame["national_id_l"] = frame["national_id_r"] = INVALID_HASH_TOKEN
    _load_pairs_frame(con, frame)
    assert apply_link_vetoes(con, "pairs")["first_name_and_date_of_birth_conflict"] == 1


def _cluster(con, threshold: float = 0.9, **decisions) -> ClusterSummary:
    return cluster_records(
        con,
        records_table="records",
        pairs_table="pairs",
        threshold=threshold,
        out_table="clusters",
        **decisions,
    )


def _groups(con) -> set[frozenset[str]]:
    rows = con.execute(
        "SELECT list(unique_id ORDER BY unique_id) FROM clusters GROUP BY customer_id"
    ).fetchall()
    return {frozenset(row[0]) for row in rows}


def _refused(con) -> list[tuple]:
    return con.execute(
        "SELECT unique_id_l, unique_id_r, match_probability, reason, cannot_link_l, "
        "cannot_link_r FROM refused_links"
    ).fetchall()


def test_must_link_joins_records_the_model_does_not_link(con) -> None:
    d = date(1980, 1, 2)
    _load_pairs(con, [("s:1", "s:2", 0.99, "anna", "anna", d, d)])
    summary = _cluster(con, must_link=[("s:2", "s:4")])
    assert frozenset({"s:1", "s:2", "s:4"}) in _groups(con)
    assert (summary.must_links_applied, summary.must_links_refused) == (1, 0)
    assert _refused(con) == []


@pytest.mark.parametrize(
    ("p_12", "p_23", "kept", "refused"),
    [
        (0.99, 0.97, {"s:1", "s:2"}, ("s:2", "s:3", 0.97, "cannot_link", "s:1", "s:3")),
        (0.96, 0.99, {"s:2", "s:3"}, ("s:1", "s:2", 0.96, "cannot_link", "s:1", "s:3")),
        (0.95, 0.95, {"s:1", "s:2"}, ("s:2", "s:3", 0.95, "cannot_link", "s:1", "s:3")),
    ],
    ids=["weak-second-link", "weak-first-link", "tie-broken-by-unique-id"],
)
def test_cannot_link_splits_a_chain_at_its_weakest_link(con, p_12, p_23, kept, refused) -> None:
    d = date(1980, 1, 2)
    _load_pairs(
        con,
        [("s:1", "s:2", p_12, "anna", "anna", d, d), ("s:2", "s:3", p_23, "anna", "anna", d, d)],
    )
    summary = _cluster(con, cannot_link=[("s:3", "s:1")])
    groups = _groups(con)
    assert frozenset(kept) in groups
    assert frozenset({"s:1", "s:2", "s:3"} - kept) in groups
    assert _refused(con) == [refused]
    assert (summary.links, summary.links_refused) == (2, 1)


def test_cannot_link_wins_over_a_must_link_that_contradicts_it(con) -> None:
    _load_pairs(con, [])
    summary = _cluster(
        con, must_link=[("s:1", "s:2"), ("s:2", "s:3")], cannot_link=[("s:1", "s:3")]
    )
    assert frozenset({"s:1", "s:2"}) in _groups(con)
    assert (summary.must_links_applied, summary.must_links_refused) == (1, 1)
    assert _refused(con) == [("s:2", "s:3", None, "must_link_conflict", "s:1", "s:3")]


def test_decisions_naming_unknown_records_are_ignored_and_counted(con) -> None:
    _load_pairs(con, [])
    summary = _cluster(con, must_link=[("s:1", "s:99")], cannot_link=[("x:1", "s:2")])
    assert summary.constraints_ignored == 2
    assert summary.customers == 5


def _components(n: int, links: list[tuple[int, int, float]]) -> set[frozenset[int]]:
    """Connected components by breadth-first search: the reference."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b, _ in links:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen: set[int] = set()
    components = set()
    for start in range(n):
        if start in seen:
            continue
        todo, component = [start], set()
        while todo:
            node = todo.pop()
            if node not in component:
                component.add(node)
                todo.extend(neighbours[node] - component)
        seen |= component
        components.add(frozenset(component))
    return components


def _random_links(seed: int, n: int, m: int) -> list[tuple[int, int, float]]:
    rng = np.random.default_rng(seed)
    links = {
        (min(a, b), max(a, b)): float(p)
        for a, b, p in zip(rng.integers(0, n, m), rng.integers(0, n, m), rng.random(m), strict=True)
        if a != b
    }
    return sorted(((a, b, p) for (a, b), p in links.items()), key=lambda x: (-x[2], x[0], x[1]))


def _label_groups(labels: list[int]) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for node, label in enumerate(labels):
        groups.setdefault(label, set()).add(node)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize(("seed", "n", "m"), [(1, 50, 40), (2, 200, 150), (3, 300, 600)])
def test_union_find_without_decisions_is_connected_components(seed, n, m) -> None:
    links = _random_links(seed, n, m)
    result = constrained_union_find(n, links)
    assert _label_groups(result.labels) == _components(n, links)
    assert result.refused == []


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_union_find_never_joins_a_cannot_link_pair(seed) -> None:
    n = 200
    links = _random_links(seed, n, 300)
    rng = np.random.default_rng(seed + 100)
    cannot = [(int(a), int(b)) for a, b in rng.integers(0, n, (40, 2)) if a != b]
    must = [(int(a), int(b)) for a, b in rng.integers(0, n, (10, 2)) if a != b]
    result = constrained_union_find(n, links, must_link=must, cannot_link=cannot)
    labels = result.labels
    assert all(labels[a] != labels[b] for a, b in cannot)
    refused = {(r.left, r.right) for r in result.refused}
    assert all(labels[a] == labels[b] for a, b, _ in links if (a, b) not in refused)
    assert all(labels[a] == labels[b] for a, b in must if (a, b) not in refused)
    for r in result.refused:
        assert labels[r.left] != labels[r.right]
        assert (r.conflict_left, r.conflict_right) in {*cannot, *((b, a) for a, b in cannot)}
    assert result.must_links_applied == sum(labels[a] == labels[b] for a, b in must)


def _demo_records_and_pairs(demo_dir: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records of a generated demo with pairs scored at random: pairs of one person
    mostly high, random pairs across persons anywhere, some vetoed."""
    truth = pd.read_csv(demo_dir / "landing" / "truth.csv", dtype=str)
    records = pd.DataFrame(
        {
            "unique_id": truth["source"] + ":" + truth["record_id"],
            "source_system": truth["source"],
            "source_record_id": truth["record_id"],
        }
    )
    rng = np.random.default_rng(seed)
    pairs = []
    for members in truth.assign(uid=records["unique_id"]).groupby("person_id")["uid"]:
        ids = sorted(members[1])
        pairs += [(a, b, 0.5 + 0.5 * rng.random()) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    ids = records["unique_id"].tolist()
    for a, b in rng.integers(0, len(ids), (len(ids), 2)):
        if a != b:
            pairs.append((ids[a], ids[b], float(rng.random())))
    frame = pd.DataFrame(pairs, columns=["unique_id_l", "unique_id_r", "match_probability"])
    frame["link_veto"] = np.where(rng.random(len(frame)) < 0.05, "some_veto", None)
    return records, frame


def _splink_components(records: pd.DataFrame, pairs: pd.DataFrame, threshold: float) -> set:
    """Customers as the previous implementation made them: Splink's connected components."""
    con = duckdb.connect()
    con.register("records_frame", records)
    con.execute("CREATE TABLE records AS SELECT * FROM records_frame")
    con.register("pairs_frame", pairs)
    con.execute("CREATE TABLE links AS SELECT * FROM pairs_frame WHERE link_veto IS NULL")
    clusters = cluster_pairwise_predictions_at_threshold(
        nodes="records",
        edges="links",
        db_api=DuckDBAPI(connection=con),
        node_id_column_name="unique_id",
        threshold_match_probability=threshold,
    ).as_pandas_dataframe()
    con.close()
    return {frozenset(g) for g in clusters.groupby("cluster_id")["unique_id"].apply(set)}


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.95])
def test_without_decisions_customers_equal_splink_connected_components(
    small_demo: Path, tmp_path: Path, threshold: float
) -> None:
    records, pairs = _demo_records_and_pairs(small_demo, seed=int(threshold * 100))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.register("records_frame", records)
    con.execute("CREATE TABLE records AS SELECT * FROM records_frame")
    _load_pairs_frame(con, pairs)
    summary = _cluster(con, threshold=threshold)
    rows = con.execute("SELECT unique_id, customer_id FROM clusters").fetchall()
    con.close()
    customers: dict[str, set[str]] = {}
    for unique_id, customer_id in rows:
        customers.setdefault(customer_id, set()).add(unique_id)
    assert {frozenset(c) for c in customers.values()} == _splink_components(
        records, pairs, threshold
    )
    for customer_id, members in customers.items():
        assert customer_id == "cus_" + hashlib.md5(min(members).encode()).hexdigest()[:16]
    assert summary.records == len(records) and summary.links_refused == 0
    assert summary.customers < len(records)


def _load_pairs_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    con.register("pairs_frame", frame)
    con.execute("CREATE TABLE pairs AS SELECT * FROM pairs_frame")
    con.unregister("pairs_frame")


# --------------------------------------------------------------------------- #
# best_links: no chaining
# --------------------------------------------------------------------------- #


def _best(con, threshold: float = 0.9, **decisions) -> ClusterSummary:
    return _cluster(con, threshold=threshold, method="best_links", **decisions)


def _all_refused(con) -> list[tuple]:
    return con.execute(
        "SELECT unique_id_l, unique_id_r, match_probability, reason, cannot_link_l, "
        "cannot_link_r, round(cohesion, 3) FROM refused_links"
    ).fetchall()


def test_best_links_splits_two_people_chained_by_a_weak_bridge(con) -> None:
    # Two people (s:1-s:2 and s:4-s:5) and a name-only ticket s:3 that links to both.
    d = date(1980, 1, 2)
    _load_pairs(
        con,
        [
            ("s:1", "s:2", 0.999, "anna", "anna", d, d),
            ("s:4", "s:5", 0.999, "anna", "anna", d, d),
            ("s:1", "s:3", 0.97, "anna", "anna", d, None),
            ("s:3", "s:4", 0.96, "anna", "anna", None, d),
        ],
    )
    _cluster(con)
    assert _groups(con) == {frozenset({"s:1", "s:2", "s:3", "s:4", "s:5"})}

    summary = _best(con)
    # The ticket joins the customer of its best link; its weaker link would join two
    # customers with one link among the 3 x 2 record pairs across them.
    assert _groups(con) == {frozenset({"s:1", "s:2", "s:3"}), frozenset({"s:4", "s:5"})}
    assert _all_refused(con) == [("s:3", "s:4", 0.96, "weak_bridge", None, None, 0.167)]
    assert (summary.links, summary.links_refused_as_weak, summary.links_refused) == (4, 1, 0)
    assert summary.method == "best_links"


@pytest.mark.parametrize(
    ("cross_links", "joined"),
    [
        ([(0, 2, 0.96)], True),  # 1 of the 4 pairs across: a quarter, enough
        ([(0, 2, 0.96), (1, 3, 0.955)], True),
    ],
    ids=["one-of-four", "two-of-four"],
)
def test_best_links_joins_two_halves_of_one_person_that_enough_links_support(
    cross_links, joined
) -> None:
    links = [(0, 1, 0.999), (2, 3, 0.999), *cross_links]
    result = best_links(4, links)
    assert (len(set(result.labels)) == 1) is joined
    assert result.refused == []


def test_best_links_keeps_a_sparse_record_with_one_weak_link() -> None:
    # Records 0-1-2 are one well-linked person; 3 (a ticket with only an e-mail) links
    # to one of them, just above the threshold: a single record is never a weak bridge.
    links = [(0, 1, 0.999), (0, 2, 0.999), (1, 2, 0.998), (2, 3, 0.951)]
    result = best_links(4, links)
    assert len(set(result.labels)) == 1
    assert result.refused == []


def test_best_links_refuses_a_lone_bridge_below_the_minimum_cohesion() -> None:
    strong = [(0, 1, 0.999), (2, 3, 0.999), (2, 4, 0.999), (3, 4, 0.999)]
    result = best_links(5, [*strong, (1, 2, 0.96)])
    assert _label_groups(result.labels) == {frozenset({0, 1}), frozenset({2, 3, 4})}
    (refusal,) = result.refused
    assert (refusal.left, refusal.right, refusal.reason) == (1, 2, "weak_bridge")
    assert refusal.cohesion == pytest.approx(1 / 6) and refusal.cohesion < DEFAULT_MIN_COHESION
    assert len(set(best_links(5, [*strong, (1, 2, 0.96)], min_cohesion=0).labels)) == 1


def test_must_links_are_never_refused_as_weak_bridges() -> None:
    # Two well-linked groups, 0-1 and 2-3-4, that a steward says are one person
    # through 1 and 2; no model link joins the groups.
    links = [(0, 1, 0.999), (2, 3, 0.999), (2, 4, 0.999), (3, 4, 0.999)]
    result = best_links(5, links, must_link=[(1, 2)])
    assert len(set(result.labels)) == 1
    assert result.must_links_applied == 1 and result.refused == []


@pytest.mark.parametrize("seed", [7, 8, 9, 10])
def test_best_links_with_no_cohesion_check_is_constrained_union_find(seed) -> None:
    n = 200
    links = _random_links(seed, n, 300)
    rng = np.random.default_rng(seed + 100)
    cannot = [(int(a), int(b)) for a, b in rng.integers(0, n, (40, 2)) if a != b]
    must = [(int(a), int(b)) for a, b in rng.integers(0, n, (10, 2)) if a != b]
    ours = best_links(n, links, must_link=must, cannot_link=cannot, min_cohesion=0)
    theirs = constrained_union_find(n, links, must_link=must, cannot_link=cannot)
    assert _label_groups(ours.labels) == _label_groups(theirs.labels)
    assert ours.refused == theirs.refused
    assert ours.must_links_applied == theirs.must_links_applied


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_best_links_never_joins_a_cannot_link_pair_and_applies_must_links(seed) -> None:
    n = 200
    links = _random_links(seed, n, 400)
    rng = np.random.default_rng(seed + 100)
    cannot = [(int(a), int(b)) for a, b in rng.integers(0, n, (40, 2)) if a != b]
    must = [(int(a), int(b)) for a, b in rng.integers(0, n, (10, 2)) if a != b]
    result = best_links(n, links, must_link=must, cannot_link=cannot)
    labels = result.labels
    assert all(labels[a] != labels[b] for a, b in cannot)
    must_refused = {(r.left, r.right) for r in result.refused if r.reason == "must_link_conflict"}
    assert all(labels[a] == labels[b] for a, b in must if (a, b) not in must_refused)
    assert result.must_links_applied == sum(labels[a] == labels[b] for a, b in must)
    for refusal in result.refused:
        if refusal.reason in ("cannot_link", "must_link_conflict"):
            pair = (refusal.conflict_left, refusal.conflict_right)
            assert pair in {*cannot, *((b, a) for a, b in cannot)}
        else:
            assert refusal.reason == "weak_bridge"
            assert refusal.cohesion is not None and refusal.cohesion < DEFAULT_MIN_COHESION


@pytest.mark.parametrize("seed", [14, 15, 16])
def test_best_links_only_splits_connected_components(seed) -> None:
    n = 300
    links = _random_links(seed, n, 500)
    ours = best_links(n, links).labels
    components = constrained_union_find(n, links).labels
    # Every customer lies inside one connected component: best links only refuses.
    assert all(len({components[node] for node in group}) == 1 for group in _label_groups(ours))
    assert len(_label_groups(ours)) > len(_label_groups(components))


def test_best_links_is_deterministic(small_demo: Path, tmp_path: Path) -> None:
    links = _random_links(17, 500, 900)
    first = best_links(500, links, must_link=[(1, 2), (3, 4)], cannot_link=[(5, 6)])
    again = best_links(500, list(links), must_link=[(1, 2), (3, 4)], cannot_link=[(5, 6)])
    assert first == again

    records, pairs = _demo_records_and_pairs(small_demo, seed=3)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.register("records_frame", records)
    con.execute("CREATE TABLE records AS SELECT * FROM records_frame")
    _load_pairs_frame(con, pairs)
    runs = []
    for _ in range(2):
        _best(con, threshold=0.5)
        runs.append(
            (
                con.execute("SELECT * FROM clusters ORDER BY unique_id").fetchall(),
                con.execute("SELECT * FROM refused_links").fetchall(),
            )
        )
    con.close()
    assert runs[0] == runs[1]
    assert any(row[3] == "weak_bridge" for row in runs[0][1])


def test_an_unknown_clustering_method_fails_clearly(con) -> None:
    _load_pairs(con, [])
    with pytest.raises(ValueError, match="clustering method 'louvain' is unknown"):
        _cluster(con, method="louvain")


# --------------------------------------------------------------------------- #
# customer_graph_metrics
# --------------------------------------------------------------------------- #


def test_customer_graph_metrics_describe_each_customer_and_warn_about_big_ones(
    con, caplog: pytest.LogCaptureFixture
) -> None:
    d = date(1980, 1, 2)
    _load_pairs(
        con,
        [
            ("s:1", "s:2", 0.99, "anna", "anna", d, d),  # A: a chain 1-2-3
            ("s:2", "s:3", 0.97, "anna", "ana", d, d),
            ("s:1", "s:3", 0.5, "anna", "ana", d, d),  # not a link
            ("s:1", "s:3", 0.5, "anna", "ana", d, d),
            ("s:3", "s:4", 0.99, "ana", "ana", d, d),  # across customers: not counted
        ],
    )
    con.execute("ALTER TABLE pairs ADD COLUMN link_veto VARCHAR")
    con.execute("UPDATE pairs SET link_veto = 'v' WHERE match_probability = 0.5")
    con.execute(
        "CREATE TABLE clusters AS SELECT * FROM (VALUES ('s:1', 'A'), ('s:2', 'A'), "
        "('s:3', 'A'), ('s:4', 'B'), ('s:5', 'B')) AS t(unique_id, customer_id)"
    )
    with caplog.at_level("WARNING", logger="linkage.cluster.graph_metrics"):
        summary = customer_graph_metrics(
            con, clusters_table="clusters", pairs_table="pairs", threshold=0.9, warn_cluster_size=2
        )
    rows = con.execute(
        "SELECT customer_id, records, links, round(density, 3), min_link_probability, "
        "round(mean_link_probability, 3), bridges, link_components, vetoed_pairs, oversized "
        "FROM customer_graph_metrics ORDER BY customer_id"
    ).fetchall()
    assert rows == [
        ("A", 3, 2, 0.667, 0.97, 0.98, 2, 1, 1, True),
        ("B", 2, 0, 0.0, None, None, 0, 2, 0, False),  # held together by a must-link
    ]
    assert summary.oversized == (("A", 3),)
    assert (summary.customers, summary.largest_customer) == (2, 3)
    assert (summary.customers_with_bridges, summary.customers_held_by_must_links) == (1, 1)
    assert "1 customer(s) have more than 2 records" in caplog.text and "A (3)" in caplog.text


def test_bridges_are_the_links_whose_removal_splits_a_customer() -> None:
    # A triangle 0-1-2 with a tail 2-3-4, and a separate square 5-6-7-8.
    edges = [(0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (5, 6), (6, 7), (7, 8), (5, 8)]
    bridges, components = bridges_and_components(10, edges)
    assert bridges == [(2, 3), (3, 4)]
    assert _label_groups(components) == {
        frozenset({0, 1, 2, 3, 4}),
        frozenset({5, 6, 7, 8}),
        frozenset({9}),
    }
