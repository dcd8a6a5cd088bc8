"""How the run report writes values: numbers, changes, durations and nested ledger keys.

Examples:
    >>> format_value(12345), format_delta(0.95, 0.97)
    ('12,345', '-0.02')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)

NA = "n/a"


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """The text the report shows for a value: ``n/a`` for missing, grouped integers.

    Examples:
        >>> format_value(None)
        'n/a'
        >>> format_value(12345)
        '12,345'
        >>> format_value(720.0)
        '720'
        >>> format_value(0.98765)
        '0.9877'
        >>> format_value(float("-inf"))
        '-inf'
        >>> format_value(True)
        'yes'
    """
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return NA
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return str(value)


def format_delta(current: Any, previous: Any) -> str:
    """``current - previous`` with its sign, or ``n/a`` when either is not a number.

    Examples:
        >>> format_delta(10, 7)
        '+3'
        >>> format_delta(5, 5)
        '0'
        >>> format_delta(0.95, 0.97)
        '-0.02'
        >>> format_delta(3, None)
        'n/a'
    """
    if not (is_number(current) and is_number(previous)):
        return NA
    delta = current - previous
    if isinstance(delta, float) and math.isnan(delta):
        return NA
    if delta == 0:
        return "0"
    if isinstance(delta, int):
        return f"{delta:+,}"
    return f"{delta:+.4g}"


def nested_get(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    """``mapping[k1][k2]...``, or None when any level is missing or not a mapping."""
    value: Any = mapping
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def run_duration(entry: Mapping[str, Any]) -> str:
    """How long the run took, from its ``started_at`` and ``ended_at`` (``n/a`` without).

    Examples:
        >>> run_duration({"started_at": "2026-01-05T10:00:00Z", "ended_at": "2026-01-05T12:02:30"})
        '2h 02m 30s'
    """
    started, ended = _parse_time(entry.get("started_at")), _parse_time(entry.get("ended_at"))
    if started is None or ended is None:
        return NA
    seconds = int((ended - started).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"
