"""The base class of Meld's own errors.

Every error Meld raises on purpose (a bad config, an unreadable source, a refused
steward decision, a tampered ledger, ...) derives from :class:`MeldError`, so the
command line can print any of them as one clear line and exit with status 1, while a
bug still shows its traceback. Each subclass also keeps the built-in base it had
(``ValueError``, ``LookupError``, ...), so callers that catch those keep working.
"""

from __future__ import annotations


class MeldError(Exception):
    """An error of Meld's own; its message says what was expected, found and where."""
