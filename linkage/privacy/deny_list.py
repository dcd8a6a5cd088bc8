"""The erasure deny list: keyed hashes of erased records, refused on later deliveries.

``erasure_deny_list`` holds, for each erasure, the keyed hash (see
:mod:`linkage.privacy.keyed_hash`) of every erased record's ``(source, record id)``,
e-mail and phone forms; never a value. Ingestion calls :func:`refuse_erased_rows` on
each new delivery before anything is written: a row whose record id, e-mail or phone
hashes to an entry is dropped (not staged, not quarantined with its values), and only
the count is kept, per delivery, in ``erasure_refusals`` (``refused_by_erasure``) and in
the log. Revoking an erasure deletes its entries, so the records are let in again.

A row is refused when any of the three matches, so a source that re-keys a person
(a new account with the same e-mail) is refused too; a record of someone else that
shares the erased phone number (a family landline) is refused as well, and counted.

Examples:
    ```py
    add_entries(con, "era_1f2e", [("record", h1), ("email", h2)], key)
    refusals = refuse_erased_rows(con, pending, source_system="crm", id_column="id",
                                  mapped_columns={"fields.email": "email"})
    record_refusals(con, "crm", refusals, run_id="r1")
    remove_entries(con, "era_1f2e")
    ```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.ingest.raw_tables import PendingDelivery
from linkage.ingest.readers.delivery import Delivery
from linkage.privacy.keyed_hash import (
    KEY_ENV,
    ErasureKeyError,
    email_form,
    erasure_key,
    key_file,
    key_id,
    keyed_hash,
    phone_forms,
    record_hash,
)
from linkage.tables import ERASURE_DENY_LIST, ERASURE_REFUSALS
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

RECORD, EMAIL, PHONE = "record", "email", "phone"
KINDS = (RECORD, EMAIL, PHONE)
EMAIL_FIELD, PHONE_FIELD = "fields.email", "fields.phone"
"""Keys of the e-mail and phone columns in a source's mapped columns."""

_DENY_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(ERASURE_DENY_LIST)} ("
    "erasure_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, key_hash VARCHAR NOT NULL, "
    "key_id VARCHAR NOT NULL, added_at TIMESTAMP NOT NULL)"
)
_REFUSALS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(ERASURE_REFUSALS)} ("
    "source_system VARCHAR NOT NULL, source_file VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, "
    "refused_by_erasure BIGINT NOT NULL, refused_at TIMESTAMP NOT NULL, run_id VARCHAR)"
)
_TOKENS = re.compile(r"""[,;\t|"'\s<>()\[\]{}]+""")


@dataclass(frozen=True)
class Refusal:
    """Rows of one delivery refused because they match the deny list."""

    source_file: str
    sha256: str
    rows: int


def ensure_deny_list(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``erasure_deny_list`` and ``erasure_refusals`` when missing."""
    con.execute(_DENY_DDL)
    con.execute(_REFUSALS_DDL)


def entry_hashes(
    key: bytes,
    *,
    records: Iterable[tuple[str, str]],
    emails: Iterable[str],
    phones: Iterable[str],
) -> set[tuple[str, str]]:
    """(kind, keyed hash) of each record, e-mail and phone form, for :func:`add_entries`.

    Examples:
        >>> sorted({kind for kind, _ in entry_hashes(
        ...     b"k" * 32, records=[("crm", "7")], emails=["A@x.se"], phones=["+4670123456"])})
        ['email', 'phone', 'record']
    """
    found = {(RECORD, record_hash(key, source, record)) for source, record in records}
    found |= {(EMAIL, keyed_hash(key, EMAIL, form)) for e in emails if (form := email_form(e))}
    found |= {(PHONE, keyed_hash(key, PHONE, form)) for p in phones for form in phone_forms(p)}
    return found


def add_entries(
    con: duckdb.DuckDBPyConnection,
    erasure_id: str,
    entries: Iterable[tuple[str, str]],
    key: bytes,
) -> int:
    """Add (kind, keyed hash) entries for an erasure; returns how many were added."""
    ensure_deny_list(con)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [[erasure_id, kind, digest, key_id(key), now] for kind, digest in sorted(set(entries))]
    if rows:
        con.executemany(f"INSERT INTO {quote(ERASURE_DENY_LIST)} VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def remove_entries(con: duckdb.DuckDBPyConnection, erasure_id: str) -> int:
    """Delete an erasure's entries (a revoke); returns how many were removed."""
    if not table_exists(con, ERASURE_DENY_LIST):
        return 0
    rows = con.execute(
        f"DELETE FROM {quote(ERASURE_DENY_LIST)} WHERE erasure_id = ? RETURNING 1", [erasure_id]
    ).fetchall()
    return len(rows)


def _deny_entries(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, set[str]], set[str]]:
    if not table_exists(con, ERASURE_DENY_LIST):
        return {}, set()
    rows = con.execute(f"SELECT kind, key_hash, key_id FROM {quote(ERASURE_DENY_LIST)}").fetchall()
    entries: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for kind, digest, _ in rows:
        entries.setdefault(kind, set()).add(digest)
    return (entries if rows else {}), {row[2] for row in rows}


def _database_file(con: duckdb.DuckDBPyConnection) -> Path | None:
    rows = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return Path(rows[0][0]) if rows and rows[0][0] else None


def _checked_key(con: duckdb.DuckDBPyConnection, key_ids: set[str]) -> bytes:
    """The key the deny list was made with; an error when it is missing or another."""
    warehouse = _database_file(con)
    key = erasure_key(warehouse, create=False)
    where = f"{KEY_ENV} or {key_file(warehouse)}" if warehouse else KEY_ENV
    if key is None:
        raise ErasureKeyError(
            f"the erasure deny list has entries but its key is missing ({where}); restore "
            "the key from the backup: without it erased records cannot be refused"
        )
    if key_ids != {key_id(key)}:
        raise ErasureKeyError(
            f"the erasure key ({where}) is not the one the deny list was made with; "
            "restore the original key: with another, erased records would be let in"
        )
    return key


def _column(table: pa.Table, name: str | None) -> list[str | None] | None:
    if name is None or name not in table.column_names:
        return None
    return table.column(name).to_pylist()


class _Matcher:
    """Tests one row's record id, e-mail, phone (or a malformed row's text) against the
    deny list."""

    def __init__(self, key: bytes, entries: Mapping[str, set[str]], source_system: str) -> None:
        self.key, self.entries, self.source = key, entries, source_system

    def record(self, value: str | None) -> bool:
        if value is None or not value.strip():
            return False
        return record_hash(self.key, self.source, value) in self.entries[RECORD]

    def email(self, value: str | None) -> bool:
        form = email_form(value)
        return form is not None and keyed_hash(self.key, EMAIL, form) in self.entries[EMAIL]

    def phone(self, value: str | None) -> bool:
        return any(
            keyed_hash(self.key, PHONE, form) in self.entries[PHONE] for form in phone_forms(value)
        )

    def text(self, value: str | None) -> bool:
        """A malformed row keeps only its raw text: test each of its tokens."""
        tokens = [t for t in _TOKENS.split(value or "") if t]
        return any(self.record(t) or self.email(t) or self.phone(t) for t in tokens)


def _keep_mask(
    delivery: Delivery, matcher: _Matcher, id_column: str, mapped_columns: Mapping[str, str]
) -> list[bool]:
    table = delivery.table
    n = table.num_rows
    ids = _column(table, id_column) or [None] * n
    emails = _column(table, mapped_columns.get(EMAIL_FIELD)) or [None] * n
    phones = _column(table, mapped_columns.get(PHONE_FIELD)) or [None] * n
    details = delivery.problem_details
    keep = []
    for i in range(n):
        refused = (
            matcher.record(ids[i])
            or matcher.email(emails[i])
            or matcher.phone(phones[i])
            or (delivery.problems[i] is not None and matcher.text(details[i]))
        )
        keep.append(not refused)
    return keep


def _filtered(delivery: Delivery, keep: Sequence[bool]) -> Delivery:
    """The delivery without the refused rows (every per-row list filtered alike)."""
    n = delivery.table.num_rows
    changes: dict[str, object] = {"table": delivery.table.filter(pa.array(keep, pa.bool_()))}
    for item in fields(delivery):
        value = getattr(delivery, item.name)
        if isinstance(value, list) and len(value) == n:
            changes[item.name] = [v for v, k in zip(value, keep, strict=True) if k]
    return replace(delivery, **changes)


def refuse_erased_rows(
    con: duckdb.DuckDBPyConnection,
    pending: Sequence[PendingDelivery],
    *,
    source_system: str,
    id_column: str,
    mapped_columns: Mapping[str, str],
) -> list[Refusal]:
    """Drop the rows of each new delivery that match the deny list, before they are
    written; nothing happens (and no key is needed) while the deny list is empty.

    Args:
        con: Warehouse connection.
        pending: The new deliveries, read and checked; refused rows are removed in place.
        source_system: The source's name.
        id_column: The column holding each record's id.
        mapped_columns: Config key to source column (``fields.email``, ``fields.phone``).

    Returns:
        One :class:`Refusal` per delivery that had rows refused.

    Raises:
        ErasureKeyError: The deny list has entries but the key is missing or another.
    """
    entries, key_ids = _deny_entries(con)
    if not entries:
        return []
    matcher = _Matcher(_checked_key(con, key_ids), entries, source_system)
    refusals = []
    for item in pending:
        keep = _keep_mask(item.delivery, matcher, id_column, mapped_columns)
        refused = keep.count(False)
        if not refused:
            continue
        item.delivery = _filtered(item.delivery, keep)
        refusals.append(Refusal(str(item.path), item.sha256, refused))
        logger.warning(
            "source %s, file %s: %d row(s) refused: they match the erasure deny list",
            source_system,
            item.path.name,
            refused,
        )
    return refusals


def record_refusals(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    refusals: Sequence[Refusal],
    *,
    run_id: str | None,
) -> int:
    """Append the refused-row counts of the deliveries just written; returns the total."""
    if not refusals:
        return 0
    ensure_deny_list(con)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.executemany(
        f"INSERT INTO {quote(ERASURE_REFUSALS)} VALUES (?, ?, ?, ?, ?, ?)",
        [[source_system, r.source_file, r.sha256, r.rows, now, run_id] for r in refusals],
    )
    return sum(r.rows for r in refusals)


def unlink_denied_records(
    con: duckdb.DuckDBPyConnection, table: str, *, source_column: str, record_column: str
) -> int:
    """Set ``record_column`` to NULL in the rows of ``table`` that point at a denied
    record (an order whose buyer was erased keeps its amount, not its buyer); call it
    right after loading related data. Returns the rows unlinked.

    Raises:
        ErasureKeyError: The deny list has entries but the key is missing or another.
    """
    entries, key_ids = _deny_entries(con)
    if not entries or not entries[RECORD]:
        return 0
    key = _checked_key(con, key_ids)
    pairs = con.execute(
        f"SELECT DISTINCT {quote(source_column)}, {quote(record_column)} FROM {quote(table)} "
        f"WHERE {quote(record_column)} IS NOT NULL"
    ).fetchall()
    denied = [
        [source, record]
        for source, record in pairs
        if source and record_hash(key, str(source), str(record)) in entries[RECORD]
    ]
    if not denied:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE __meld_denied_links (s VARCHAR, r VARCHAR)")
    con.executemany("INSERT INTO temp.main.__meld_denied_links VALUES (?, ?)", denied)
    name, source, record = quote(table), quote(source_column), quote(record_column)
    rows = con.execute(
        f"UPDATE {name} SET {record} = NULL FROM temp.main.__meld_denied_links AS d "
        f"WHERE {name}.{source} = d.s AND {name}.{record} = d.r RETURNING 1"
    ).fetchall()
    con.execute("DROP TABLE IF EXISTS temp.main.__meld_denied_links")
    logger.info("%s: %d row(s) unlinked from erased records", table, len(rows))
    return len(rows)
