"""Thin Dagster adapters over the domain code in ``linkage`` and ``training``.

These modules do not use ``from __future__ import annotations``: Dagster reads the
annotations of asset functions (context and resource types) at definition time, and
string annotations inside factory functions cannot be resolved.
"""
