"""Customers over several runs of the real pipeline: ids stay put when records join,
a steward's cannot-link splits a customer, and `meld customer` shows the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from linkage.config import ProjectConfig
from orchestration.build import build_assets, build_resources
from orchestration.cli import main
from tests.projects import demo_sources, write_project_file

pytestmark = pytest.mark.slow

MASTERED = (
    "customer_clusters",
    "golden_customers",
    "customer_households",
    "customer_360",
    "customer_orders",
)


def _run(project: ProjectConfig) -> None:
    result = dg.materialize(build_assets(project), resources=build_resources(project))
    assert result.success


def _rows(project: ProjectConfig, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(project.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def lifecycle(small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run 1 on the demo; run 2 after a CRM delivery adds a record of a known customer;
    run 3 after a steward says two of that customer's records are different people."""
    folder = tmp_path_factory.mktemp("lifecycle")
    landing = folder / "landing"
    shutil.copytree(small_demo / "landing", landing)
    shutil.copy(small_demo / "meld.yaml", folder / "generated.yaml")
    config = demo_sources(folder, "generated.yaml")
    config["sources"]["crm_contacts"]["path"] = str(landing / "crm_contacts*.csv")
    config["overrides"] = {"path": str(folder / "overrides.csv")}
    (folder / "overrides.csv").write_text("record_a,record_b,decision,steward,reason,decided_at\n")
    project = write_project_file(folder, config, mlflow_uri=mlflow_uri, experiment="test-lifecycle")
    _run(project)
    first = dict(_rows(project, "SELECT unique_id, customer_id FROM customer_clusters"))

    # A customer with a CRM record and at least two other records.
    crm = pd.read_csv(landing / "crm_contacts.csv", dtype=str, keep_default_na=False)
    sizes = _rows(
        project,
        "SELECT customer_id, list(unique_id ORDER BY unique_id) FROM customer_clusters "
        "GROUP BY 1 HAVING count(*) >= 3 AND bool_or(unique_id LIKE 'crm_contacts:%') "
        "ORDER BY 1 LIMIT 1",
    )
    customer_id, members = sizes[0]
    crm_member = next(m for m in members if m.startswith("crm_contacts:"))
    copy = crm[crm["contact_id"] == crm_member.split(":", 1)[1]].copy()
    copy["contact_id"] = "C9999999"
    copy["email_address"] = "brand.new.address@example.org"
    copy.to_csv(landing / "crm_contacts_update.csv", index=False)
    _run(project)
    second = dict(_rows(project, "SELECT unique_id, customer_id FROM customer_clusters"))

    others = [m for m in members if m != crm_member]
    assert (
        main(
            [
                "override",
                "cannot-link",
                crm_member,
                others[0],
                "--steward",
                "test-steward",
                "--reason",
                "different people",
                "--config",
                str(project.config_path),
            ]
        )
        == 0
    )
    _run(project)
    third = dict(_rows(project, "SELECT unique_id, customer_id FROM customer_clusters"))
    return {
        "project": project,
        "runs": (first, second, third),
        "customer_id": customer_id,
        "members": members,
        "crm_member": crm_member,
        "other": others[0],
    }


def test_a_record_joining_a_customer_keeps_its_id(lifecycle) -> None:
    first, second, _ = lifecycle["runs"]
    assert second["crm_contacts:C9999999"] == lifecycle["customer_id"]
    kept = sum(second.get(uid) == cid for uid, cid in first.items())
    assert kept / len(first) > 0.97, "ids must stay put when nothing about them changed"


def test_cannot_link_splits_and_history_records_it(lifecycle) -> None:
    _, second, third = lifecycle["runs"]
    project = lifecycle["project"]
    assert third[lifecycle["crm_member"]] != third[lifecycle["other"]]
    # The larger part keeps the id; the split-off part gets a new one.
    kept_id = lifecycle["customer_id"]
    part_sizes = pd.Series(third).loc[[*lifecycle["members"], "crm_contacts:C9999999"]]
    largest = part_sizes.value_counts().idxmax()
    assert largest == kept_id
    events = _rows(
        project,
        "SELECT event, related_id FROM customer_id_history WHERE run_id = "
        "(SELECT max_by(run_id, event_at) FROM customer_id_history) AND event = 'split'",
    )
    assert ("split", kept_id) in events
    ids_ever = [row[0] for row in _rows(project, "SELECT id FROM customer_ids")]
    assert len(ids_ever) == len(set(ids_ever)), "ids are never reused"
    refused = _rows(project, "SELECT reason FROM refused_links")
    assert refused and {r[0] for r in refused} == {"cannot_link"}


def test_every_record_is_a_customer_or_quarantined_after_three_runs(lifecycle) -> None:
    project = lifecycle["project"]
    raw = sum(_rows(project, f'SELECT count(*) FROM "raw_{s}"')[0][0] for s in project.sources)
    clustered = _rows(project, "SELECT count(*) FROM customer_clusters")[0][0]
    quarantined = _rows(project, "SELECT count(*) FROM quarantined_records")[0][0]
    assert raw == clustered + quarantined


def test_meld_customer_finds_by_new_email_and_masks(lifecycle, capsys) -> None:
    project = lifecycle["project"]
    config = str(project.config_path)
    steward = ["--config", config, "--role", "steward"]
    assert main(["customer", "Brand.New.Address@example.org", *steward]) == 0
    shown = capsys.readouterr().out
    assert "brand.new.address@example.org" in shown and "crm_contacts:C9999999" in shown
    assert main(["customer", "brand.new.address@example.org", *steward, "--mask"]) == 0
    masked = capsys.readouterr().out
    assert "brand.new.address" not in masked and "C9999999" not in masked
    assert main(["customer", lifecycle["customer_id"], "--json", "--config", config]) == 0
    profile = json.loads(capsys.readouterr().out)[0]
    assert profile["customer_id"] == lifecycle["customer_id"]
    assert profile["golden"]["record_count"] == len(profile["records"])
    assert {"household_id", "order_count", "last_interaction_at"} <= set(profile["golden"])
    assert main(["customer", "nobody@nowhere.example", "--config", config]) == 1


def test_orders_reach_customers_and_households(lifecycle) -> None:
    project = lifecycle["project"]
    attributed, total = _rows(project, "SELECT count(customer_id), count(*) FROM customer_orders")[
        0
    ]
    assert total > 0 and attributed / total > 0.95
    for table in MASTERED:
        assert _rows(project, f"SELECT count(*) FROM {table}")[0][0] > 0
    value = _rows(
        project,
        "SELECT (SELECT sum(order_value) FROM customer_360), "
        "(SELECT sum(amount) FROM customer_orders WHERE customer_id IS NOT NULL)",
    )[0]
    assert value[0] == value[1]
