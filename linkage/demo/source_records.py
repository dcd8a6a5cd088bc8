"""The records of each demo source system, and the ground truth of who they belong to.

Persons are allocated records per source, the records are built with the source's
own columns and noise, and a few values and rows are then spoiled the way real
systems are: missing values, empty ids and rows with no identifying field at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.demo.country_tables import COUNTRIES
from linkage.demo.knobs import (
    P_ADDRESS_WITH_COUNTRY,
    P_COUNTRY_AS_NAME,
    P_DUPLICATE_ACCOUNT_NEW_EMAIL,
    P_FIRST_NAME_ONLY,
    P_UNUSABLE,
    Profile,
)
from linkage.demo.noise import surface_noise
from linkage.demo.record_errors import sparse_rows
from linkage.demo.record_fields import (
    Draws,
    full_names,
    record_addresses,
    record_countries,
    record_dobs,
    record_emails,
    record_names,
    record_phones,
)
from linkage.demo.sampling import mask, object_array, unique_ints
from linkage.demo.source_plans import SOURCE_PLANS, SourcePlan

__all__ = ["Source", "build_source", "record_counts"]


def _crm_contacts(d: Draws) -> dict[str, np.ndarray]:
    """CRM contacts; ``loyalty_card`` is added later, by :mod:`linkage.demo.identifiers`."""
    first, last = record_names(d)
    address = record_addresses(d)
    return {
        "contact_id": object_array(f"C{i + 1:07d}" for i in range(d.size)),
        "given_name": surface_noise(first, d.rng, d.plan.noise),
        "family_name": surface_noise(last, d.rng, d.plan.noise),
        "birth_date": record_dobs(d, "{y:04d}-{m:02d}-{d:02d}"),
        "email_address": record_emails(d),
        "mobile": record_phones(d),
        "street": surface_noise(address.street_line, d.rng, d.plan.noise),
        "zip": address.postcode,
        "town": surface_noise(address.city, d.rng, d.plan.noise),
        "country_code": record_countries(d, 0.0),
    }


def _webshop_line(street: str, postcode: str, city: str, code: str) -> str:
    if code == "GB":
        return f"{street}, {city} {postcode}"
    return f"{street}, {postcode} {city}"


def _webshop_accounts(d: Draws) -> dict[str, np.ndarray]:
    first, last = record_names(d)
    duplicate_new_email = (d.occurrence > 0) & mask(d.rng, d.size, P_DUPLICATE_ACCOUNT_NEW_EMAIL)
    address = record_addresses(d)
    country = d.column("country")
    with_country = mask(d.rng, d.size, P_ADDRESS_WITH_COUNTRY).tolist()
    lines = [
        _webshop_line(s, p, c, code) + (f", {COUNTRIES[code].names[0]}" if w else "")
        for s, p, c, code, w in zip(
            address.street_line, address.postcode, address.city, country, with_country, strict=True
        )
    ]
    ids = unique_ints(d.rng, d.size, 16**10)
    return {
        "account_no": object_array(f"WS-{v:010x}" for v in ids.tolist()),
        "full_name": full_names(d, first, last, p_reversed=0.2, p_title=0.08),
        "email": record_emails(d, duplicate_new_email),
        "phone": record_phones(d),
        "shipping_address": surface_noise(object_array(lines), d.rng, d.plan.noise * 0.5),
        "dob": record_dobs(d, "{d:02d}/{m:02d}/{y:04d}"),
    }


def _support_tickets(d: Draws) -> dict[str, np.ndarray]:
    first, last = record_names(d)
    full = full_names(d, first, last, p_reversed=0.05, p_title=0.0)
    first_only = mask(d.rng, d.size, P_FIRST_NAME_ONLY)
    full[first_only] = first[first_only]
    ids = unique_ints(d.rng, d.size, 10**8)
    return {
        "ticket_contact_id": object_array(f"TC{v:08d}" for v in ids.tolist()),
        "name": full,
        "contact_email": record_emails(d),
        "contact_phone": record_phones(d),
        "country": record_countries(d, P_COUNTRY_AS_NAME),
    }


def _pos_loyalty(d: Draws) -> dict[str, np.ndarray]:
    first, last = record_names(d)
    address = record_addresses(d)
    ids = unique_ints(d.rng, d.size, 10**12)
    return {
        "card_number": object_array(f"6{v:012d}" for v in ids.tolist()),
        "first": surface_noise(first, d.rng, d.plan.noise),
        "surname": surface_noise(last, d.rng, d.plan.noise),
        "born": record_dobs(d, "{d:02d}.{m:02d}.{y:04d}"),
        "phone_no": record_phones(d),
        "postal_code": address.postcode,
        "city": surface_noise(address.city, d.rng, d.plan.noise),
        "country": record_countries(d, P_COUNTRY_AS_NAME),
    }


_SOURCE_BUILDERS: dict[str, Callable[[Draws], dict[str, np.ndarray]]] = {
    "crm_contacts": _crm_contacts,
    "webshop_accounts": _webshop_accounts,
    "support_tickets": _support_tickets,
    "pos_loyalty": _pos_loyalty,
}


def record_counts(rng: np.random.Generator, persons: int) -> dict[str, np.ndarray]:
    """Records per person and source; everyone has at least one record somewhere."""
    counts = {}
    for name, plan in SOURCE_PLANS.items():
        present = mask(rng, persons, plan.p_present)
        extra = np.minimum(rng.geometric(1 - plan.p_repeat, persons) - 1, plan.max_records - 1)
        counts[name] = present * (1 + extra)
    nowhere = sum(counts.values()) == 0
    counts["crm_contacts"][nowhere] = 1
    return counts


def _owners(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled person index per record and the record's rank among that person's."""
    owners = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    occurrence = np.arange(len(owners)) - starts
    order = rng.permutation(len(owners))
    return owners[order], occurrence[order]


def _spoil_rows(columns: dict[str, np.ndarray], plan: SourcePlan, rng: np.random.Generator) -> None:
    """Add missing values and the unusable rows the pipeline must quarantine."""
    size = len(next(iter(columns.values())))
    for column, rate in plan.missing.items():
        columns[column][mask(rng, size, rate)] = None
    per_kind = min(max(1, round(size * P_UNUSABLE)), size // 2)
    chosen = rng.choice(size, 2 * per_kind, replace=False)
    id_column = next(iter(columns))
    empty_ids = chosen[:per_kind]
    columns[id_column][empty_ids] = [None if i % 2 else "" for i in range(per_kind)]
    for column in plan.identity_columns:
        columns[column][chosen[per_kind:]] = None


@dataclass(frozen=True)
class Source:
    """One source's records, their ground truth, and the person index of each record."""

    records: pd.DataFrame
    truth: pd.DataFrame
    owners: np.ndarray


def build_source(
    plan: SourcePlan,
    people: dict[str, np.ndarray],
    counts: np.ndarray,
    rng: np.random.Generator,
    profile: Profile,
    errors: np.random.Generator,
) -> Source:
    """Records of one source and its ground truth rows.

    Args:
        plan: The source's plan, adjusted to ``profile``
            (see :func:`~linkage.demo.source_plans.profiled_plan`).
        people: The persons' columns.
        counts: Records per person in this source.
        rng: The source's stream for the base records.
        profile: The profile whose errors are added.
        errors: The source's stream for the profile's errors.

    Returns:
        The records, their truth and the person index of each record.
    """
    owners, occurrence = _owners(rng, counts)
    draws = Draws(people, owners, occurrence, rng, plan, profile, errors)
    columns = _SOURCE_BUILDERS[plan.name](draws)
    _spoil_rows(columns, plan, rng)
    sparse_rows(columns, plan, errors, profile.p_sparse * plan.noise)
    records = pd.DataFrame(columns)
    ids = records.iloc[:, 0]
    has_id = ids.notna() & (ids != "")
    truth = pd.DataFrame(
        {
            "source": plan.name,
            "record_id": ids[has_id].to_numpy(),
            "person_id": people["person_id"][owners][has_id.to_numpy()],
        }
    )
    return Source(records, truth, owners)
