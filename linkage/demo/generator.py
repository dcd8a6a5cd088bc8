"""Deterministic synthetic customer records for demos, tests and benchmarks.

The generator invents ``persons`` people in five countries and writes what four
source systems would hold about them, with the errors real systems have: typos,
nicknames, lost diacritics, swapped day and month, old addresses and e-mails,
phones in every format, missing values and a handful of unusable rows. It also
writes the ground truth (which record belongs to which person), orders and a
product catalogue (:mod:`linkage.demo.orders`), and a project config, ``meld.yaml``,
that points Meld at the files.

Besides names, the sources carry identifiers the way real systems do, sparse and
not always right (see :mod:`linkage.demo.identifiers`).

A profile decides how hard the data is (:data:`linkage.demo.knobs.PROFILES`):
``clean`` writes only the base records above; ``realistic``, the default, adds the
errors real customer data has: phones that ``phonenumbers`` calls invalid (a third of
persons), national-format numbers in the source without a country column, keyboard
and OCR typos, doubled letters, swapped case and initials in names, mistyped dates of
birth and rows with only a name and one contact field
(:mod:`linkage.demo.invalid_phones`, :mod:`linkage.demo.record_errors`); ``hostile``
has clearly more of everything. A profile's errors come from their own random
streams, so ``realistic`` is ``clean`` with errors added, record for record.

Layout of ``OUT``::

    meld.yaml
    landing/crm_contacts.csv
    landing/webshop_accounts.csv
    landing/support_tickets.jsonl
    landing/pos_loyalty.parquet
    landing/truth.csv
    landing/orders.csv
    landing/products.csv

Randomness comes from ``numpy.random.default_rng`` seeded from the ``seed``
argument (one independent stream per stage) and from Faker, which is only used,
seeded, to build pools of names and street names once per locale. The same
arguments always give byte-identical files.

Where the parts live: persons in :mod:`~linkage.demo.persons` (with
:mod:`~linkage.demo.pools`, :mod:`~linkage.demo.addresses`,
:mod:`~linkage.demo.phones` and :mod:`~linkage.demo.emails`), their records in
:mod:`~linkage.demo.source_records` (fields in :mod:`~linkage.demo.record_fields`,
noise in :mod:`~linkage.demo.noise`), the country tables in
``linkage/demo/countries/*.json`` (read by :mod:`~linkage.demo.country_tables`) and
the rates in :mod:`~linkage.demo.knobs`.

Usage::

    python -m linkage.demo data/demo --persons 10000 --seed 42 --profile realistic
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import yaml

from linkage.demo.identifiers import BUILD_ORDER, Identifiers
from linkage.demo.knobs import DEFAULT_PROFILE, profile_named
from linkage.demo.orders import write_orders
from linkage.demo.persons import build_persons
from linkage.demo.project_file import project_config
from linkage.demo.sampling import stage_rngs
from linkage.demo.source_plans import (
    CONFIG_FILE,
    SOURCE_FILES,
    SOURCE_PLANS,
    TRUTH_FILE,
    profiled_plan,
)
from linkage.demo.source_records import build_source, record_counts
from linkage.demo.writers import WRITERS, write_csv

__all__ = ["generate"]

logger = logging.getLogger(__name__)


def generate(
    out_dir: Path, persons: int, seed: int, profile: str = DEFAULT_PROFILE
) -> dict[str, int]:
    """Write the four demo sources, the ground truth and ``meld.yaml`` to ``out_dir``.

    Args:
        out_dir: Directory to write to; created if missing, files are overwritten.
        persons: Number of persons behind the records (about 3.3 records each).
        seed: Seed; the same arguments give byte-identical files.
        profile: ``"clean"``, ``"realistic"`` or ``"hostile"``
            (see :data:`linkage.demo.knobs.PROFILES`).

    Returns:
        Records written per source, including the unusable rows.

    Raises:
        ValueError: If ``persons`` is below 1 or ``profile`` is unknown.

    Examples:
        >>> from pathlib import Path
        >>> import tempfile
        >>> counts = generate(Path(tempfile.mkdtemp()), persons=50, seed=1)
        >>> sorted(counts)
        ['crm_contacts', 'pos_loyalty', 'support_tickets', 'webshop_accounts']
    """
    started = time.perf_counter()
    spec = profile_named(profile)
    people_frame = build_persons(persons, seed, profile)
    out_dir = Path(out_dir)
    (out_dir / "landing").mkdir(parents=True, exist_ok=True)
    people = {column: people_frame[column].to_numpy() for column in people_frame.columns}
    rngs = stage_rngs(seed)
    counts = record_counts(rngs["allocation"], persons)
    identifiers = Identifiers(people, rngs["identifiers"])
    config_sources = project_config()["sources"]
    written: dict[str, int] = {}
    truths: dict[str, pd.DataFrame] = {}
    for name in BUILD_ORDER:
        has_country = "country" in config_sources[name]["fields"]
        plan = profiled_plan(SOURCE_PLANS[name], spec, has_country)
        source = build_source(plan, people, counts[name], rngs[name], spec, rngs[f"{name}_errors"])
        identifiers.add(name, source)
        path = out_dir / SOURCE_FILES[name]
        WRITERS[path.suffix](source.records, path)
        written[name] = len(source.records)
        truths[name] = source.truth
        logger.info("wrote %s: %d records", path, len(source.records))
    truth = pd.concat([truths[name] for name in SOURCE_PLANS], ignore_index=True)
    write_csv(truth, out_dir / TRUTH_FILE)
    write_orders(truth, out_dir, seed)
    written = {name: written[name] for name in SOURCE_PLANS}
    with (out_dir / CONFIG_FILE).open("w", encoding="utf-8") as handle:
        yaml.safe_dump(project_config(), handle, sort_keys=False, allow_unicode=True)
    logger.info(
        "generated %d records of %d persons (profile %s) in %.1f s",
        sum(written.values()),
        persons,
        profile,
        time.perf_counter() - started,
    )
    return written


if __name__ == "__main__":
    raise SystemExit("the command line moved: python -m linkage.demo OUT --persons N --seed S")
