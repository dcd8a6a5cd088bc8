"""Identifiers one demo source quotes from another: loyalty cards, customer numbers, devices.

Sources carry identifiers the way real systems do, sparse and not always right: the
point-of-sale card number is a ``loyalty_card``; the CRM records the loyalty card of a
minority of its customers (a few mistyped, stale, or the partner's card of a
household); support tickets sometimes quote the CRM contact id as ``customer_number``
(a few with a digit wrong, which then names someone else); and web-shop accounts carry
the ``device_id`` they were opened on, which a person's second account and some
households share. There are no national ids: they would need a hashing key just to run
the demo.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from linkage.demo.knobs import (
    P_CARD_GROUPED,
    P_CARD_MISTYPED,
    P_CARD_OF_PARTNER,
    P_CARD_STALE,
    P_CRM_LOYALTY_CARD,
    P_CUSTOMER_NUMBER_MISTYPED,
    P_CUSTOMER_NUMBER_RESTYLED,
    P_SHARED_DEVICE,
    P_TICKET_CUSTOMER_NUMBER,
    P_USUAL_DEVICE,
    P_WEBSHOP_DEVICE,
)
from linkage.demo.sampling import apply, mask, pick, py_random
from linkage.demo.source_plans import SOURCE_PLANS, SourcePlan
from linkage.demo.source_records import Source

__all__ = ["BUILD_ORDER", "Identifiers"]


def _first_id_per_person(source: Source, column: str, persons: int) -> np.ndarray:
    """Each person's first non-empty ``column`` value in ``source`` (None if they have none)."""
    ids = source.records[column]
    present = (ids.notna() & (ids != "")).to_numpy()
    first = pd.Series(ids.to_numpy()[present]).groupby(source.owners[present]).first()
    out = np.full(persons, None, dtype=object)
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def _partner_index(household: np.ndarray) -> np.ndarray:
    """The index of the person each person lives with, -1 for persons living alone."""
    partner = np.full(len(household), -1, dtype=np.int64)
    members = np.flatnonzero(pd.notna(household))
    order = members[np.argsort(household[members].astype(str), kind="stable")]
    pairs = order.reshape(-1, 2)  # every household is two persons
    partner[pairs[:, 0]], partner[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
    return partner


def _digit_typo(value: str, rnd: random.Random, first: int) -> str:
    """One digit at or after position ``first`` replaced by another digit."""
    pos = rnd.randrange(first, len(value))
    digit = rnd.choice([d for d in "0123456789" if d != value[pos]])
    return value[:pos] + digit + value[pos + 1 :]


def _without_identity(source: Source, plan: SourcePlan) -> np.ndarray:
    """Rows spoiled to have no identifying field: they get no identifier either."""
    columns = source.records
    return np.logical_and.reduce(
        [np.equal(columns[c].to_numpy(), None) for c in plan.identity_columns]
    )


def _crm_loyalty_cards(
    crm: Source, card_of: np.ndarray, partner: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The loyalty card on file for a minority of cardholders' CRM records.

    A few cards on file are wrong: one digit off, an old card that was replaced, or
    the card of the partner the person lives with (a family card): then two people
    share a card number, and only names and dates of birth can tell them apart.
    """
    rnd = py_random(rng)
    owners = crm.owners
    cards = card_of[owners]
    on_file = pd.notna(cards) & mask(rng, len(owners), P_CRM_LOYALTY_CARD)
    cards = np.where(on_file, cards, None)
    draw = rng.random(len(owners))
    mistyped = on_file & (draw < P_CARD_MISTYPED)
    stale = on_file & (draw >= P_CARD_MISTYPED) & (draw < P_CARD_MISTYPED + P_CARD_STALE)
    cards = apply(cards, mistyped, lambda v: _digit_typo(v, rnd, 1))
    replaced = rng.integers(0, 10**12, len(owners), dtype=np.int64)
    cards[stale] = [f"6{v:012d}" for v in replaced[stale].tolist()]
    partners = partner[owners]
    partner_card = np.where(partners >= 0, card_of[np.maximum(partners, 0)], None)
    family = (
        on_file
        & ~mistyped
        & ~stale
        & pd.notna(partner_card)
        & mask(rng, len(owners), P_CARD_OF_PARTNER)
    )
    cards = pick(cards, family, partner_card)
    grouped = mask(rng, len(owners), P_CARD_GROUPED)
    return apply(cards, grouped, lambda v: " ".join(v[i : i + 4] for i in range(0, len(v), 4)))


def _restyle_customer_number(value: str, rnd: random.Random) -> str:
    style = rnd.randrange(3)
    if style == 0:
        return value.lower()
    return f"{value[0]}{'-' if style == 1 else ' '}{value[1:]}"


def _quoted_customer_numbers(
    tickets: Source, number_of: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The CRM customer number quoted on a minority of CRM customers' tickets.

    A few have a digit wrong; CRM numbers are dense, so most of those name another
    customer.
    """
    rnd = py_random(rng)
    numbers = number_of[tickets.owners]
    quoted = pd.notna(numbers) & mask(rng, len(numbers), P_TICKET_CUSTOMER_NUMBER)
    numbers = np.where(quoted, numbers, None)
    mistyped = mask(rng, len(numbers), P_CUSTOMER_NUMBER_MISTYPED)
    numbers = apply(numbers, mistyped, lambda v: _digit_typo(v, rnd, len(v) - 4))
    restyled = mask(rng, len(numbers), P_CUSTOMER_NUMBER_RESTYLED)
    return apply(numbers, restyled, lambda v: _restyle_customer_number(v, rnd))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POSITIONS = [i for i in range(36) if i not in (8, 13, 18, 23)]


def _device_ids(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random device ids written as UUIDs (``8-4-4-4-12`` lower-case hex digits)."""
    text = np.full((size, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = _HEX_DIGITS[rng.integers(0, 16, (size, 32), dtype=np.uint8)]
    return text.view("S36").ravel().astype("U36").astype(object)


def _webshop_devices(shop: Source, partner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The device each account was opened on, for most accounts.

    A person's accounts mostly come from their usual device; in some households both
    partners use one device, so a device id alone does not make one person.
    """
    persons, size = len(partner), len(shop.owners)
    usual = _device_ids(rng, persons)
    shared = (partner >= 0) & (np.arange(persons) < partner) & mask(rng, persons, P_SHARED_DEVICE)
    usual[partner[shared]] = usual[shared]
    devices = usual[shop.owners]
    other = ~mask(rng, size, P_USUAL_DEVICE)
    devices[other] = _device_ids(rng, int(other.sum()))
    return np.where(mask(rng, size, P_WEBSHOP_DEVICE), devices, None)


class Identifiers:
    """Adds the identifier columns that quote another source's ids, source by source.

    Sources are built in :data:`BUILD_ORDER`, so a source's ids are known before one
    that quotes them: the CRM keeps point-of-sale loyalty cards, support tickets quote
    CRM customer numbers. Only each person's first id is kept between sources, not
    the records. The record ids of the CRM and the point-of-sale system are identifiers
    themselves, mapped a second time in ``meld.yaml``. Rows spoiled to have no
    identifying field get no identifier either.
    """

    def __init__(self, people: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        self.persons = len(people["person_id"])
        self.partner = _partner_index(people["household_id"])
        self.rng = rng
        self.card_of = np.full(self.persons, None, dtype=object)
        self.number_of = np.full(self.persons, None, dtype=object)

    def add(self, name: str, source: Source) -> None:
        """Add ``name``'s identifier column to ``source.records`` (in place)."""
        if name == "pos_loyalty":
            self.card_of = _first_id_per_person(source, "card_number", self.persons)
            return
        if name == "crm_contacts":
            column = "loyalty_card"
            values = _crm_loyalty_cards(source, self.card_of, self.partner, self.rng)
            self.number_of = _first_id_per_person(source, "contact_id", self.persons)
        elif name == "webshop_accounts":
            column, values = "device_id", _webshop_devices(source, self.partner, self.rng)
        else:
            column = "customer_no"
            values = _quoted_customer_numbers(source, self.number_of, self.rng)
        values[_without_identity(source, SOURCE_PLANS[name])] = None
        source.records[column] = values


BUILD_ORDER: tuple[str, ...] = (
    "pos_loyalty",
    "crm_contacts",
    "webshop_accounts",
    "support_tickets",
)
"""Each source after those whose ids it quotes (see :class:`Identifiers`). Every source
draws from its own stream, so the order changes nothing else."""
