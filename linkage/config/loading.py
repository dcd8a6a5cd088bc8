"""Read a project config file: YAML in, a validated :class:`ProjectConfig` out.

The file's path comes from ``MELD_CONFIG`` (default ``config/demo.yaml``) and is read
once, when the Dagster definitions are built. The YAML is read with limits
(:mod:`linkage.config.safe_yaml`), input paths must stay inside the project's folders
(:class:`~linkage.config.paths.InputRoots`), and every error names the file and the key
at fault, quoting at most a few dozen characters of any value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from linkage.config.base import MAX_SHOWN_CHARS, ConfigError
from linkage.config.paths import (
    InputRoots,
    artifact_location,
    resolve_path,
    resolve_tracking_uri,
)
from linkage.config.project import ProjectConfig
from linkage.config.safe_yaml import load_yaml_file

DEFAULT_CONFIG_PATH = "config/demo.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]

MAX_LISTED_ERRORS = 10
MAX_ERROR_LINE_CHARS = 300
_LONG_QUOTED = re.compile(rf"""(['"])([^'"\n]{{{MAX_SHOWN_CHARS},}})\1""")


def _short(text: str, limit: int = MAX_ERROR_LINE_CHARS) -> str:
    """``text`` with quoted values cut to :data:`MAX_SHOWN_CHARS` and the whole to ``limit``.

    Examples:
        >>> _short("unknown field(s) ['" + "x" * 100 + "']")[:30]
        "unknown field(s) ['xxxxxxxxxxx"
        >>> len(_short("unknown field(s) ['" + "x" * 100 + "']"))
        99
    """
    keep = MAX_SHOWN_CHARS - 5
    text = _LONG_QUOTED.sub(lambda m: f"{m[1]}{m[2][:keep]}...{m[1]}", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_validation_error(path: Path, error: ValidationError) -> str:
    """One line per problem (at most :data:`MAX_LISTED_ERRORS`): the key and the message,
    never the whole offending value."""
    items = error.errors(include_url=False, include_input=False)
    lines = [f"{path}: invalid project config"]
    for item in items[:MAX_LISTED_ERRORS]:
        key = _short(".".join(_short(str(part), 40) for part in item["loc"]), 120)
        lines.append(f"  {key or '<top level>'}: {_short(item['msg'])}")
    if len(items) > MAX_LISTED_ERRORS:
        lines.append(f"  ... and {len(items) - MAX_LISTED_ERRORS} more")
    return "\n".join(lines)


def _resolve_outputs(base: Path, raw: dict[str, Any]) -> None:
    """Make the warehouse, artifacts and MLflow locations absolute, in place."""
    if "warehouse" not in raw:
        raise ConfigError("warehouse: required key missing")
    for key in ("warehouse", "artifacts"):
        if isinstance(raw.get(key), dict | list):
            raise ConfigError(f"{key}: expected a path, found a {type(raw[key]).__name__}")
    try:
        raw["warehouse"] = resolve_path(base, str(raw["warehouse"]))
        default_artifacts = Path(str(raw["warehouse"])).parent / "artifacts"
        raw["artifacts"] = resolve_path(base, str(raw.get("artifacts") or default_artifacts))
        mlflow = raw.get("mlflow")
        if isinstance(mlflow, dict) and isinstance(mlflow.get("tracking_uri"), str):
            raw["mlflow"] = {
                **mlflow,
                "tracking_uri": resolve_tracking_uri(base, mlflow["tracking_uri"]),
            }
        elif mlflow is None:
            raw["mlflow"] = {"tracking_uri": resolve_tracking_uri(base, "sqlite:///mlflow.db")}
        if isinstance(raw.get("mlflow"), dict):
            raw["mlflow"] = {
                **raw["mlflow"],
                "artifact_location": artifact_location(base, raw["mlflow"]),
            }
    except ConfigError as exc:
        raise ConfigError(f"warehouse, artifacts or mlflow: {exc}") from None


def _input_paths(project: ProjectConfig) -> Iterator[tuple[str, str]]:
    """(config key, path as written) of every file Meld reads as input."""
    for name, source in project.sources.items():
        if source.path:
            yield f"sources.{name}.path", source.path
        if source.database is not None and source.database.path:
            yield f"sources.{name}.database.path", source.database.path
    for section in ("truth", "labels", "overrides"):
        path = getattr(getattr(project, section), "path", None)
        if path:
            yield f"{section}.path", path
    for name, spec in project.relationships:
        if isinstance(spec, BaseModel) and isinstance(getattr(spec, "path", None), str):
            yield f"relationships.{name}.path", spec.path


def _check_input_paths(project: ProjectConfig, roots: InputRoots) -> None:
    for key, path in _input_paths(project):
        try:
            resolved = project.resolve(path)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        roots.check(key, resolved)


def _validated(config_path: Path, raw: dict[str, Any]) -> ProjectConfig:
    base = config_path.parent
    roots = InputRoots.from_config(base, raw)
    _resolve_outputs(base, raw)
    try:
        project = ProjectConfig(config_path=config_path, **raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(config_path, exc)) from None
    except TypeError as exc:
        raise ConfigError(_short(str(exc))) from None
    _check_input_paths(project, roots)
    project.confine_inputs(roots)
    return project


def load_project(path: str | Path) -> ProjectConfig:
    """Read and validate a project config file.

    Args:
        path: The YAML file.

    Returns:
        The validated config with every path made absolute.

    Raises:
        ConfigError: The file is missing, is not YAML (or breaks the YAML limits),
            breaks the schema, or names an input file outside the project's folders.
            The message names the file and the key.
    """
    config_path = Path(path).expanduser().resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: project config file not found (set MELD_CONFIG)")
    raw = load_yaml_file(config_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top level")
    try:
        return _validated(config_path, dict(raw))
    except ConfigError as exc:
        message = str(exc)
        if message.startswith(str(config_path)):
            raise
        raise ConfigError(f"{config_path}: {message}") from None


def config_path_from_env() -> Path:
    """``MELD_CONFIG`` or the demo config; a relative path that does not exist from the
    working directory is taken from the repository root."""
    path = Path(os.environ.get("MELD_CONFIG", DEFAULT_CONFIG_PATH)).expanduser()
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path
