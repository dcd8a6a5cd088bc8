"""The record errors a profile adds: typos, OCR confusions, initials, mistyped dates, sparse rows.

These are the errors of :class:`linkage.demo.knobs.Profile`, laid over the base
records of :mod:`linkage.demo.record_fields` and drawn from each source's own
``<source>_errors`` stream, so that the base records never shift: with every rate at
zero (the ``clean`` profile) nothing changes.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import partial

import numpy as np

from linkage.demo.knobs import REFERENCE_DATE, Profile
from linkage.demo.noise import KEYBOARD_NEIGHBOURS
from linkage.demo.sampling import apply, mask, py_random
from linkage.demo.source_plans import SourcePlan

__all__ = [
    "OCR_CONFUSIONS",
    "doubled_letter",
    "dob_errors",
    "email_typos",
    "initial",
    "keyboard_typo",
    "mistyped_date",
    "name_errors",
    "ocr_confusion",
    "sparse_rows",
]

OCR_CONFUSIONS = (
    ("rn", "m"),
    ("m", "rn"),
    ("cl", "d"),
    ("d", "cl"),
    ("l", "1"),
    ("I", "l"),
    ("O", "0"),
    ("o", "0"),
)
"""What a scanner reads for what was written: ``Bjørn`` -> ``Bjøm``, ``Olsen`` -> ``0lsen``."""


def keyboard_typo(value: str, rnd: random.Random) -> str:
    """One letter replaced by a neighbouring key of a QWERTY keyboard, keeping its case.

    Examples:
        >>> keyboard_typo("Anna", random.Random(3))
        'Ahna'
    """
    letters = [i for i, ch in enumerate(value) if ch.lower() in KEYBOARD_NEIGHBOURS]
    if not letters:
        return value
    pos = rnd.choice(letters)
    sub = rnd.choice(KEYBOARD_NEIGHBOURS[value[pos].lower()])
    return value[:pos] + (sub.upper() if value[pos].isupper() else sub) + value[pos + 1 :]


def ocr_confusion(value: str, rnd: random.Random) -> str:
    """One of :data:`OCR_CONFUSIONS` where the value allows one, else the value unchanged.

    Examples:
        >>> ocr_confusion("Bjørn", random.Random(1))
        'Bjøm'
    """
    options = [
        (pos, written, read)
        for written, read in OCR_CONFUSIONS
        for pos in range(len(value))
        if value.startswith(written, pos)
    ]
    if not options:
        return value
    pos, written, read = rnd.choice(options)
    return value[:pos] + read + value[pos + len(written) :]


def doubled_letter(value: str, rnd: random.Random) -> str:
    """One letter written twice: ``Anna`` -> ``Annna``.

    Examples:
        >>> doubled_letter("Anna", random.Random(0))
        'Annaa'
    """
    letters = [i for i, ch in enumerate(value) if ch.isalpha()]
    if not letters:
        return value
    pos = rnd.choice(letters)
    return value[: pos + 1] + value[pos:]


def initial(value: str, rnd: random.Random) -> str:
    """The first letter of a first name, with or without a full stop: ``J.`` or ``J``.

    Examples:
        >>> initial("john", random.Random(0))
        'J'
    """
    stripped = value.strip()
    if not stripped:
        return value
    return stripped[0].upper() + ("." if rnd.random() < 0.5 else "")


def name_errors(
    first: np.ndarray, last: np.ndarray, rng: np.random.Generator, profile: Profile, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """First and last names with the profile's name errors, rates times the source's ``noise``.

    Each name independently gets keyboard typos, OCR confusions and doubled letters;
    per record, the first name may be cut to its initial and both names may swap case.
    """
    rnd = py_random(rng)
    size = len(first)
    for spoil, p in (
        (keyboard_typo, profile.p_keyboard_typo),
        (ocr_confusion, profile.p_ocr_confusion),
        (doubled_letter, profile.p_doubled_letter),
    ):
        first = apply(first, mask(rng, size, p * noise), partial(spoil, rnd=rnd))
        last = apply(last, mask(rng, size, p * noise), partial(spoil, rnd=rnd))
    first = apply(first, mask(rng, size, profile.p_initial * noise), partial(initial, rnd=rnd))
    swapped = mask(rng, size, profile.p_swapped_case * noise)
    return apply(first, swapped, str.swapcase), apply(last, swapped, str.swapcase)


_LATEST_DATE = REFERENCE_DATE.astype(dt.date)


def _is_past_date(year: int, month: int, day: int) -> bool:
    try:
        return dt.date(year, month, day) <= _LATEST_DATE
    except ValueError:
        return False


def _other_digit(digit: int, rnd: random.Random) -> int:
    return rnd.choice([d for d in range(10) if d != digit])


def mistyped_date(year: int, month: int, day: int, rnd: random.Random) -> tuple[int, int, int]:
    """The date with two digits of its day, month or year swapped or one digit wrong.

    Only mistakes that still give a date, and not one in the future, are made (systems
    check dates on entry); a date that allows none comes back unchanged.

    Examples:
        >>> mistyped_date(1985, 3, 12, random.Random(2))
        (1958, 3, 12)
    """
    century, yy = divmod(year, 100)
    options = [
        (year, month, day % 10 * 10 + day // 10),  # 12 -> 21
        (year, month % 10 * 10 + month // 10, day),  # 10 -> 01
        (century * 100 + yy % 10 * 10 + yy // 10, month, day),  # 1985 -> 1958
        (year, month, day // 10 * 10 + _other_digit(day % 10, rnd)),
        (year, month // 10 * 10 + _other_digit(month % 10, rnd), day),
        (year - year % 10 + _other_digit(year % 10, rnd), month, day),
        (year - yy + _other_digit(yy // 10, rnd) * 10 + yy % 10, month, day),
    ]
    dates = [o for o in options if o != (year, month, day) and _is_past_date(*o)]
    return rnd.choice(dates) if dates else (year, month, day)


def dob_errors(
    years: np.ndarray, months: np.ndarray, days: np.ndarray, rng: np.random.Generator, p: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Years, months and days with a share ``p`` of dates mistyped (see :func:`mistyped_date`)."""
    rnd = py_random(rng)
    years, months, days = years.copy(), months.copy(), days.copy()
    for i in np.flatnonzero(mask(rng, len(years), p)).tolist():
        years[i], months[i], days[i] = mistyped_date(
            int(years[i]), int(months[i]), int(days[i]), rnd
        )
    return years, months, days


def _email_typo(email: str, rnd: random.Random) -> str:
    """A neighbouring key in the local part or the domain name, never in the top-level domain."""
    end = email.rfind(".")
    if end <= email.find("@"):
        end = len(email)
    return keyboard_typo(email[:end], rnd) + email[end:]


def email_typos(emails: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """E-mails with a share ``p`` mistyped: ``anna.svensson@gmail.com`` -> ``anna.svenssin@...``."""
    rnd = py_random(rng)
    return apply(emails, mask(rng, len(emails), p), partial(_email_typo, rnd=rnd))


def sparse_rows(
    columns: dict[str, np.ndarray], plan: SourcePlan, rng: np.random.Generator, p: float
) -> None:
    """Blank all but the id, the name and one contact field in a share ``p`` of rows.

    Rows look like those of a marketing list: a name and an e-mail or a phone. Rows
    without a name or without any contact field are left as they are.
    """
    rnd = py_random(rng)
    id_column = next(iter(columns))
    names = [c for c in plan.identity_columns if c not in plan.contact_columns]
    for i in np.flatnonzero(mask(rng, len(columns[id_column]), p)).tolist():
        contacts = [c for c in plan.contact_columns if columns[c][i] is not None]
        if not contacts or all(columns[c][i] is None for c in names):
            continue
        keep = {id_column, *names, rnd.choice(contacts)}
        for column, values in columns.items():
            if column not in keep:
                values[i] = None
