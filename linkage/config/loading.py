"""Read a project config file: YAML in, a validated :class:`ProjectConfig` out.

The file's path comes from ``MELD_CONFIG`` (default ``config/demo.yaml``) and is read
once, when the Dagster definitions are built. Every error names the file, the source and
the key at fault.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from linkage.config.base import ConfigError
from linkage.config.paths import artifact_location, resolve_path, resolve_tracking_uri
from linkage.config.project import ProjectConfig

DEFAULT_CONFIG_PATH = "config/demo.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid project config"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<top level>"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_project(path: str | Path) -> ProjectConfig:
    """Read and validate a project config file.

    Args:
        path: The YAML file.

    Returns:
        The validated config with every path made absolute.

    Raises:
        ConfigError: The file is missing, is not YAML, or breaks the schema. The
            message names the file and the key.
    """
    config_path = Path(path).expanduser().resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: project config file not found (set MELD_CONFIG)")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top level")
    base = config_path.parent
    raw = dict(raw)
    if "warehouse" not in raw:
        raise ConfigError(f"{config_path}: warehouse: required key missing")
    raw["warehouse"] = resolve_path(base, str(raw["warehouse"]))
    raw["artifacts"] = resolve_path(
        base, str(raw.get("artifacts") or Path(str(raw["warehouse"])).parent / "artifacts")
    )
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
    try:
        return ProjectConfig(config_path=config_path, **raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(config_path, exc)) from exc
    except TypeError as exc:
        raise ConfigError(f"{config_path}: {exc}") from exc


def config_path_from_env() -> Path:
    """``MELD_CONFIG`` or the demo config; a relative path that does not exist from the
    working directory is taken from the repository root."""
    path = Path(os.environ.get("MELD_CONFIG", DEFAULT_CONFIG_PATH)).expanduser()
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path
