"""The base class of Meld's own errors.

Every error Meld raises on purpose (a bad config, an unreadable source, a refused
steward decision, a tampered ledger, ...) derives from :class:`MeldError`, so the
command line can print any of them as one clear line and exit with status 1, while a
bug still shows its traceback. Each subclass also keeps the built-in base it had
(``ValueError``, ``LookupError``, ...), so callers that catch those keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
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


# Error texts that leave the warehouse --------------------------------------------------
#
# Logs, the run ledger, MLflow and Dagster's event log keep error texts; none may quote a
# record value. Meld's own errors name sources, files, rows and columns only (their raise
# sites are written that way); any other exception's message may quote a value (DuckDB's
# "Could not convert string 'Anna' ...", Arrow's "Expected 11 columns, got 3: <row>"), so
# it is reduced to its type and a position.

SCHEMA_ERRORS: frozenset[str] = frozenset({"duckdb CatalogException", "duckdb BinderException"})
"""Third-party errors about names (tables, columns), not data: their first line is kept."""

MAX_SCHEMA_ERROR_CHARS = 300

_POSITION = re.compile(r"\b(row|line|column|byte|offset|position)\s*(?:#|:)?\s*(\d+)", re.I)


class RedactedError(MeldError):
    """Stands in for a third-party exception whose message may quote record values.

    Its message is :func:`safe_error_text` of the original (so, Meld's own words); its
    traceback is the original's, so where it happened stays visible.
    """


def error_kind(exc: BaseException) -> str:
    """The exception's library and type, e.g. ``duckdb ConversionException``.

    Examples:
        >>> error_kind(UnicodeDecodeError("utf-8", b"\\xff", 0, 1, "invalid start byte"))
        'UnicodeDecodeError'
        >>> import json
        >>> error_kind(json.JSONDecodeError("Expecting value", "x", 0))
        'json JSONDecodeError'
    """
    library = type(exc).__module__.split(".")[0].lstrip("_")
    name = type(exc).__qualname__
    return name if library in ("builtins", "__main__", "") else f"{library} {name}"


def _position(exc: BaseException) -> str | None:
    """Where in its input the exception arose, as numbers only, when it says."""
    if isinstance(exc, UnicodeError) and isinstance(getattr(exc, "start", None), int):
        encoding = getattr(exc, "encoding", None)
        return f"{encoding}, byte {exc.start}" if encoding else f"byte {exc.start}"
    lineno, colno = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if isinstance(lineno, int):
        return f"line {lineno}, column {colno}" if isinstance(colno, int) else f"line {lineno}"
    # Values in messages are quoted; a position comes before the first quote, if at all.
    head = re.split(r"['\"`]", str(exc), maxsplit=1)[0]
    found = [f"{word.lower()} {number}" for word, number in _POSITION.findall(head)[:2]]
    return ", ".join(found) or None


def safe_error_text(exc: BaseException, *, where: str | None = None) -> str:
    """An error's text without record values, for logs, the ledger, MLflow and Dagster.

    A :class:`MeldError` keeps its message: Meld's raise sites name the source, file, row
    and column, never a value. Any other exception is reduced to its library, type and
    the position it names (a row, line or byte); DuckDB errors about a missing table or
    column (:data:`SCHEMA_ERRORS`) keep their first line, which names only those.

    Args:
        exc: The exception.
        where: The location to prefix, e.g. ``"source 'crm', file 'crm.csv'"``.

    Examples:
        >>> safe_error_text(ValueError("Could not convert string 'Anna' to INT32"))
        'ValueError'
        >>> import pyarrow as pa
        >>> safe_error_text(pa.ArrowInvalid("CSV parse error: Row #12: Expected 11 columns, "
        ...                                 "got 3: 'Anna,Berg,anna@example.se'"),
        ...                 where="source 'crm', file 'crm.csv'")
        "source 'crm', file 'crm.csv': pyarrow ArrowInvalid (row 12)"
        >>> safe_error_text(MeldError("source 'crm', row 3: column 'dob' is not a date"))
        "source 'crm', row 3: column 'dob' is not a date"
    """
    if isinstance(exc, MeldError):
        text = str(exc)
    else:
        kind = error_kind(exc)
        position = _position(exc)
        text = f"{kind} ({position})" if position else kind
        if kind in SCHEMA_ERRORS and str(exc).strip():
            text = f"{kind}: {str(exc).strip().splitlines()[0][:MAX_SCHEMA_ERROR_CHARS]}"
    return f"{where}: {text}" if where else text


def without_values(exc: BaseException, *, _depth: int = 0) -> BaseException:
    """The exception chain of ``exc`` with every message that may hold values replaced.

    Meld's own errors are kept (their causes are replaced in place); any other exception
    becomes a :class:`RedactedError` with :func:`safe_error_text` and the original
    traceback. Raise a wrapper ``from without_values(exc)`` so that logs and Dagster's
    event log, which print the whole cause chain, show where and what, never a value.

    Examples:
        >>> clean = without_values(ValueError("bad value 'Anna'"))
        >>> type(clean).__name__, str(clean)
        ('RedactedError', 'ValueError')
    """
    if isinstance(exc, MeldError):
        clean: BaseException = exc
    else:
        clean = RedactedError(safe_error_text(exc)).with_traceback(exc.__traceback__)
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    deeper = _depth < 8
    clean.__cause__ = without_values(cause, _depth=_depth + 1) if cause and deeper else None
    keep_context = context is not None and not suppress and context is not cause and deeper
    clean.__context__ = without_values(context, _depth=_depth + 1) if keep_context else None
    clean.__suppress_context__ = suppress or not keep_context
    return clean


def missing_columns_text(
    wanted: Mapping[str, str],
    found: Sequence[str],
    *,
    what: str = "the file",
    max_listed: int = 5,
) -> str | None:
    """What to say when columns a config names are not in a file's header, or None.

    It names the missing columns and counts the file's, never lists them: a file
    delivered without its header row has its first record where the names should be.

    Args:
        wanted: Config key (or ``""``) -> the column it names.
        found: The column names of the file.
        what: The file, as the message should call it.
        max_listed: Most missing columns named; the others are counted.

    Examples:
        >>> missing_columns_text({"id_column": "id", "fields.email": "mail"},
        ...                      ["1", "Anna", "anna@example.se"])
        "columns 'id' (config key id_column), 'mail' (config key fields.email) not found; \
the file's 3 columns include none of those expected (is the header row missing?)"
        >>> missing_columns_text({"id_column": "id", "fields.email": "mail"}, ["id", "email"],
        ...                      what="the delivery")
        "column 'mail' (config key fields.email) not found; the delivery's 2 columns include \
1 of those expected"
    """
    missing = [(key, column) for key, column in wanted.items() if column not in found]
    if not missing:
        return None
    listed = ", ".join(
        f"'{column}' (config key {key})" if key else f"'{column}'"
        for key, column in missing[:max_listed]
    )
    if len(missing) > max_listed:
        listed += f" and {len(missing) - max_listed} more"
    noun = "column" if min(len(missing), max_listed) == 1 else "columns"
    named = len(set(found) & set(wanted.values()))
    count = f"{what}'s {len(found)} column{'' if len(found) == 1 else 's'}"
    if named == 0:
        hint = f"{count} include none of those expected (is the header row missing?)"
    else:
        hint = f"{count} include {named} of those expected"
    return f"{noun} {listed} not found; {hint}"
