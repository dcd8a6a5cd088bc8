"""Paths in a project config are relative to the config file's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def resolve_path(base: Path, relative: str) -> Path:
    """Resolve ``relative`` against ``base`` unless it is absolute; ``~`` is expanded."""
    path = Path(relative).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def resolve_tracking_uri(base: Path, uri: str) -> str:
    """Make a relative ``sqlite:///file.db`` URI absolute against the config folder."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(resolve_path(base, uri[len(prefix) :]))
    if "://" not in uri:
        return str(resolve_path(base, uri))
    return uri


def artifact_location(base: Path, mlflow: dict[str, Any]) -> str:
    """Resolve the artifact folder; by default ``mlartifacts/`` beside a sqlite store."""
    given = mlflow.get("artifact_location")
    if given:
        return str(resolve_path(base, str(given)))
    uri = str(mlflow.get("tracking_uri", ""))
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///") :]).parent / "mlartifacts")
    return str(base / "mlartifacts")
