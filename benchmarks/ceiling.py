"""The recall ceiling of demo data: how much of each person the easy evidence alone finds.

A true pair counts as easy when the two records share an e-mail, a phone, an identifier
or a similar name plus date of birth or postcode; the ceiling is the share of persons
whose records such pairs join into one component.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.tables import CUSTOMER_RECORDS, GROUND_TRUTH
from linkage.warehouse import quote, table_columns

JARO_WINKLER_NAME_THRESHOLD = 0.8
"""Names at least this similar count as the same name in the recall ceiling."""


@dataclass(frozen=True)
class Ceiling:
    """Entities whose records the easy evidence alone joins into one component."""

    entities: int
    whole_entities: int

    @property
    def cluster_recall(self) -> float:
        """Share of entities found whole; the exact-cluster precision is 1 by construction."""
        return self.whole_entities / self.entities if self.entities else 0.0


def cluster_recall_ceiling(con: duckdb.DuckDBPyConnection) -> Ceiling:
    """Entities found whole when only true pairs with easy evidence are linked.

    Two records of the same entity (``ground_truth``) are joined when they share an
    e-mail, a phone, or an identifier (any of ``IDENTIFIER_FIELDS`` that
    ``customer_records`` has), or have Jaro-Winkler similar first and last names
    (>= 0.8) and the same date of birth or postcode (standardised columns of
    ``customer_records``). An entity counts when all its records end up in one
    connected component. Only true pairs are linked, so every component lies inside
    one entity: exact-cluster precision is 1 by construction.

    Examples:
        ```py
        with duckdb.connect("warehouse.duckdb", read_only=True) as con:
            cluster_recall_ceiling(con).cluster_recall
        ```
    """
    identifiers = [c for c in IDENTIFIER_FIELDS if c in table_columns(con, CUSTOMER_RECORDS)]
    labelled = (
        "SELECT r.unique_id, t.entity_id, r.first_name, r.last_name, r.date_of_birth, "
        "r.email, r.phone, r.postcode"
        + "".join(f", r.{quote(c)}" for c in identifiers)
        + f" FROM {CUSTOMER_RECORDS} AS r JOIN {GROUND_TRUTH} AS t USING (unique_id)"
    )
    shared = ["a.email = b.email", "a.phone = b.phone"]
    shared += [f"a.{quote(c)} = b.{quote(c)}" for c in identifiers]
    records = con.execute(f"SELECT unique_id, entity_id FROM ({labelled})").fetchall()
    edges = con.execute(
        f"WITH r AS ({labelled}) SELECT a.unique_id, b.unique_id FROM r AS a JOIN r AS b "
        "ON a.entity_id = b.entity_id AND a.unique_id < b.unique_id "
        f"WHERE {' OR '.join(shared)} "
        "OR (jaro_winkler_similarity(a.first_name, b.first_name) >= $threshold "
        "AND jaro_winkler_similarity(a.last_name, b.last_name) >= $threshold "
        "AND (a.date_of_birth = b.date_of_birth OR a.postcode = b.postcode))",
        {"threshold": JARO_WINKLER_NAME_THRESHOLD},
    ).fetchall()

    parent = {unique_id: unique_id for unique_id, _ in records}

    def find(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        parent[find(left)] = find(right)
    components: dict[str, set[str]] = {}
    for unique_id, entity_id in records:
        components.setdefault(entity_id, set()).add(find(unique_id))
    whole = sum(1 for roots in components.values() if len(roots) == 1)
    return Ceiling(entities=len(components), whole_entities=whole)
