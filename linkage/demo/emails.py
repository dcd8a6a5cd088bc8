"""E-mail addresses of the demo persons, built from their names."""

from __future__ import annotations

import numpy as np
from unidecode import unidecode

from linkage.demo.country_tables import COUNTRIES
from linkage.demo.knobs import ZIPF_EMAIL_DOMAINS
from linkage.demo.sampling import dedupe, object_array, zipf_choice

__all__ = ["person_emails", "unique_emails"]


def _fold(name: str) -> str:
    """ASCII, lower-case, letters only: the way names end up in e-mail addresses."""
    return "".join(ch for ch in unidecode(name).lower() if ch.isalnum())


_EMAIL_PATTERNS = (
    ("{f}.{l}", 0.35),
    ("{f}{l}", 0.15),
    ("{i}.{l}", 0.10),
    ("{f}.{l}{yy}", 0.10),
    ("{f}{n}", 0.10),
    ("{l}.{f}", 0.05),
    ("{f}_{l}", 0.05),
    ("{f}{l}{yyyy}", 0.10),
)


def person_emails(
    rng: np.random.Generator,
    country: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    dob: np.ndarray,
) -> np.ndarray:
    """One e-mail address per person, unique, built from the name."""
    folded = {name: _fold(name) for name in {*first.tolist(), *last.tolist()}}
    years = (dob.astype("datetime64[Y]").astype(np.int64) + 1970).tolist()
    patterns = [p for p, _ in _EMAIL_PATTERNS]
    weights = np.array([w for _, w in _EMAIL_PATTERNS])
    choice = rng.choice(len(patterns), len(first), p=weights / weights.sum()).tolist()
    numbers = rng.integers(1, 1000, len(first)).tolist()
    locals_ = [
        patterns[c].format(f=f, l=lst, i=f[0], yy=f"{y % 100:02d}", yyyy=y, n=k)
        for c, f, lst, y, k in zip(
            choice,
            (folded[name] or "x" for name in first.tolist()),
            (folded[name] or "x" for name in last.tolist()),
            years,
            numbers,
            strict=True,
        )
    ]
    domains = np.empty(len(first), dtype=object)
    for code, spec in COUNTRIES.items():
        idx = np.flatnonzero(country == code)
        picks = zipf_choice(rng, len(spec.email_domains), len(idx), ZIPF_EMAIL_DOMAINS)
        domains[idx] = [spec.email_domains[i] for i in picks]
    return object_array(f"{local}@{domain}" for local, domain in zip(locals_, domains, strict=True))


def unique_emails(rng: np.random.Generator, emails: np.ndarray) -> np.ndarray:
    """``emails`` with later duplicates made unique by digits appended to the local part."""

    def redraw(_indices: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Append a digit or two to the local part; repeats keep growing until unique."""
        suffixes = rng.integers(1, 100, len(current)).tolist()
        return object_array(
            "{0}{2}@{1}".format(*email.split("@"), k)
            for email, k in zip(current, suffixes, strict=True)
        )

    return dedupe(emails, redraw)
