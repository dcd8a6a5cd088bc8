"""Helpers that write project configs for tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from linkage.config import ProjectConfig, load_project


def write_project_file(
    folder: Path, config: dict, *, mlflow_uri: str, experiment: str, name: str = "project.yaml"
) -> ProjectConfig:
    """Write a project config into ``folder`` with its own warehouse and MLflow experiment.

    Tests read data from elsewhere (the session's demo folder), so the config allows
    input paths outside ``folder`` unless it declares ``data_roots`` itself.
    """
    full = {
        "warehouse": "warehouse.duckdb",
        **({} if "data_roots" in config else {"allow_paths_outside_project": True}),
        "mlflow": {
            "tracking_uri": mlflow_uri,
            "experiment": experiment,
            "registered_model": f"meld-{experiment}",
            "artifact_location": str(folder / "mlartifacts"),
        },
        **config,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(full, sort_keys=False), encoding="utf-8")
    return load_project(path)


def minimal_config(folder: Path, **sections: object) -> dict:
    """A one-source config (``crm.csv``, written into ``folder``) plus ``sections``."""
    (folder / "crm.csv").write_text("id,mail\n1,a@example.com\n", encoding="utf-8")
    return {
        "warehouse": "w.duckdb",
        "sources": {"crm": {"path": "crm.csv", "id_column": "id", "fields": {"email": "mail"}}},
        **sections,
    }


def write_config(folder: Path, config: dict | str, name: str = "meld.yaml") -> Path:
    """Write ``config`` (a mapping, or YAML text as it is) to ``folder/name``."""
    path = folder / name
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def demo_sources(demo_dir: Path, config_name: str = "meld.yaml") -> dict:
    """The ``sources``, ``truth`` and ``relationships`` sections of a generated demo, with
    absolute paths."""
    generated = yaml.safe_load((demo_dir / config_name).read_text(encoding="utf-8"))
    sources = generated["sources"]
    for source in sources.values():
        source["path"] = str(demo_dir / source["path"])
    truth = dict(generated["truth"], path=str(demo_dir / generated["truth"]["path"]))
    relationships = {
        name: dict(spec, path=str(demo_dir / spec["path"]))
        for name, spec in generated.get("relationships", {}).items()
    }
    return {"sources": sources, "truth": truth, "relationships": relationships}


def demo_project_file(
    folder: Path, demo_dir: Path, *, mlflow_uri: str, experiment: str
) -> ProjectConfig:
    """A project over generated demo data in ``demo_dir``, with its own warehouse."""
    return write_project_file(
        folder, demo_sources(demo_dir), mlflow_uri=mlflow_uri, experiment=experiment
    )


def select_assets(assets: list, predicate) -> list:
    """The assets any of whose keys' names satisfy ``predicate`` (multi-assets included)."""
    return [a for a in assets if any(predicate(key.path[-1]) for key in a.keys)]


def ingested_demo_project(
    folder: Path, demo_dir: Path, *, mlflow_uri: str, experiment: str
) -> ProjectConfig:
    """:func:`demo_project_file`, with its ingestion group materialized: the warehouse
    holds ``customer_records`` and nothing is trained yet."""
    import dagster as dg

    from orchestration.build import build_assets, build_resources

    project = demo_project_file(folder, demo_dir, mlflow_uri=mlflow_uri, experiment=experiment)
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        selection=dg.AssetSelection.groups("ingestion"),
    )
    assert result.success, "ingestion of the demo data failed"
    return project
