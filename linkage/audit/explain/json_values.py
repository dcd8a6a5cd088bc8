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
from linkage.privacy.role_policy import Role
from linkage.privacy.role_sql import shown_reference

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


def override_json(override: Override, *, role: Role) -> dict[str, Any]:
    """A stored steward decision as JSON, its record ids as ``role`` sees them."""
    data: dict[str, Any] = override.to_json()
    for key in ("record_a", "record_b"):
        if data[key] is not None:
            data[key] = shown_reference(role, data[key])
    return data
