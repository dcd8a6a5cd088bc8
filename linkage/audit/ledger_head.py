"""The ledger head file: the newest ledger row's sequence number and hash, kept outside
the warehouse so that dropping the newest rows (which leaves a valid chain) is seen.

The file holds one line, ``<seq> <row_hash>``, and is only ever replaced whole: written
to a temporary file in the same folder, flushed to disk, then renamed over the old one
(``os.replace``, atomic on POSIX and Windows). A kill leaves the old head or the new
one, never a torn line. The row is committed before its head is written, so a kill
between the two leaves the head one row *behind* the table, which
:func:`linkage.audit.ledger.verify_ledger` tells apart from tampering.

Examples:
    ```py
    write_ledger_head(Path("artifacts/audit/ledger_head.txt"), 7, "9f2c...")
    read_ledger_head(Path("artifacts/audit/ledger_head.txt"))  # (7, "9f2c...")
    ```
"""

from __future__ import annotations

import os
from pathlib import Path

from linkage.durable import fsync_path


def write_ledger_head(head_file: Path, seq: int, row_hash: str) -> None:
    """Replace ``head_file`` with the line ``<seq> <row_hash>``, atomically.

    Raises:
        OSError: The folder cannot be created or written; the old head is untouched.
    """
    head_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = head_file.with_name(f".{head_file.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as out:
            out.write(f"{seq} {row_hash}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, head_file)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(head_file.parent)


def read_ledger_head(head_file: Path) -> tuple[int, str] | None:
    """The ``(seq, row_hash)`` the head file records; None when there is no file or no
    head line in it. A file of the older append-only format gives its last line.

    Raises:
        OSError: The file exists and cannot be read.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ledger_head.txt"
        >>> read_ledger_head(path) is None
        True
        >>> write_ledger_head(path, 3, "ab" * 32)
        >>> read_ledger_head(path) == (3, "ab" * 32)
        True
    """
    try:
        text = head_file.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    lines = [line.split() for line in text.splitlines()]
    heads = [(int(parts[0]), parts[1]) for parts in lines if len(parts) == 2 and parts[0].isdigit()]
    return heads[-1] if heads else None
