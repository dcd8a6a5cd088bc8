"""Paths in a project config: relative to the config file's folder, and input files
confined to it.

Input files (sources, truth, labels, steward overrides, orders and products) must lie
inside the config file's folder, or inside a folder the config names as a data root::

    data_roots: [/srv/landing, ../shared]   # absolute, or relative to this file
    allow_paths_outside_project: true       # or: any path on the machine

A path that leaves these folders (``../../outside/x.csv``, or a symlink pointing
elsewhere) is a :class:`~linkage.config.base.ConfigError` naming the config key. Where
Meld writes (warehouse, artifacts, MLflow) is the operator's choice and is not confined.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkage.config.base import ConfigError, shown

__all__ = [
    "ALLOW_OUTSIDE_KEY",
    "DATA_ROOTS_KEY",
    "InputRoots",
    "artifact_location",
    "resolve_path",
    "resolve_tracking_uri",
]

DATA_ROOTS_KEY = "data_roots"
ALLOW_OUTSIDE_KEY = "allow_paths_outside_project"
_GLOB_CHARACTERS = frozenset("*?[")


def resolve_path(base: Path, relative: str) -> Path:
    """Resolve ``relative`` against ``base`` unless it is absolute; ``~`` is expanded.

    Raises:
        ConfigError: The path holds a NUL character or names an unknown user's home.
    """
    try:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    except (ValueError, RuntimeError, OSError) as exc:
        raise ConfigError(f"path {shown(relative)} is not usable: {exc}") from None


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


def _shown_path(path: Path | str, limit: int = 160) -> str:
    """A path for a message: cut in the middle when longer than ``limit``."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2 - 3]}...{text[-(limit // 2) :]}"


def _real(path: Path) -> Path:
    """``path`` with every symlink that exists resolved, and ``..`` applied."""
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class InputRoots:
    """The folders input files may be in (already resolved), or anywhere.

    Examples:
        >>> roots = InputRoots((Path("/srv/project"),))
        >>> roots.check("sources.crm.path", Path("/srv/project/landing/crm_*.csv"))
        >>> try:
        ...     roots.check("sources.crm.path", Path("/srv/project/../outside/x.csv"))
        ... except ConfigError as exc:
        ...     print(str(exc).split(";")[0])
        sources.crm.path: /srv/project/../outside/x.csv is outside the project folder
    """

    folders: tuple[Path, ...]
    anywhere: bool = False

    @classmethod
    def from_config(cls, base: Path, raw: dict[str, Any]) -> InputRoots:
        """Take ``data_roots`` and ``allow_paths_outside_project`` out of a config mapping.

        Raises:
            ConfigError: A key has the wrong type or a root is not usable.
        """
        anywhere = raw.pop(ALLOW_OUTSIDE_KEY, False)
        if not isinstance(anywhere, bool):
            raise ConfigError(f"{ALLOW_OUTSIDE_KEY}: expected true or false")
        given = raw.pop(DATA_ROOTS_KEY, None) or []
        if isinstance(given, str) or not isinstance(given, list):
            raise ConfigError(f"{DATA_ROOTS_KEY}: expected a list of folders")
        folders = [base]
        for index, root in enumerate(given):
            if not isinstance(root, str) or not root.strip():
                raise ConfigError(f"{DATA_ROOTS_KEY}.{index}: expected a folder path")
            try:
                folders.append(resolve_path(base, root))
            except ConfigError as exc:
                raise ConfigError(f"{DATA_ROOTS_KEY}.{index}: {exc}") from None
        return cls(tuple(dict.fromkeys(_real(folder) for folder in folders)), anywhere)

    def contains(self, path: Path) -> bool:
        """Whether ``path`` (symlinks resolved) is inside one of the folders."""
        real = _real(path)
        return self.anywhere or any(real == f or f in real.parents for f in self.folders)

    def check(self, key: str, pattern: Path) -> None:
        """Refuse a file or glob that reaches outside the folders.

        The part of ``pattern`` before its first wildcard must lie inside a folder, the
        part after it may not climb with ``..``, and every file it matches today must
        lie inside a folder once its symlinks are resolved.

        Raises:
            ConfigError: Naming ``key`` and what lies outside.
        """
        if self.anywhere:
            return
        parts = pattern.parts
        first_glob = next(
            (i for i, part in enumerate(parts) if _GLOB_CHARACTERS & set(part)), len(parts)
        )
        if ".." in parts[first_glob:]:
            raise ConfigError(f"{key}: '..' after a wildcard may leave the project folder")
        fixed = Path(*parts[:first_glob]) if first_glob else pattern
        if not self.contains(fixed):
            raise ConfigError(
                f"{key}: {_shown_path(fixed)} is outside the project folder; {self._hint()}"
            )
        for match in glob.glob(str(pattern), recursive=True):
            if not self.contains(Path(match)):
                raise ConfigError(
                    f"{key}: {_shown_path(match)} leads outside the project folder (a symlink "
                    f"to {_shown_path(_real(Path(match)))}); {self._hint()}"
                )

    def _hint(self) -> str:
        folders = ", ".join(_shown_path(folder) for folder in self.folders[:5])
        return (
            f"input files must be under {folders}; add the folder to '{DATA_ROOTS_KEY}' "
            f"or set '{ALLOW_OUTSIDE_KEY}: true'"
        )
