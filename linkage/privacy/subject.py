"""Who an erasure is about: the subject a steward types, and the records it names.

A subject is a customer id (all its member records), a source record
``<source>:<record id>`` (that record), an e-mail or a phone number (every record,
current or older version, whose standardised e-mail or phone matches, including rows
that were quarantined for having no id). Nothing is expanded further: erasing one
record of a customer leaves its other records, and the customer is re-clustered.

Examples:
    ```py
    subject = parse_subject("anna.berg@example.com", sources=["crm", "shop"])
    target = resolve_subject(con, subject, contact_columns={"crm": {"email": "mail"}})
    target.unique_ids, target.customers
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES
from linkage.errors import MeldError
from linkage.privacy.keyed_hash import email_form, keyed_hash, looks_like_phone, phone_forms
from linkage.tables import CUSTOMER_CLUSTERS, CUSTOMER_RECORDS, raw_history_table, raw_table
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)

CUSTOMER, RECORD, EMAIL, PHONE = "customer", "record", "email", "phone"
_DIGITS_SQL = "regexp_replace({col}, '[^0-9]', '', 'g')"


class SubjectError(MeldError, LookupError):
    """The subject is not one Meld can resolve, or names no record; the message never
    repeats the value."""


@dataclass(frozen=True)
class Subject:
    """What a steward asked to erase, in the form it is matched and hashed in.

    Attributes:
        kind: ``customer``, ``record``, ``email`` or ``phone``.
        text: The canonical form (customer id, ``source:id``, standardised e-mail, or
            the phone's digit forms joined by ``|``); kept in memory only.
    """

    kind: str
    text: str

    def keyed_hash(self, key: bytes) -> str:
        """The subject's keyed hash, the only trace of it the ledger keeps."""
        return keyed_hash(key, f"subject:{self.kind}", self.text)

    def describe(self) -> str:
        """The subject without its value: its kind (a customer id is shown; it is
        Meld's own pseudonym)."""
        return f"customer {self.text}" if self.kind == CUSTOMER else f"the {self.kind} given"


@dataclass(frozen=True)
class ErasureTarget:
    """The source records (and id-less raw rows) an erasure removes.

    Attributes:
        records: ``(source, record id)`` of each erased record.
        raw_rows: ``(source, raw_row_id)`` of erased raw rows that have no record id.
        customers: Customers (in ``customer_clusters``) holding an erased record.
    """

    records: frozenset[tuple[str, str]]
    raw_rows: frozenset[tuple[str, int]] = frozenset()
    customers: frozenset[str] = frozenset()

    @property
    def unique_ids(self) -> list[str]:
        """``<source>:<record id>`` of each erased record, sorted."""
        return sorted(f"{source}:{record}" for source, record in self.records)

    @property
    def raw_row_keys(self) -> list[str]:
        """``<source>:<raw_row_id>`` of each erased id-less row, sorted."""
        return sorted(f"{source}:{row}" for source, row in self.raw_rows)

    @property
    def empty(self) -> bool:
        return not self.records and not self.raw_rows


def parse_subject(text: str, sources: Sequence[str]) -> Subject:
    """Tell which kind of subject ``text`` is.

    Examples:
        >>> parse_subject("cus_04f0b242742c4e75", ["crm"]).kind
        'customer'
        >>> parse_subject("crm:C17", ["crm"])
        Subject(kind='record', text='crm:C17')
        >>> parse_subject(" Anna@Example.com", ["crm"]).text
        'anna@example.com'
        >>> parse_subject("+46 70-123 45 67", ["crm"])
        Subject(kind='phone', text='46701234567|701234567')

    Raises:
        SubjectError: ``text`` is none of the four kinds.
    """
    value = text.strip()
    source, sep, record = value.partition(":")
    if value.startswith(CUSTOMER_ID_TABLES.prefix) and " " not in value:
        return Subject(CUSTOMER, value)
    if sep and source in sources and record.strip():
        return Subject(RECORD, f"{source}:{record.strip()}")
    if "@" in value:
        form = email_form(value)
        if form:
            return Subject(EMAIL, form)
    if looks_like_phone(value):
        return Subject(PHONE, "|".join(sorted(phone_forms(value))))
    raise SubjectError(
        "the subject is not a customer id (cus_...), a source record (<source>:<record id>, "
        f"sources {sorted(sources)}), an e-mail address or a phone number"
    )


def _customers_of(con: duckdb.DuckDBPyConnection, unique_ids: Sequence[str]) -> frozenset[str]:
    if not unique_ids or not table_exists(con, CUSTOMER_CLUSTERS):
        return frozenset()
    rows = con.execute(
        f"SELECT DISTINCT customer_id FROM {quote(CUSTOMER_CLUSTERS)} "
        "WHERE list_contains($ids, unique_id)",
        {"ids": list(unique_ids)},
    ).fetchall()
    return frozenset(row[0] for row in rows)


def _record_exists(con: duckdb.DuckDBPyConnection, source: str, record: str) -> bool:
    for table in (raw_history_table(source), raw_table(source), CUSTOMER_RECORDS):
        if table_exists(con, table) and "source_record_id" in table_columns(con, table):
            found = con.execute(
                f"SELECT count(*) FROM {quote(table)} "
                "WHERE source_system = ? AND source_record_id = ?",
                [source, record],
            ).fetchall()[0][0]
            if found:
                return True
    return False


def _raw_tables(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return [t for t in (raw_history_table(source), raw_table(source)) if table_exists(con, t)]


def _prefilter(kind: str, col: str) -> str:
    """SQL that keeps the rows that may match ``$forms`` (checked again in Python)."""
    if kind == EMAIL:
        return f"len(list_filter($forms, lambda f: contains(lower({col}), f))) > 0"
    digits = _DIGITS_SQL.format(col=col)
    return f"list_contains(list_transform($forms, lambda f: right(f, 7)), right({digits}, 7))"


def _contact_matches(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    forms: set[str],
    contact_columns: Mapping[str, Mapping[str, str]],
) -> tuple[set[tuple[str, str]], set[tuple[str, int]]]:
    """Raw rows (every version) whose e-mail or phone column has one of ``forms``."""
    records: set[tuple[str, str]] = set()
    raw_rows: set[tuple[str, int]] = set()
    for source, columns in contact_columns.items():
        column = columns.get(kind)
        for table in _raw_tables(con, source) if column else []:
            if column not in table_columns(con, table):
                continue
            col = quote(column)
            rows = con.execute(
                f"SELECT source_record_id, raw_row_id, {col} FROM {quote(table)} "
                f"WHERE {col} IS NOT NULL AND {_prefilter(kind, col)}",
                {"forms": sorted(forms)},
            ).fetchall()
            for record, raw_row_id, value in rows:
                found = {email_form(value)} if kind == EMAIL else phone_forms(value)
                if not found & forms:
                    continue
                if record is None:
                    raw_rows.add((source, int(raw_row_id)))
                else:
                    records.add((source, record))
    return records, raw_rows


def _standardised_matches(
    con: duckdb.DuckDBPyConnection, kind: str, forms: set[str]
) -> tuple[set[tuple[str, str]], set[str]]:
    """Records whose standardised e-mail or phone matches, and their forms (a national
    number given finds the E.164 form on the record, which then finds raw rows)."""
    if not table_exists(con, CUSTOMER_RECORDS):
        return set(), set()
    columns = ["email"] if kind == EMAIL else ["phone", "phone_national"]
    present = [c for c in columns if c in table_columns(con, CUSTOMER_RECORDS)]
    if not present:
        return set(), set()
    select = ", ".join(quote(c) for c in present)
    rows = con.execute(
        f"SELECT source_system, source_record_id, {select} FROM {quote(CUSTOMER_RECORDS)} "
        "WHERE "
        + " OR ".join(
            f"list_contains($forms, {_DIGITS_SQL.format(col=quote(c))})"
            if kind == PHONE
            else f"list_contains($forms, {quote(c)})"
            for c in present
        ),
        {"forms": sorted(forms)},
    ).fetchall()
    found_forms: set[str] = set()
    for row in rows:
        for value in row[2:]:
            found_forms |= phone_forms(value) if kind == PHONE else {value} if value else set()
    return {(row[0], row[1]) for row in rows}, found_forms


def resolve_subject(
    con: duckdb.DuckDBPyConnection,
    subject: Subject,
    *,
    contact_columns: Mapping[str, Mapping[str, str]],
) -> ErasureTarget:
    """The records ``subject`` names in the warehouse.

    Args:
        con: Warehouse connection.
        subject: From :func:`parse_subject`.
        contact_columns: Per source, the raw column of ``email`` and of ``phone``.

    Raises:
        SubjectError: Nothing in the warehouse matches.
    """
    records: set[tuple[str, str]] = set()
    raw_rows: set[tuple[str, int]] = set()
    if subject.kind == CUSTOMER:
        if table_exists(con, CUSTOMER_CLUSTERS):
            records = {
                (row[0], row[1])
                for row in con.execute(
                    f"SELECT source_system, source_record_id FROM {quote(CUSTOMER_CLUSTERS)} "
                    "WHERE customer_id = ?",
                    [subject.text],
                ).fetchall()
            }
    elif subject.kind == RECORD:
        source, _, record = subject.text.partition(":")
        if _record_exists(con, source, record):
            records = {(source, record)}
    else:
        forms = set(subject.text.split("|"))
        records, found = _standardised_matches(con, subject.kind, forms)
        more, raw_rows = _contact_matches(con, subject.kind, forms | found, contact_columns)
        records |= more
    target = ErasureTarget(frozenset(records), frozenset(raw_rows))
    if target.empty:
        raise SubjectError(f"nothing in the warehouse matches {subject.describe()}")
    unique_ids = target.unique_ids
    return ErasureTarget(target.records, target.raw_rows, _customers_of(con, unique_ids))
