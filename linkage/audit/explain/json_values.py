"""JSON-ready values of the explanations: dates, decimals, paths and steward decisions.

Examples:
    >>> from datetime import date
    >>> plain_value({"at": date(2026, 1, 5), "ids": ("a", "b")})
    {'at': '2026-01-05', 'ids': ['a', 'b']}
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from linkage.cluster.overrides.decisions import Override
from linkage.master.customer_view import mask_reference

logger = logging.getLogger(__name__)


def plain_value(value: Any) -> Any:
    """Dates, timestamps and decimals as JSON-ready values, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def override_json(override: Override, *, mask: bool) -> dict[str, Any]:
    """A stored steward decision as JSON, its record ids masked when asked."""
    data: dict[str, Any] = override.to_json()
    if mask:
        for key in ("record_a", "record_b"):
            if data[key] is not None:
                data[key] = mask_reference(data[key])
    return data
