"""Shared fixtures: one MLflow sqlite store per session, a warehouse per test."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from linkage.config import ProjectConfig
from linkage.demo.generator import generate
from tests.projects import demo_sources, write_project_file


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite tracking store for the whole session (its migrations cost seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def experiment_name(request: pytest.FixtureRequest) -> str:
    """A fresh MLflow experiment (and registered model) name per test."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:80]


@pytest.fixture
def write_project(
    tmp_path: Path, mlflow_uri: str, experiment_name: str
) -> Callable[..., ProjectConfig]:
    """Write a project config into tmp_path (warehouse and MLflow settings filled in)."""

    def _write(config: dict, name: str = "project.yaml") -> ProjectConfig:
        return write_project_file(
            tmp_path, config, mlflow_uri=mlflow_uri, experiment=experiment_name, name=name
        )

    return _write


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo landing files for 150 persons, generated once per session."""
    out = tmp_path_factory.mktemp("demo")
    generate(out, persons=150, seed=7)
    return out


@pytest.fixture
def demo_project(small_demo: Path, write_project: Callable[..., ProjectConfig]) -> ProjectConfig:
    """A project over the session's small demo data, with its own warehouse and experiment."""
    return write_project(demo_sources(small_demo))
