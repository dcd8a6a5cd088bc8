"""Facts about one linkage run, gathered from the warehouse for the run ledger.

Everything here is a count, a hash, an id or a file name: no record value, so the
results may go to the ledger, MLflow and the run report.

Examples:
    ```py
    facts = {
        "inputs": input_fingerprints(con, ["crm", "shop"]),
        "counts": pipeline_counts(con, ["crm", "shop"], threshold=0.9),
        "partition_sha256": partition_sha256(con),
        "code_version": code_version(Path(".")),
    }
    ```
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    LINKAGE_EVALUATION,
    PAIRWISE_MATCHES,
    SOURCE_DELIVERIES,
)
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

REDACTED = "***"
_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api_?key|credential|private", re.I)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)(?P<password>[^@/\s]+)@")
TRACKED_PACKAGES = ("meld", "splink", "duckdb", "dagster", "mlflow", "pandas", "pyarrow")


def redact_config(value: Any) -> Any:
    """A copy of a config with secrets replaced by ``***``.

    Keys that name a secret (password, secret, token, api key, credential, private)
    lose their value; a password inside a URL (``scheme://user:password@host``) is
    masked. Config values that name an environment variable are kept: they are not
    the secret.

    Examples:
        >>> redact_config({"db": {"password": "hunter2", "url": "pg://u:pw@h/db"}})
        {'db': {'password': '***', 'url': 'pg://u:***@h/db'}}
    """
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if _SECRET_KEY.search(str(key)) and not str(key).endswith("_env")
            else redact_config(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_config(item) for item in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", value)
    return value


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(folder: Path) -> dict[str, Any]:
    """The git commit of ``folder`` (when it is a checkout) and installed versions.

    Returns:
        ``git_commit`` (None outside git), ``git_dirty`` (uncommitted changes to
        tracked files), ``package_version`` (Meld's) and ``packages`` (versions of
        the libraries that decide the result).
    """
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(folder, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    packages: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "package_version": packages["meld"],
        "packages": packages,
    }


def input_fingerprints(
    con: duckdb.DuckDBPyConnection, sources: Sequence[str]
) -> list[dict[str, Any]]:
    """Every delivery the sources' current tables are built from, oldest first.

    One dict per delivery: ``source``, ``delivery_seq``, ``file``, ``size_bytes``,
    ``sha256``, ``rows``, ``loaded_at`` and ``loaded_by_run``.
    """
    if not table_exists(con, SOURCE_DELIVERIES):
        return []
    rows = con.execute(
        "SELECT source_system, delivery_seq, source_file, size_bytes, sha256, rows, "
        f"loaded_at, run_id FROM {quote(SOURCE_DELIVERIES)} "
        "WHERE list_contains($sources, source_system) ORDER BY source_system, delivery_seq",
        {"sources": list(sources)},
    ).fetchall()
    return [
        {
            "source": r[0],
            "delivery_seq": int(r[1]),
            "file": r[2],
            "size_bytes": None if r[3] is None else int(r[3]),
            "sha256": r[4],
            "rows": None if r[5] is None else int(r[5]),
            "loaded_at": None if r[6] is None else r[6].isoformat(),
            "loaded_by_run": r[7],
        }
        for r in rows
    ]


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "", **params: Any) -> int:
    if not table_exists(con, table):
        return 0
    sql = f"SELECT count(*) FROM {quote(table)}" + (f" WHERE {where}" if where else "")
    return int(con.execute(sql, params).fetchall()[0][0])


def pipeline_counts(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[str],
    *,
    threshold: float | None,
    clustering_run_id: str | None,
) -> dict[str, int]:
    """Record, pair, customer and id-change counts of the warehouse as it stands.

    Args:
        con: Warehouse connection.
        sources: The project's source names.
        threshold: Match probability at which pairs link (for ``pairs_above_threshold``).
        clustering_run_id: The run that clustered ``customer_clusters``; its id events
            and record moves are counted.
    """
    counts = {
        "records_in": sum(_count(con, f"raw_{s}") for s in sources),
        "records_staged": sum(_count(con, f"staged_{s}") for s in sources),
        "quarantined": sum(_count(con, f"quarantine_{s}") for s in sources),
        "records_clustered": _count(con, CUSTOMER_CLUSTERS),
        "pairs_scored": _count(con, PAIRWISE_MATCHES),
        "pairs_above_threshold": 0,
        "customers": 0,
        "multi_record_customers": 0,
    }
    if threshold is not None:
        counts["pairs_above_threshold"] = _count(
            con, PAIRWISE_MATCHES, "match_probability >= $t", t=threshold
        )
    if table_exists(con, CUSTOMER_CLUSTERS):
        customers, multi = con.execute(
            "SELECT count(DISTINCT customer_id), "
            "count(DISTINCT customer_id) FILTER (WHERE customer_record_count > 1) "
            f"FROM {CUSTOMER_CLUSTERS}"
        ).fetchall()[0]
        counts["customers"], counts["multi_record_customers"] = int(customers), int(multi)
    events = {"new": 0, "merged": 0, "split": 0, "retired": 0}
    history = CUSTOMER_ID_TABLES.history
    if clustering_run_id is not None and table_exists(con, history):
        for event, n in con.execute(
            f"SELECT event, count(*) FROM {quote(history)} WHERE run_id = ? GROUP BY 1",
            [clustering_run_id],
        ).fetchall():
            events[str(event)] = int(n)
    counts.update(
        created=events["new"],
        merged=events["merged"],
        split=events["split"],
        retired=events["retired"],
        records_moved=_count(
            con, CUSTOMER_ID_TABLES.moves, "run_id = $r", r=clustering_run_id or ""
        ),
    )
    return counts


def partition_sha256(
    con: duckdb.DuckDBPyConnection, clusters_table: str = CUSTOMER_CLUSTERS
) -> str | None:
    """SHA-256 of which records are together, whatever the customers' ids.

    Two clusterings with the same groups of ``unique_id`` have the same hash.
    """
    if not table_exists(con, clusters_table):
        return None
    rows = con.execute(
        "SELECT sha256(coalesce(string_agg(members, '|' ORDER BY members), '')) FROM ("
        "  SELECT string_agg(unique_id, ',' ORDER BY unique_id) AS members "
        f"  FROM {quote(clusters_table)} GROUP BY customer_id)"
    ).fetchall()
    return rows[0][0]


def assignment_sha256(
    con: duckdb.DuckDBPyConnection, clusters_table: str = CUSTOMER_CLUSTERS
) -> str | None:
    """SHA-256 of every record's customer id (changes when an id changes)."""
    if not table_exists(con, clusters_table):
        return None
    rows = con.execute(
        "SELECT sha256(coalesce(string_agg(unique_id || '=' || customer_id, ',' "
        f"ORDER BY unique_id), '')) FROM {quote(clusters_table)}"
    ).fetchall()
    return rows[0][0]


def table_sha256(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> str | None:
    """SHA-256 of a table's content over ``columns``, independent of row order."""
    if not table_exists(con, table):
        return None
    fields = ", ".join(quote(c) for c in columns)
    rows = con.execute(
        "SELECT sha256(coalesce(string_agg(h, '' ORDER BY h), '')) FROM ("
        f"  SELECT md5(CAST(row({fields}) AS VARCHAR)) AS h FROM {quote(table)})"
    ).fetchall()
    return rows[0][0]


def evaluation_metrics(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, float]:
    """The evaluation metrics ``linkage_evaluation`` holds for ``run_id`` (may be empty)."""
    if not table_exists(con, LINKAGE_EVALUATION):
        return {}
    rows = con.execute(
        f"SELECT metric, arg_max(value, evaluated_at) FROM {LINKAGE_EVALUATION} "
        "WHERE dagster_run_id = ? GROUP BY metric ORDER BY metric",
        [run_id],
    ).fetchall()
    return {str(name): float(value) for name, value in rows if value is not None}
