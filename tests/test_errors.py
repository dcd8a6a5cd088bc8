"""Meld's own errors share one base class, and the command line turns them into one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import linkage
import training
from linkage.errors import MeldError, at_config_key
from orchestration.cli import main


def _project_modules() -> list[str]:
    names = []
    for package in (linkage, training):
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def test_every_error_meld_defines_is_a_meld_error() -> None:
    errors = {
        f"{module}.{name}": cls
        for module in _project_modules()
        for name, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module
    }
    assert len(errors) >= 10
    assert [name for name, cls in errors.items() if not issubclass(cls, MeldError)] == []


def test_a_config_key_prefixes_the_error_and_keeps_its_type() -> None:
    from linkage.ingest.readers.delivery import SourceError

    with pytest.raises(SourceError, match=r"^truth: no file at x$"), at_config_key("truth"):
        raise SourceError("no file at x")


def test_a_locked_warehouse_is_one_clear_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "crm.csv").write_text("id,mail\n1,a@example.com\n", encoding="utf-8")
    config = tmp_path / "project.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "warehouse": "warehouse.duckdb",
                "sources": {
                    "crm": {"path": "crm.csv", "id_column": "id", "fields": {"email": "mail"}}
                },
            }
        ),
        encoding="utf-8",
    )
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "print('holding', flush=True)\n"
            "time.sleep(120)\n",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        status = main(["runs", "--config", str(config)])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1
    assert str(warehouse) in err and "Traceback" not in err
