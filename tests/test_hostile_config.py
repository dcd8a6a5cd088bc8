"""Hostile config files: an alias bomb, hostile YAML, long values, input paths leaving
the project folder, and encodings. Each ends in a short :class:`ConfigError` naming the
file and key, or in a config that loads. See docs/inputs.md."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from linkage.config import REPO_ROOT, ConfigError, load_project
from tests.projects import minimal_config as _config
from tests.projects import write_config as _write


def _refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as error:
        load_project(path)
    return str(error.value)


# --- YAML -------------------------------------------------------------------------------

BOMB = """\
warehouse: w.duckdb
sources:
  crm: {path: crm.csv, id_column: id, fields: {email: mail}}
model:
  comparisons:
    email:
      function: JaroWinklerAtThresholds
      args:
        a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
        h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
        i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_in_comparison_args_fails_fast(tmp_path: Path) -> None:
    _config(tmp_path)
    started = time.perf_counter()
    message = _refusal(_write(tmp_path, BOMB))
    assert time.perf_counter() - started < 2.0
    assert "aliases expand to more than" in message and "line 13" in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("warehouse: &w [*w]\n", "refers to a list or mapping it is part of"),
        ("warehouse: " + "[" * 60 + "]" * 60 + "\n", "nested more than 50 levels deep"),
        ("warehouse: w\nsources: *nowhere\n", "found undefined alias"),
        ("warehouse: !!python/object/apply:os.system [ls]\n", "could not determine"),
        ("a: " + "b" * 100_000 + ": c\n", "mapping values are not allowed"),
    ],
    ids=["recursive-alias", "deep-nesting", "undefined-alias", "python-tag", "long-line"],
)
def test_hostile_yaml_is_refused_in_one_short_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = _refusal(_write(tmp_path, text))
    assert expected in message and str(tmp_path) in message
    assert len(message) < 400 and "\n" not in message


def test_a_config_file_larger_than_the_limit_is_not_parsed(tmp_path: Path) -> None:
    path = _write(tmp_path, "# padding\n" * 200_000)
    assert "at most 1048576 are read" in _refusal(path)


def test_anchors_and_merge_keys_of_a_normal_config_still_work(tmp_path: Path) -> None:
    text = """\
warehouse: w.duckdb
sources:
  crm: &crm {path: crm.csv, id_column: id, fields: {email: mail}}
  shop: {<<: *crm, default_country: SE}
"""
    _config(tmp_path)
    project = load_project(_write(tmp_path, text))
    assert project.sources["shop"].fields == project.sources["crm"].fields
    assert project.sources["shop"].default_country == "SE"


@pytest.mark.parametrize(
    ("section", "value"),
    [
        (("sources", "crm", "encoding"), "x" * 50_000),
        (("sources", "crm", "fields"), {"y" * 50_000: "mail"}),
        (
            ("model", "comparisons"),
            {
                "email": {
                    "function": "JaroWinklerAtThresholds",
                    "args": {"score_threshold_or_thresholds": ["z" * 50_000]},
                }
            },
        ),
        (("clustering", "link_vetoes"), ["v" * 50_000]),
    ],
    ids=["encoding", "field-name", "comparison-args", "link-veto"],
)
def test_values_quoted_in_validation_errors_are_cut_short(
    tmp_path: Path, section: tuple[str, ...], value: object
) -> None:
    config = _config(tmp_path)
    target = config
    for key in section[:-1]:
        target = target.setdefault(key, {})
    target[section[-1]] = value
    message = _refusal(_write(tmp_path, config))
    assert ".".join(section) in message
    assert "..." in message
    assert len(message) < 1000


# --- Paths ------------------------------------------------------------------------------


def _outside(tmp_path: Path) -> tuple[Path, Path]:
    """A project folder and, beside it, a folder with a CSV the project must not read."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (outside / "x.csv").write_text("id,mail\n1,a@example.com\n", encoding="utf-8")
    return project, outside


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("sources.crm.path", "../outside/x.csv"),
        ("sources.crm.path", "{outside}/x.csv"),
        ("sources.crm.path", "../outside/*.csv"),
        ("sources.crm.path", "landing/*/../../../outside/x.csv"),
        ("truth.path", "../outside/x.csv"),
        ("labels.path", "../outside/x.csv"),
        ("overrides.path", "../outside/x.csv"),
        ("relationships.orders.path", "../outside/x.csv"),
        ("sources.pos.database.path", "../outside/pos.duckdb"),
    ],
)
def test_input_paths_outside_the_project_folder_are_refused(
    tmp_path: Path, key: str, path: str
) -> None:
    project, outside = _outside(tmp_path)
    config = _config(project)
    path = path.format(outside=outside)
    section, *rest = key.split(".")
    if section == "sources" and rest[0] == "pos":
        config["sources"]["pos"] = {
            "database": {"kind": "duckdb", "path": path, "table": "t"},
            "id_column": "id",
            "fields": {"email": "mail"},
        }
    elif section == "sources":
        config["sources"]["crm"]["path"] = path
    elif section == "relationships":
        config["relationships"] = {"orders": {"path": path}}
    else:
        config[section] = {"path": path}
    message = _refusal(_write(project, config))
    assert key in message
    assert "data_roots" in message and "allow_paths_outside_project" in message


def test_a_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    project, outside = _outside(tmp_path)
    config = _config(project)
    (project / "landing").mkdir()
    os.symlink(outside / "x.csv", project / "landing" / "crm_2.csv")
    config["sources"]["crm"]["path"] = "landing/crm_*.csv"
    message = _refusal(_write(project, config))
    assert "sources.crm.path" in message and "symlink" in message
    os.symlink(outside, project / "linked")
    config["sources"]["crm"]["path"] = "linked/x.csv"
    (project / "landing" / "crm_2.csv").unlink()
    assert "sources.crm.path" in _refusal(_write(project, config))


def test_a_declared_data_root_or_the_explicit_switch_allows_outside_paths(
    tmp_path: Path,
) -> None:
    project, outside = _outside(tmp_path)
    config = _config(project)
    config["sources"]["crm"]["path"] = "../outside/x.csv"
    rooted = load_project(_write(project, {**config, "data_roots": ["../outside"]}))
    assert rooted.source_files("crm") == [outside / "x.csv"]
    absolute = load_project(_write(project, {**config, "data_roots": [str(outside)]}))
    assert absolute.source_files("crm") == [outside / "x.csv"]
    anywhere = load_project(_write(project, {**config, "allow_paths_outside_project": True}))
    assert anywhere.source_files("crm") == [outside / "x.csv"]
    assert "data_roots" in _refusal(_write(project, {**config, "data_roots": "../outside"}))
    refused = _refusal(_write(project, {**config, "allow_paths_outside_project": "yes"}))
    assert "allow_paths_outside_project" in refused


def test_where_meld_writes_is_not_confined(tmp_path: Path) -> None:
    project, outside = _outside(tmp_path)
    config = _config(project, warehouse=str(outside / "w.duckdb"), artifacts="../outside/a")
    loaded = load_project(_write(project, config))
    assert loaded.warehouse == outside / "w.duckdb"
    assert loaded.artifacts == outside / "a"


def test_the_shipped_configs_declare_their_data_roots() -> None:
    for name in ("demo.yaml", "example.yaml"):
        assert load_project(REPO_ROOT / "config" / name).sources


# --- Encodings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_name", "normalised"),
    [
        ("cp1252", "windows-1252"),
        ("Windows-1252", "windows-1252"),
        ("iso-8859-1", "latin-1"),
        ("ISO-8859-15", "iso8859-15"),
        ("UTF8", "utf-8"),
        ("utf-16", "utf-16"),
        ("cp850", "cp850"),
    ],
)
def test_any_text_encoding_python_knows_is_accepted_and_normalised(
    tmp_path: Path, given_name: str, normalised: str
) -> None:
    config = _config(tmp_path)
    config["sources"]["crm"]["encoding"] = given_name
    config["relationships"] = {"orders": {"path": "crm.csv", "encoding": given_name}}
    project = load_project(_write(tmp_path, config))
    assert project.sources["crm"].encoding == normalised
    assert project.relationships.orders.encoding == normalised


@pytest.mark.parametrize("name", ["ebcdic-klingon", "rot13", "base64", "undefined", ""])
def test_an_encoding_that_does_not_decode_text_is_refused(tmp_path: Path, name: str) -> None:
    config = _config(tmp_path)
    config["sources"]["crm"]["encoding"] = name
    assert "sources.crm.encoding" in _refusal(_write(tmp_path, config))


def test_a_link_dropped_into_a_landing_folder_after_loading_is_refused_at_listing(
    tmp_path: Path,
) -> None:
    """The landing sensor and ingestion list files long after the config was read."""
    project, outside = _outside(tmp_path)
    config = _config(project)
    (project / "landing").mkdir()
    (project / "landing" / "crm_1.csv").write_text("id,mail\n2,b@example.com\n", "utf-8")
    config["sources"]["crm"]["path"] = "landing/crm_*.csv"
    loaded = load_project(_write(project, config))
    assert [p.name for p in loaded.source_files("crm")] == ["crm_1.csv"]
    os.symlink(outside / "x.csv", project / "landing" / "crm_2.csv")
    with pytest.raises(ConfigError, match=r"sources\.crm\.path: .*crm_2\.csv resolves outside"):
        loaded.source_files("crm")
