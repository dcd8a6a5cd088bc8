"""Backups of a project: the warehouse, its artifacts, the MLflow store and artifacts.

- :mod:`~linkage.backup.parts`: where a project keeps each part, and where each sits in
  a backup folder;
- :mod:`~linkage.backup.copy`: take a consistent backup (``meld backup``);
- :mod:`~linkage.backup.manifest`: ``manifest.json``, every file with size and SHA-256;
- :mod:`~linkage.backup.restore`: verify a backup and swap it into a project
  (``meld restore``).

The MLflow-specific step, rewriting the store's absolute artifact paths when a backup is
restored elsewhere, is :mod:`training.mlflow_backup`. ``docs/backup.md`` is the guide.
"""

from linkage.backup.copy import create_backup
from linkage.backup.manifest import BackupError, Manifest
from linkage.backup.parts import ProjectParts
from linkage.backup.restore import RestoreOutcome, restore_backup, verify_backup

__all__ = [
    "BackupError",
    "Manifest",
    "ProjectParts",
    "RestoreOutcome",
    "create_backup",
    "restore_backup",
    "verify_backup",
]
