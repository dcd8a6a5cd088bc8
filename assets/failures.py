"""Meld's own errors inside an asset become a Dagster failure that names where they arose."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from linkage.errors import MeldError


@contextmanager
def failure_at(where: object | None = None) -> Iterator[None]:
    """Re-raise any :class:`~linkage.errors.MeldError` as ``dg.Failure("<where>: <error>")``.

    ``where`` is typically the config file and key, e.g. ``"project.yaml: sources.crm"``;
    without it the error's own message is the description. Bugs (any other exception)
    pass through with their traceback.
    """
    try:
        yield
    except MeldError as exc:
        description = str(exc) if where is None else f"{where}: {exc}"
        raise dg.Failure(description=description) from exc
