"""The ``meld`` command line on configs without a pipeline run."""

from __future__ import annotations

from pathlib import Path

from orchestration.cli import main


def test_check_config_accepts_a_good_config(demo_project, capsys) -> None:
    assert main(["check-config", str(demo_project.config_path)]) == 0
    assert "4 sources" in capsys.readouterr().out


def test_check_config_names_missing_files(write_project, tmp_path: Path, capsys) -> None:
    project = write_project(
        {"sources": {"crm": {"path": "nowhere.csv", "id_column": "id", "fields": {"email": "m"}}}}
    )
    assert main(["check-config", str(project.config_path)]) == 1
    err = capsys.readouterr().err
    assert "sources.crm.path" in err and "nowhere.csv" in err


def test_bad_config_exits_2_with_the_key(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "warehouse: w.duckdb\nsources: {crm: {path: a.csv, id_column: id, fields: {shoe: s}}}\n"
    )
    assert main(["check-config", str(path)]) == 2
    assert "sources.crm.fields" in capsys.readouterr().err


def test_summary_before_any_run_says_what_to_do(demo_project, capsys) -> None:
    assert main(["summary", "--config", str(demo_project.config_path)]) == 1
    assert "make demo" in capsys.readouterr().err
