"""Helpers that read the files the demo generator writes, for the demo tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

FILES = {
    "crm_contacts": "landing/crm_contacts.csv",
    "webshop_accounts": "landing/webshop_accounts.csv",
    "support_tickets": "landing/support_tickets.jsonl",
    "pos_loyalty": "landing/pos_loyalty.parquet",
}
ID_COLUMNS = {
    "crm_contacts": "contact_id",
    "webshop_accounts": "account_no",
    "support_tickets": "ticket_contact_id",
    "pos_loyalty": "card_number",
}
PHONE_COLUMNS = {
    "crm_contacts": "mobile",
    "webshop_accounts": "phone",
    "support_tickets": "contact_phone",
    "pos_loyalty": "phone_no",
}
DOB_COLUMNS = {
    "crm_contacts": ("birth_date", "%Y-%m-%d"),
    "webshop_accounts": ("dob", "%d/%m/%Y"),
    "pos_loyalty": ("born", "%d.%m.%Y"),
}
OTHER_FILES = ("landing/truth.csv", "landing/orders.csv", "landing/products.csv")


def read_source(out: Path, source: str) -> pd.DataFrame:
    """Read a source as written, every value a string and nulls as ""."""
    return read_table(out / FILES[source])


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, JSON lines or Parquet file written by the generator, nulls as ""."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return pd.DataFrame(rows).fillna("")
    return pd.read_parquet(path).fillna("")


def content_digest(out: Path) -> str:
    """SHA-256 of the values of every written table: sources, truth, orders, products.

    Values rather than bytes, so that a new Parquet writer version does not change it;
    ``meld.yaml`` is left out, so that a new config key does not either.
    """
    digest = hashlib.sha256()
    for name in (*FILES.values(), *OTHER_FILES):
        table = read_table(out / name)
        digest.update(table.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return digest.hexdigest()


def owners(out: Path) -> dict[tuple[str, str], str]:
    """The person of each record, by (source, record id), from ``truth.csv``."""
    truth = pd.read_csv(out / "landing/truth.csv", dtype=str, keep_default_na=False)
    keys = zip(truth["source"], truth["record_id"], strict=True)
    return dict(zip(keys, truth["person_id"], strict=True))
