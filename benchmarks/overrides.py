"""Config overrides for the benchmarks: ``--set KEY=VALUE`` on top of a project config.

``KEY`` is a dotted path into the project config (``model.blocking``,
``clustering.link_vetoes``); ``VALUE`` is read as YAML, so ``false``, ``0``, ``[]`` and
``[a, b]`` are a bool, a number and lists, and anything else is a string. The benchmark
writes the merged config and Meld's own validation judges it: an unknown key fails the
run with the file and the key named.

Overrides travel as a plain ``{dotted key: value}`` dict, in the order given (a later
key wins), so they can be shown in a report, written to JSON and handed to a child
process as ``--set`` arguments again (:func:`to_arguments`).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

Overrides = dict[str, Any]
"""Dotted config key -> value, in the order they apply."""


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` into the dotted key and the value read as YAML.

    Raises:
        ValueError: No ``=``, an empty key or key part, or a value that is not YAML.

    Examples:
        >>> parse_override("model.blocking=fixed")
        ('model.blocking', 'fixed')
        >>> parse_override("clustering.link_vetoes=[]")
        ('clustering.link_vetoes', [])
        >>> parse_override("model.probability_floor=0")
        ('model.probability_floor', 0)
        >>> parse_override("quality.match_invalid_values=false")
        ('quality.match_invalid_values', False)
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise ValueError(f"override {text!r}: expected KEY=VALUE, e.g. model.blocking=fixed")
    if not key or any(not part.strip() for part in key.split(".")):
        raise ValueError(f"override {text!r}: the key must be dotted names, e.g. model.seed")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ValueError(f"override {text!r}: the value is not valid YAML: {exc}") from exc
    return ".".join(part.strip() for part in key.split(".")), parsed


def parse_overrides(texts: Iterable[str]) -> Overrides:
    """Several ``KEY=VALUE`` texts as one dict, a repeated key keeping its last value.

    Examples:
        >>> parse_overrides(["model.seed=1", "clustering.method=best_links", "model.seed=2"])
        {'clustering.method': 'best_links', 'model.seed': 2}
    """
    overrides: Overrides = {}
    for text in texts:
        key, value = parse_override(text)
        overrides.pop(key, None)  # the last occurrence decides the order too
        overrides[key] = value
    return overrides


def override_argument(text: str) -> tuple[str, Any]:
    """:func:`parse_override` for ``argparse``: a bad override is a usage error."""
    try:
        return parse_override(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def apply_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each override set at its dotted key.

    Missing sections are created; the rest of a section is kept, so
    ``model.blocking=fixed`` leaves ``model.seed`` alone. A value that is a mapping
    replaces the section's value at that key rather than merging into it.

    Raises:
        ValueError: A key passes through a value that is not a mapping (``model.seed.x``
            when ``model.seed`` is a number).

    Examples:
        >>> apply_overrides({"model": {"seed": 42}}, {"model.blocking": "fixed"})
        {'model': {'seed': 42, 'blocking': 'fixed'}}
        >>> apply_overrides({}, {"clustering.link_vetoes": []})
        {'clustering': {'link_vetoes': []}}
    """
    merged = copy.deepcopy(dict(config))
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        section = merged
        for depth, part in enumerate(parents):
            child = section.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                raise ValueError(
                    f"override {key}: {where} is {child!r}, not a section; "
                    f"cannot set {key} inside it"
                )
            section = child
        section[leaf] = copy.deepcopy(value)
    return merged


def format_value(value: Any) -> str:
    """A value as YAML (flow style) that :func:`parse_override` reads back as itself.

    Examples:
        >>> format_value([]), format_value(False), format_value("fixed"), format_value(0.0)
        ('[]', 'false', 'fixed', '0.0')
        >>> format_value("true"), format_value(["a", "b"])
        ("'true'", '[a, b]')
    """
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def format_overrides(overrides: Mapping[str, Any]) -> str:
    """``KEY=VALUE`` pairs for a report, or ``none``.

    Examples:
        >>> format_overrides({"model.blocking": "fixed", "clustering.link_vetoes": []})
        'model.blocking=fixed, clustering.link_vetoes=[]'
        >>> format_overrides({})
        'none'
    """
    if not overrides:
        return "none"
    return ", ".join(f"{key}={format_value(value)}" for key, value in overrides.items())


def to_arguments(overrides: Mapping[str, Any]) -> list[str]:
    """``--set KEY=VALUE`` arguments that give a child process the same overrides.

    Examples:
        >>> to_arguments({"model.blocking": "fixed", "model.probability_floor": 0.0})
        ['--set', 'model.blocking=fixed', '--set', 'model.probability_floor=0.0']
    """
    arguments: list[str] = []
    for key, value in overrides.items():
        arguments += ["--set", f"{key}={format_value(value)}"]
    return arguments
