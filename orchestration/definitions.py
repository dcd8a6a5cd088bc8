"""The one Dagster ``Definitions`` of Meld, for the config named by ``MELD_CONFIG``.

The config file is read here and only here, when Dagster loads this module:
``MELD_CONFIG`` (default ``config/demo.yaml``). Everything else builds definitions for
an explicit config through :mod:`orchestration.build`.
"""

from __future__ import annotations

from linkage.config import config_path_from_env
from orchestration.build import build_definitions

defs = build_definitions(config_path_from_env())
