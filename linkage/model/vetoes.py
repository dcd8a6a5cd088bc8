"""Link vetoes: evidence no match probability can outweigh.

The model scores pairs; a veto marks the pairs it forbids from ever being a link, in
the ``link_veto`` column of the scored pairs. Vetoed pairs stay in ``pairwise_matches``
(for audit and explanations) but clustering ignores them as links.

Examples:
    ```py
    counts = apply_link_vetoes(con, "pairwise_matches")
    counts["first_name_and_date_of_birth_conflict"]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb

from linkage.ingest.identifiers import INVALID_HASH_TOKEN
from linkage.tables import LINK_VETOES_IN_FORCE
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)

_FIRST_NAMES_CONFLICT = "jaro_winkler_similarity(first_name_l, first_name_r) < 0.7"
_NAMES_NOT_SWAPPED = (
    "coalesce(jaro_winkler_similarity(first_name_l, last_name_r), 0) < 0.7 "
    "AND coalesce(jaro_winkler_similarity(last_name_l, first_name_r), 0) < 0.7"
)
_BIRTH_DATES_CONFLICT = (
    "date_of_birth_l <> date_of_birth_r "
    "AND strftime(date_of_birth_l, '%Y-%d-%m') <> strftime(date_of_birth_r, '%Y-%m-%d')"
)

LINK_VETOES: dict[str, tuple[tuple[str, ...], str]] = {
    "first_name_and_date_of_birth_conflict": (
        ("first_name", "last_name", "date_of_birth"),
        f"{_FIRST_NAMES_CONFLICT} AND {_NAMES_NOT_SWAPPED} AND {_BIRTH_DATES_CONFLICT}",
    ),
}
"""Evidence no score can outweigh: two records whose first names have nothing in common
(and are not simply swapped with the last names) *and* whose dates of birth are both
known and differ (not merely day and month swapped) are two people, whatever else they
share. A family sharing a mailbox and an address is the typical case; nicknames (Olek
and Aleksander) keep their link through the date of birth. Vetoed pairs stay in
``pairwise_matches`` with the veto's name in ``link_veto``."""

VETO_EXEMPTIONS: dict[str, str] = {
    "national_id": "national_id_l = national_id_r AND national_id_l <> $invalid_id",
}
"""Evidence that lifts every veto: the same (hashed, valid) national id is one person,
whose first name and date of birth were both mistyped. Loyalty cards, device ids and
customer numbers do not lift a veto: families share them."""


DEFAULT_LINK_VETOES: tuple[str, ...] = ("first_name_and_date_of_birth_conflict",)
"""Vetoes in force unless ``clustering.link_vetoes`` says otherwise; the ablation in
``benchmarks/ablation.py`` (variant ``link_veto_off``) is what keeps or drops them."""


def record_vetoes_in_force(con: duckdb.DuckDBPyConnection, vetoes: Sequence[str]) -> None:
    """Keep the names of the vetoes scoring applied, for explanations and reproduction."""
    con.execute(f"CREATE OR REPLACE TABLE {LINK_VETOES_IN_FORCE} (veto VARCHAR)")
    if vetoes:
        con.executemany(f"INSERT INTO {LINK_VETOES_IN_FORCE} VALUES (?)", [[v] for v in vetoes])


def vetoes_in_force(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The vetoes the last scoring applied; the defaults for a warehouse scored before
    Meld recorded them."""
    if not table_exists(con, LINK_VETOES_IN_FORCE):
        return list(DEFAULT_LINK_VETOES)
    return [row[0] for row in con.execute(f"SELECT veto FROM {LINK_VETOES_IN_FORCE}").fetchall()]


def apply_link_vetoes(
    con: duckdb.DuckDBPyConnection, pairs_table: str, vetoes: Sequence[str] | None = None
) -> dict[str, int]:
    """Fill ``link_veto`` in ``pairs_table`` for pairs a veto forbids.

    A pair with the same valid national id (:data:`VETO_EXEMPTIONS`) is never vetoed.

    Args:
        con: Connection holding ``pairs_table``.
        pairs_table: Scored pairs.
        vetoes: Names from :data:`LINK_VETOES` to apply; default
            :data:`DEFAULT_LINK_VETOES`. An empty list applies none.

    Returns:
        Number of pairs each veto applies to.
    """
    wanted = DEFAULT_LINK_VETOES if vetoes is None else tuple(vetoes)
    columns = set(table_columns(con, pairs_table))
    con.execute(f"ALTER TABLE {quote(pairs_table)} ADD COLUMN IF NOT EXISTS link_veto VARCHAR")
    con.execute(f"UPDATE {quote(pairs_table)} SET link_veto = NULL")
    exempt = [
        f"coalesce({condition}, false)"
        for column, condition in VETO_EXEMPTIONS.items()
        if f"{column}_l" in columns and f"{column}_r" in columns
    ]
    unless = "".join(f" AND NOT {condition}" for condition in exempt)
    counts = {}
    for name, (needed, condition) in LINK_VETOES.items():
        if name not in wanted:
            continue
        if not all(f"{c}_l" in columns and f"{c}_r" in columns for c in needed):
            continue
        con.execute(
            f"UPDATE {quote(pairs_table)} SET link_veto = $name "
            f"WHERE link_veto IS NULL AND ({condition}){unless}",
            {"name": name, "invalid_id": INVALID_HASH_TOKEN} if exempt else {"name": name},
        )
        counts[name] = int(
            con.execute(
                f"SELECT count(*) FROM {quote(pairs_table)} WHERE link_veto = ?", [name]
            ).fetchall()[0][0]
        )
    return counts
