"""The project config, ``meld.yaml``, that the demo generator writes next to its data."""

from __future__ import annotations

from linkage.demo.orders import ORDERS_FILE, PRODUCTS_FILE
from linkage.demo.source_plans import SOURCE_FILES, TRUTH_FILE

__all__ = ["project_config"]

_ID_COLUMNS: dict[str, str] = {
    "crm_contacts": "contact_id",
    "webshop_accounts": "account_no",
    "support_tickets": "ticket_contact_id",
    "pos_loyalty": "card_number",
}
"""The record id column of each source."""


def _dob(column: str, fmt: str) -> dict[str, str]:
    return {"column": column, "format": fmt}


def _source_fields() -> dict[str, dict[str, object]]:
    """Meld's fields mapped to each source's columns, sources in config order."""
    return {
        "crm_contacts": {
            "first_name": "given_name",
            "last_name": "family_name",
            "date_of_birth": _dob("birth_date", "%Y-%m-%d"),
            "email": "email_address",
            "phone": "mobile",
            "street": "street",
            "postcode": "zip",
            "city": "town",
            "country": "country_code",
            "customer_number": "contact_id",
            "loyalty_card": "loyalty_card",
        },
        "webshop_accounts": {
            "full_name": "full_name",
            "email": "email",
            "phone": "phone",
            "address": "shipping_address",
            "date_of_birth": _dob("dob", "%d/%m/%Y"),
            "device_id": "device_id",
        },
        "support_tickets": {
            "full_name": "name",
            "email": "contact_email",
            "phone": "contact_phone",
            "country": "country",
            "customer_number": "customer_no",
        },
        "pos_loyalty": {
            "first_name": "first",
            "last_name": "surname",
            "date_of_birth": _dob("born", "%d.%m.%Y"),
            "phone": "phone_no",
            "postcode": "postal_code",
            "city": "city",
            "country": "country",
            "loyalty_card": "card_number",
        },
    }


def project_config() -> dict[str, object]:
    """The ``meld.yaml`` written next to the data, with paths relative to it."""
    sources = {
        name: {
            "path": SOURCE_FILES[name],
            "id_column": _ID_COLUMNS[name],
            "default_country": "SE",
            "fields": fields,
        }
        for name, fields in _source_fields().items()
    }
    return {
        "warehouse": "warehouse.duckdb",
        "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "experiment": "meld-demo"},
        "sources": sources,
        "truth": {
            "path": TRUTH_FILE,
            "source_column": "source",
            "id_column": "record_id",
            "entity_column": "person_id",
        },
        "relationships": {
            "orders": {"path": ORDERS_FILE},
            "products": {"path": PRODUCTS_FILE},
        },
    }
