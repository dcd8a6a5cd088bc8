"""The run report's sections about the run itself: header, run facts, inputs, config.

They read only the run's ledger entry (and the previous run's, for the inputs).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from typing import Any

import yaml

from linkage.audit.run_report.formatting import NA, nested_get, run_duration
from linkage.audit.run_report.markup import Html, cell, html_table, mono, note

logger = logging.getLogger(__name__)

OPTIONAL_RUN_FIELDS: dict[str, str] = {
    "failed_step": "Failed step",
    "clustering_run_id": "Clustering run (customer ids)",
    "model_trained_by_run": "Model trained by run",
    "scoring_input_sha256": "Scoring input sha256",
    "assignment_sha256": "Assignment sha256",
}
"""Ledger keys shown in the run table when the entry has them."""


def header(entry: Mapping[str, Any]) -> Html:
    """The page header: status badge, run, job, model, and the error of a failed run."""
    status = entry.get("status") or "unknown"
    css = status if status in ("succeeded", "failed") else ""
    error = entry.get("error")
    parts = [
        "<header>",
        f'<h1>Meld run report <span class="badge {html.escape(css)}">'
        f"{html.escape(str(status))}</span></h1>",
        f'<div class="subtitle">Dagster run {mono(entry.get("dagster_run_id"))} · job '
        f"{cell(entry.get('job_name'))} · started {cell(entry.get('started_at'))} · "
        f"model {cell(entry.get('model_name'))} version {cell(entry.get('model_version'))}"
        "</div>",
        "</header>",
    ]
    if status == "failed" or error:
        step = entry.get("failed_step")
        where = f" in step {cell(step)}" if step else ""
        parts.append(f'<h3>Error{where}</h3><pre class="error">{cell(error)}</pre>')
    return Html("".join(parts))


def run_section(entry: Mapping[str, Any]) -> Html:
    """The run's ids, times, model and code and config versions."""
    rows = [
        ("Dagster run", mono(entry.get("dagster_run_id"))),
        ("Job", entry.get("job_name")),
        ("Status", entry.get("status")),
        ("Started", entry.get("started_at")),
        ("Ended", entry.get("ended_at")),
        ("Duration", run_duration(entry)),
        ("MLflow run", mono(entry.get("mlflow_run_id"))),
        ("Model", entry.get("model_name")),
        ("Model version", entry.get("model_version")),
        ("Model alias", entry.get("model_alias")),
        ("MLflow run of the model", mono(entry.get("model_mlflow_run_id"))),
        ("Git commit", mono(nested_get(entry, "code_version", "git_commit"))),
        ("Package version", nested_get(entry, "code_version", "package_version")),
        ("Config sha256", mono(entry.get("config_sha256"))),
        ("Partition sha256", mono(entry.get("partition_sha256"))),
    ]
    rows += [
        (label, mono(entry[key]))
        for key, label in OPTIONAL_RUN_FIELDS.items()
        if entry.get(key) is not None
    ]
    return html_table(["", "value"], rows, table_id="run")


def inputs_section(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Html:
    """The input files of the run, each marked same, changed or new against the previous."""
    inputs = entry.get("inputs") or []
    if not inputs:
        return note("The ledger lists no input files for this run.")
    before = {
        (item.get("source"), item.get("file")): item.get("sha256")
        for item in (previous or {}).get("inputs") or []
        if isinstance(item, Mapping)
    }
    before_sources = {source for source, _ in before}

    def versus_previous(item: Mapping[str, Any]) -> str:
        if previous is None:
            return NA
        key = (item.get("source"), item.get("file"))
        if key in before:
            return "same" if before[key] == item.get("sha256") else "changed"
        return "new file" if item.get("source") in before_sources else "new source"

    rows = [
        (
            item.get("source"),
            mono(item.get("file")),
            item.get("delivery_seq"),
            item.get("rows"),
            item.get("size_bytes"),
            mono(item.get("sha256")),
            versus_previous(item),
        )
        for item in inputs
        if isinstance(item, Mapping)
    ]
    return html_table(
        ["source", "file", "delivery", "rows", "bytes", "sha256", "vs previous run"],
        rows,
        table_id="inputs",
    )


def config_section(entry: Mapping[str, Any]) -> Html:
    """The effective configuration (secrets removed) as YAML, folded away."""
    config = entry.get("config")
    if not config:
        return note("The ledger holds no effective config for this run.")
    plain = json.loads(json.dumps(config, default=str))
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    return Html(
        f"<details><summary>Effective configuration (sha256 "
        f"{cell(entry.get('config_sha256'))}), secrets removed</summary>"
        f"<pre>{html.escape(text)}</pre></details>"
    )
