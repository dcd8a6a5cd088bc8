"""Imports point down only, and no modules import each other in a circle."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.import_rules import import_cycles, layer_violations

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_down_the_layers() -> None:
    assert layer_violations(ROOT) == []


def test_no_module_imports_itself_through_others() -> None:
    assert import_cycles(ROOT) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in ("linkage", "training", "assets", "orchestration", "benchmarks"):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


@pytest.mark.parametrize(
    ("relative", "statement", "forbidden"),
    [
        ("linkage/model/scoring.py", "from training.train import TrainingOptions", "training"),
        ("linkage/audit/explain.py", "import dagster as dg", "dagster"),
        ("linkage/cluster/ids.py", "from orchestration.cli import main", "orchestration"),
        ("linkage/master/golden.py", "from assets.resources import WarehouseResource", "assets"),
        ("training/train.py", "from dagster import asset", "dagster"),
        ("training/tracking.py", "from assets import resources", "assets"),
        (
            "linkage/model/store.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import training.tracking",
            "training",
        ),
        ("assets/linkage.py", "from orchestration.jobs import JOBS", "orchestration"),
    ],
)
def test_a_forbidden_import_is_named_with_its_file_and_line(
    tmp_path: Path, relative: str, statement: str, forbidden: str
) -> None:
    root = _tree(tmp_path, {relative: f'"""Doc."""\n\n{statement}\n'})
    problems = layer_violations(root)
    assert len(problems) == 1
    line = 3 + statement.count("\n")  # the import is the statement's last line
    assert problems[0].startswith(f"{relative}:{line}: ")
    assert f"must not import {forbidden}" in problems[0]


def test_downward_imports_are_allowed(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "training/train.py": "from linkage.model import settings\n",
            "assets/linkage.py": "import dagster\nfrom training import train\n",
            "orchestration/jobs.py": "from assets import linkage\n",
            "linkage/model/settings.py": "from linkage import canonical\n",
        },
    )
    assert layer_violations(root) == []


def test_a_cycle_through_a_third_module_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "training/promotion.py": "from training.tracking import MlflowTarget\n",
            "training/tracking.py": "from training import registry\n",
            "training/registry.py": "import training.promotion\n",
            "training/train.py": "from training.tracking import MlflowTarget\n",
        },
    )
    assert import_cycles(root) == [["training.promotion", "training.registry", "training.tracking"]]
