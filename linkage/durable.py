"""Make a write survive a power cut: flush a file, or a folder's entries, to disk.

An atomic file replace is write to a temporary name, flush it, ``os.replace`` it over
the target, then flush the folder so the rename itself is on disk.

Examples:
    ```py
    temp.write_text(text, encoding="utf-8")
    fsync_path(temp)
    os.replace(temp, target)
    fsync_path(target.parent)
    ```
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file's content, or a folder's entries) to disk, where the
    system allows it (some file systems refuse to sync a folder: then nothing)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
