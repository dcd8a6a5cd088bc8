"""Erase a person: every table, every file, re-clustered, recorded without personal data.

:func:`preview_erasure` resolves the subject and counts what would go (rows per table,
files; no values). :func:`apply_erasure` then, in order:

1. writes the steward's CSV files (overrides, labels, truth) without the erased records,
   beside the originals;
2. in one warehouse transaction: deletes (or unlinks) the rows of every table the plan
   finds (:mod:`linkage.privacy.plan`), adds the keyed hashes of each record, e-mail and
   phone to the deny list, re-clusters and re-masters the customers with the pipeline's
   own steps (:mod:`linkage.privacy.rebuild`, reading the new overrides file), checks by
   value that no table still names an erased record, and appends to ``erasure_log``. A
   failure anywhere here changes nothing, and the staged CSV files are discarded;
3. puts the new CSV files in place;
4. removes the person's values from the artifact files and MLflow artifacts the preview
   found (the rebuild writes no file; apply right after the preview, under the same run
   lock, as ``meld erase`` does);
5. appends an ``erased`` row to the hash-chained ledger: erasure id, keyed hash of the
   subject, rows per table, files, who asked and why.

:func:`revoke_erasure` lifts an erasure's deny-list entries (the data stays erased) and
records that too.

Examples:
    ```py
    preview = preview_erasure(con, spec, "cus_04f0b242742c4e75")
    preview.counts                   # {"raw_crm_contacts": 1, "customer_records": 5, ...}
    outcome = apply_erasure(con, spec, preview, requested_by="dpo", reason="ticket 4711")
    revoke_erasure(con, spec, outcome.erasure_id, requested_by="dpo", reason="ticket 4712")
    ```
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import duckdb

from linkage.atomic import transaction
from linkage.audit.ledger import append_run
from linkage.errors import MeldError
from linkage.privacy.contacts import erased_contacts, row_locations
from linkage.privacy.deny_list import add_entries, entry_hashes, remove_entries
from linkage.privacy.erasure_log import (
    ERASED,
    REVOKED,
    ErasureEvent,
    active_erasure,
    log_event,
    set_files,
    set_ledger_seq,
)
from linkage.privacy.files import (
    FileChange,
    StagedRewrite,
    commit_rewrites,
    discard_rewrites,
    files_under,
    purge_files,
    stage_record_files,
)
from linkage.privacy.keyed_hash import KEY_ENV, ErasureKeyError, erasure_key
from linkage.privacy.plan import (
    apply_plan,
    count_rows,
    drop_staged,
    erasure_plan,
    record_references,
    stage_target,
)
from linkage.privacy.rebuild import RebuildOutcome, RebuildSpec, rebuild_customers
from linkage.privacy.spec import ErasureSpec
from linkage.privacy.subject import (
    ErasureTarget,
    Subject,
    SubjectError,
    parse_subject,
    resolve_subject,
)
from linkage.privacy.values import drop_shared_values, erased_values, value_matcher

logger = logging.getLogger(__name__)

ERASURE_ID_PREFIX = "era_"
JOB_NAME = "meld erase"


class ErasureError(MeldError, RuntimeError):
    """An erasure or revoke that cannot start: who or why is missing, or names the
    person being erased."""


@dataclass(frozen=True)
class ErasurePreview:
    """What an erasure would remove: no values, only where and how many."""

    subject: Subject
    target: ErasureTarget
    counts: dict[str, int]
    files: list[FileChange] = field(default_factory=list)
    record_files: list[FileChange] = field(default_factory=list)


@dataclass(frozen=True)
class ErasureOutcome:
    """What an erasure did."""

    erasure_id: str
    counts: dict[str, int]
    deny_entries: int
    rebuild: RebuildOutcome
    files: list[FileChange]
    record_files: list[FileChange]
    leftovers: list[tuple[str, str]]
    ledger_seq: int


def _files(spec: ErasureSpec) -> list:
    return files_under(spec.folders, exclude=spec.inputs) + [
        p for p in spec.warehouse_files if p.is_file()
    ]


def _staged(con: duckdb.DuckDBPyConnection, target: ErasureTarget, **extra: Any) -> None:
    stage_target(con, target, row_locations(con, target), **extra)


def preview_erasure(con: duckdb.DuckDBPyConnection, spec: ErasureSpec, text: str) -> ErasurePreview:
    """Resolve ``text`` and count what an erasure would remove (nothing is changed).

    Raises:
        SubjectError: The subject is not understood, or names nothing.
    """
    subject = parse_subject(text, spec.sources)
    target = resolve_subject(con, subject, contact_columns=spec.contact_columns)
    plan = erasure_plan(con)
    _staged(con, target)
    try:
        counts = count_rows(con, plan)
        matcher = value_matcher(drop_shared_values(con, erased_values(con)))
    finally:
        drop_staged(con)
    return ErasurePreview(
        subject=subject,
        target=target,
        counts=counts,
        files=purge_files(_files(spec), matcher, dry_run=True),
        record_files=[
            item.change
            for item in stage_record_files(spec.record_files, target.unique_ids, dry_run=True)
        ],
    )


def _check_request(requested_by: str, reason: str, subject: Subject, values: set[str]) -> None:
    if not requested_by.strip() or not reason.strip():
        raise ErasureError("an erasure needs --requested-by and --reason (who asked, and why)")
    matcher = value_matcher({*values, *subject.text.split("|")})
    for name, text in (("--requested-by", requested_by), ("--reason", reason)):
        if matcher is not None and matcher.search(text):
            raise ErasureError(
                f"{name} names the person being erased; the ledger keeps it for good, so "
                "give a ticket or case number instead"
            )


@dataclass(frozen=True)
class _Erased:
    """What the warehouse transaction did."""

    counts: dict[str, int]
    denied: int
    rebuild: RebuildOutcome
    leftovers: list[tuple[str, str]]


def _rebuild_spec(spec: ErasureSpec, staged: list[StagedRewrite]) -> RebuildSpec:
    """The rebuild reads the overrides file as it will be after the erasure."""
    overrides = spec.rebuild.clustering.overrides_csv
    for item in staged:
        if overrides is not None and item.path == overrides and item.staged is not None:
            clustering = replace(spec.rebuild.clustering, overrides_csv=item.staged)
            return replace(spec.rebuild, clustering=clustering)
    return spec.rebuild


def _erase_in_warehouse(
    con: duckdb.DuckDBPyConnection,
    spec: ErasureSpec,
    preview: ErasurePreview,
    event: ErasureEvent,
    key: bytes,
) -> tuple[_Erased, set[str], list[StagedRewrite]]:
    """Steps 1 to 4 in one transaction: rows, deny list, log, rebuild, check. Returns
    what was done, the person's values (for the files) and the staged record files."""
    target = preview.target
    placeholders = {
        uid: f"erased:{event.erasure_id}:{n}" for n, uid in enumerate(target.unique_ids, 1)
    }
    plan = erasure_plan(con)
    _staged(con, target, placeholders=placeholders)
    staged: list[StagedRewrite] = []
    try:
        values = drop_shared_values(con, erased_values(con))
        _check_request(event.requested_by, event.reason, preview.subject, values)
        emails, phones = erased_contacts(con, spec.contact_columns)
        entries = entry_hashes(key, records=target.records, emails=emails, phones=phones)
        staged = stage_record_files(spec.record_files, target.unique_ids, dry_run=False)
        with transaction(con):
            counts = apply_plan(con, plan)
            denied = add_entries(con, event.erasure_id, entries, key)
            drop_staged(con)
            rebuild = rebuild_customers(con, _rebuild_spec(spec, staged), run_id=event.erasure_id)
            leftovers = record_references(con, target.unique_ids)
            log_event(con, _with(event, counts=counts, deny_entries=denied))
    except BaseException:
        discard_rewrites(staged)
        raise
    finally:
        drop_staged(con)
    return _Erased(counts, denied, rebuild, leftovers), values, staged


def _with(event: ErasureEvent, **changes: Any) -> ErasureEvent:
    fields = {**event.__dict__, **changes}
    return ErasureEvent(**fields)


def apply_erasure(
    con: duckdb.DuckDBPyConnection,
    spec: ErasureSpec,
    preview: ErasurePreview,
    *,
    requested_by: str,
    reason: str,
) -> ErasureOutcome:
    """Erase the records of ``preview`` (the steps in the module docstring).

    Raises:
        ErasureError: Who or why is missing or names the person.
        Exception: Whatever stopped the warehouse transaction (nothing is changed then).
    """
    started = datetime.now(timezone.utc)
    key = erasure_key(spec.warehouse, create=True)
    if key is None:  # only for a warehouse without a file and no MELD_ERASURE_KEY
        raise ErasureKeyError(f"an erasure needs a key: set {KEY_ENV}")
    erasure_id = ERASURE_ID_PREFIX + secrets.token_hex(8)
    subject = preview.subject
    event = ErasureEvent(
        erasure_id=erasure_id,
        event=ERASED,
        subject_kind=subject.kind,
        subject_hash=subject.keyed_hash(key),
        requested_by=requested_by.strip(),
        reason=reason.strip(),
        recorded_at=started.replace(tzinfo=None),
    )
    erased, values, staged = _erase_in_warehouse(con, spec, preview, event, key)
    record_changes = commit_rewrites(staged)
    for table, column in erased.leftovers:
        logger.error("erasure %s: %s.%s still names an erased record", erasure_id, table, column)
    found = [change.path for change in preview.files if change.path.exists()]
    file_changes = purge_files(found, value_matcher(values), dry_run=False)
    files = len(file_changes) + len(record_changes)
    set_files(con, erasure_id, files)
    logged = _with(event, counts=erased.counts, files=files, deny_entries=erased.denied)
    entry = {**_ledger_entry(logged), **_outcome_facts(erased, started)}
    row = append_run(con, run_id=erasure_id, status=ERASED, entry=entry, head_file=spec.ledger_head)
    set_ledger_seq(con, erasure_id, ERASED, row.seq)
    return ErasureOutcome(
        erasure_id=erasure_id,
        counts=erased.counts,
        deny_entries=erased.denied,
        rebuild=erased.rebuild,
        files=file_changes,
        record_files=record_changes,
        leftovers=erased.leftovers,
        ledger_seq=row.seq,
    )


def _outcome_facts(erased: _Erased, started: datetime) -> dict[str, Any]:
    """The ledger facts only the erasure itself knows: times, ids kept, leftovers."""
    rebuild = erased.rebuild
    return {
        "started_at": started.isoformat(),
        "ended_at": datetime.now(timezone.utc).isoformat(),
        "customers_rebuilt": rebuild.rebuilt,
        "customer_ids": {"kept": rebuild.kept, "retired": rebuild.retired, "split": rebuild.split},
        "leftover_columns": [f"{t}.{c}" for t, c in erased.leftovers],
    }


def _ledger_entry(event: ErasureEvent) -> dict[str, Any]:
    """The ledger's facts of an erasure event: keyed hashes and counts, no values."""
    return {
        "job_name": JOB_NAME if event.event == ERASED else "meld revoke-erasure",
        "kind": "erasure",
        "erasure_id": event.erasure_id,
        "event": event.event,
        "subject_kind": event.subject_kind,
        "subject_hash": event.subject_hash,
        "requested_by": event.requested_by,
        "reason": event.reason,
        "rows_by_table": dict(sorted(event.counts.items())),
        "files": event.files,
        "deny_list_entries": event.deny_entries,
    }


def revoke_erasure(
    con: duckdb.DuckDBPyConnection,
    spec: ErasureSpec,
    erasure_id: str,
    *,
    requested_by: str,
    reason: str,
) -> ErasureEvent:
    """Lift an erasure's deny-list entries, so its records are let in again by later
    deliveries (what was erased stays erased); recorded in the log and the ledger.

    Raises:
        ErasureLogError: No such erasure, or it was revoked already.
        ErasureError: Who or why is missing.
    """
    if not requested_by.strip() or not reason.strip():
        raise ErasureError("a revoke needs --requested-by and --reason (who asked, and why)")
    erased = active_erasure(con, erasure_id)
    now = datetime.now(timezone.utc)
    with transaction(con):
        removed = remove_entries(con, erasure_id)
        event = ErasureEvent(
            erasure_id=erasure_id,
            event=REVOKED,
            subject_kind=erased.subject_kind,
            subject_hash=erased.subject_hash,
            requested_by=requested_by.strip(),
            reason=reason.strip(),
            recorded_at=now.replace(tzinfo=None),
            deny_entries=removed,
        )
        log_event(con, event)
    entry = {**_ledger_entry(event), "started_at": now.isoformat(), "ended_at": now.isoformat()}
    row = append_run(
        con, run_id=erasure_id, status="erasure_revoked", entry=entry, head_file=spec.ledger_head
    )
    set_ledger_seq(con, erasure_id, REVOKED, row.seq)
    logger.info("erasure %s revoked: %d deny-list entries lifted", erasure_id, removed)
    return _with(event, ledger_seq=row.seq)


__all__ = [
    "ErasureError",
    "ErasureOutcome",
    "ErasurePreview",
    "SubjectError",
    "apply_erasure",
    "preview_erasure",
    "revoke_erasure",
]
