"""Errors inside an asset become a Dagster failure that names where they arose, and
never a record value.

Dagster keeps a failure's description, its whole cause chain and their messages in its
event log, which lives outside the warehouse. So every error leaves an asset as a
``dg.Failure`` whose description is :func:`linkage.errors.safe_error_text` and whose
cause chain is :func:`linkage.errors.without_values`: Meld's own messages (they name
source, file, row and column), other exceptions reduced to their type and position, and
every traceback kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from linkage.errors import MeldError, safe_error_text, without_values

logger = logging.getLogger(__name__)


def failure_text(exc: BaseException | None) -> str:
    """The value-free text of a step's exception, for the ledger and MLflow.

    A ``dg.Failure`` raised by :func:`failure_at` already has a value-free description;
    any other exception is reduced by :func:`~linkage.errors.safe_error_text`.

    Examples:
        >>> failure_text(dg.Failure(description="sources.crm: file 'crm.csv' is empty"))
        "sources.crm: file 'crm.csv' is empty"
        >>> failure_text(KeyError("anna@example.se"))
        'KeyError'
    """
    if exc is None:
        return "step failed"
    if isinstance(exc, dg.Failure):
        return exc.description or "step failed"
    return safe_error_text(exc)


def _passes_through(exc: BaseException) -> bool:
    """Dagster's own exceptions (a failure, a retry request) carry no record values."""
    return type(exc).__module__.split(".")[0] == "dagster"


@contextmanager
def failure_at(where: object | None = None) -> Iterator[None]:
    """Re-raise any error as ``dg.Failure("<where>: <error>")`` without record values.

    ``where`` is typically the config file and key, e.g. ``"project.yaml: sources.crm"``.
    A :class:`~linkage.errors.MeldError` keeps its message (without ``where``, it is the
    description). Any other exception (a bug, a library error) is reduced to its type and
    position, logged as such, and raised as a failure too; its traceback stays in the
    cause chain, its message does not.

    Examples:
        ```py
        with warehouse.connect() as con, failure_at(f"{project.config_path}: sources.crm"):
            load_source(con, spec, run_id=context.run_id)
        ```
    """
    try:
        yield
    except MeldError as exc:
        description = str(exc) if where is None else f"{where}: {exc}"
        raise dg.Failure(description=description) from without_values(exc)
    except Exception as exc:
        if _passes_through(exc):
            raise
        description = safe_error_text(exc, where=None if where is None else str(where))
        logger.error("step failed: %s", description)
        raise dg.Failure(description=description) from without_values(exc)
