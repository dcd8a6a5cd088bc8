"""The base class of Meld's own errors.

Every error Meld raises on purpose (a bad config, an unreadable source, a refused
steward decision, a tampered ledger, ...) derives from :class:`MeldError`, so the
command line can print any of them as one clear line and exit with status 1, while a
bug still shows its traceback. Each subclass also keeps the built-in base it had
(``ValueError``, ``LookupError``, ...), so callers that catch those keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MeldError(Exception):
    """An error of Meld's own; its message says what was expected, found and where."""


@contextmanager
def at_config_key(key: str) -> Iterator[None]:
    """Prefix a Meld error raised inside with the config key it concerns.

    The error keeps its type; only its message gains ``"<key>: "``.

    Examples:
        ```py
        with at_config_key("labels"):
            load_labels(con, path=...)  # LabelsError("labels: no file at ...")
        ```
    """
    try:
        yield
    except MeldError as exc:
        raise type(exc)(f"{key}: {exc}") from exc
