"""Writes a kill cannot leave half done (linkage.atomic), on real DuckDB files and a real
SIGKILL of a writing process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from linkage.atomic import in_transaction, scratch_table, swap_tables, transaction

ROOT = Path(__file__).resolve().parents[1]

_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import duckdb
    from linkage.atomic import scratch_table, swap_tables, transaction

    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE OR REPLACE TABLE __meld_next_pairs AS SELECT range AS v FROM range(50000)")
    with transaction(con):
        con.execute("CREATE OR REPLACE TABLE customers AS SELECT 2 AS version")
        con.execute("CREATE OR REPLACE TABLE customer_ids (version INTEGER)")
        con.execute("INSERT INTO customer_ids VALUES (2)")
        swap_tables(con, {"pairs": scratch_table("pairs")})
        if sys.argv[2] == "before_commit":
            os.kill(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _killed_writer(path: Path, when: str) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE customers AS SELECT 1 AS version")
        con.execute("CREATE TABLE customer_ids AS SELECT 1 AS version")
        con.execute("CREATE TABLE pairs AS SELECT 1 AS v")
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(path), when], cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


@pytest.mark.parametrize(
    ("when", "version", "pairs"), [("before_commit", 1, 1), ("after_commit", 2, 50000)]
)
def test_a_killed_writer_leaves_the_old_tables_or_the_new_ones_never_a_mix(
    tmp_path: Path, when: str, version: int, pairs: int
) -> None:
    path = tmp_path / "warehouse.duckdb"
    _killed_writer(path, when)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT version FROM customers").fetchall() == [(version,)]
        assert con.execute("SELECT version FROM customer_ids").fetchall() == [(version,)]
        assert con.execute("SELECT count(*) FROM pairs").fetchall() == [(pairs,)]
        leftover = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [scratch_table("pairs")]
        ).fetchall()
    assert leftover == [(1 if when == "before_commit" else 0,)]


def test_an_inner_block_joins_the_outer_transaction_and_rolls_back_with_it() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS v")
    with pytest.raises(RuntimeError), transaction(con):
        with transaction(con):
            con.execute("CREATE OR REPLACE TABLE t AS SELECT 2 AS v")
        assert in_transaction(con)
        raise RuntimeError("the outer block fails after the inner one ended")
    assert not in_transaction(con)
    assert con.execute("SELECT v FROM t").fetchall() == [(1,)]


def test_the_error_that_aborted_the_transaction_is_raised_not_the_clean_up_refusal() -> None:
    """A DuckDB error aborts the transaction; a clean-up in ``finally`` is then refused
    ("Current transaction is aborted"): the caller sees the first error."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS v")
    with pytest.raises(duckdb.CatalogException, match="no_such_table"), transaction(con):
        con.execute("CREATE TEMP TABLE scratch AS SELECT 1")
        try:
            con.execute("SELECT * FROM no_such_table")
        finally:
            con.execute("DROP TABLE IF EXISTS scratch")
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'scratch'"
    ).fetchall() == [(0,)]


def test_swapping_in_a_missing_scratch_table_changes_nothing() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE a AS SELECT 1 AS v")
    con.execute(f"CREATE TABLE {scratch_table('a')} AS SELECT 2 AS v")
    with pytest.raises(LookupError, match=scratch_table("b")):
        swap_tables(con, {"a": scratch_table("a"), "b": scratch_table("b")})
    assert con.execute("SELECT v FROM a").fetchall() == [(1,)]


def _scored_warehouse(con: duckdb.DuckDBPyConnection, links: list[tuple[str, str]]) -> None:
    """Five records, the given links scored 0.99, and the model that scored them."""
    from datetime import datetime

    from linkage.model.store import StoredModel, record_model, record_scoring_model

    con.execute(
        "CREATE OR REPLACE TABLE customer_records AS SELECT 's:' || i AS unique_id, "
        "'s' AS source_system, i::VARCHAR AS source_record_id FROM range(1, 6) AS t(i)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE pairwise_matches (unique_id_l VARCHAR, unique_id_r VARCHAR, "
        "match_probability DOUBLE, match_weight DOUBLE)"
    )
    con.executemany("INSERT INTO pairwise_matches VALUES (?, ?, 0.99, 7.0)", links)
    stored = StoredModel({}, datetime(2026, 1, 1), 0.9, 0.01, "mlflow-run", "meld", "1", "r0")
    record_model(con, stored)
    record_scoring_model(con, stored)


def test_a_clustering_that_dies_before_its_commit_leaves_customers_and_ids_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customers, id registry, membership, id history and graph metrics are one
    transaction: a failure after ``customer_clusters`` was written (as a kill would
    strike) leaves all of them at the previous run's version."""
    import linkage.cluster.steps as steps
    from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES
    from linkage.tables import CUSTOMER_CLUSTERS, CUSTOMER_GRAPH_METRICS, REFUSED_LINKS

    ids = CUSTOMER_ID_TABLES
    state = (CUSTOMER_CLUSTERS, ids.registry, ids.membership, ids.history, ids.moves)
    state += (CUSTOMER_GRAPH_METRICS, REFUSED_LINKS)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        _scored_warehouse(con, [("s:1", "s:2")])
        steps.build_customer_clusters(con, steps.ClusteringSpec(), run_id="r1")
        before = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in state}

        _scored_warehouse(con, [("s:1", "s:2"), ("s:2", "s:3"), ("s:4", "s:5")])
        publish = steps._publish

        def publish_then_die(con: duckdb.DuckDBPyConnection) -> None:
            publish(con)
            raise RuntimeError("killed after customer_clusters was written")

        monkeypatch.setattr(steps, "_publish", publish_then_die)
        with pytest.raises(RuntimeError, match="killed"):
            steps.build_customer_clusters(con, steps.ClusteringSpec(), run_id="r2")
        after = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in state}
        scratch = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '__meld')"
        ).fetchall()
    assert after == before
    assert len(before["customer_clusters"]) == 5 and before["customer_id_history"]
    assert scratch == []
