"""Which files a source's ``path`` (a file or a glob) names: one rule for every caller.

Ingestion, the landing-file sensor and ``meld check-config`` all list a source's files
with :func:`matching_files`, so the sensor never watches a file ingestion would not read.
"""

from __future__ import annotations

import glob
from pathlib import Path


def matching_files(pattern: Path) -> list[Path]:
    """The files (never folders) that ``pattern`` matches, oldest first.

    ``**`` matches folders at any depth. Files are ordered by modification time, then
    name: the order deliveries are loaded in.

    Examples:
        >>> matching_files(Path("/nowhere/*.csv"))
        []
    """
    matches = [Path(p) for p in glob.glob(str(pattern), recursive=True)]
    files = [path for path in matches if path.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, str(p)))
