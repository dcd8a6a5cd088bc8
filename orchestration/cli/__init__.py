"""The ``meld`` command line: look at what the pipeline produced, audit it, steward it.

One module per command group: :mod:`orchestration.cli.summary` (``summary``,
``check-config``), :mod:`~orchestration.cli.overrides` (steward decisions),
:mod:`~orchestration.cli.customer`, :mod:`~orchestration.cli.explain`,
:mod:`~orchestration.cli.roles` (who sees what) and
:mod:`~orchestration.cli.audit` (the run ledger). Any of Meld's own errors
(:class:`linkage.errors.MeldError`) is printed as its message alone, without a
traceback: exit status 2 for a bad project config (a usage error, as argparse gives),
1 for every other.

Examples:
    ```sh
    meld summary                 # records, quarantine, customers, evaluation, where to look
    meld check-config other.yaml # validate a project config without running anything
    ```
"""

from __future__ import annotations

import argparse
import sys

from linkage.config import ConfigError
from linkage.errors import MeldError
from orchestration.cli.audit import register as register_audit_commands
from orchestration.cli.backup import register as register_backup_commands
from orchestration.cli.customer import register as register_customer_command
from orchestration.cli.explain import register as register_explain_commands
from orchestration.cli.overrides import register as register_override_commands
from orchestration.cli.privacy import register as register_privacy_commands
from orchestration.cli.roles import register as register_roles_command
from orchestration.cli.summary import register as register_summary_commands

CONFIG_ERROR_STATUS = 2
MELD_ERROR_STATUS = 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meld`` command."""
    parser = argparse.ArgumentParser(prog="meld", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    register_summary_commands(commands)
    register_override_commands(commands)
    register_customer_command(commands)
    register_explain_commands(commands)
    register_roles_command(commands)
    register_audit_commands(commands)
    register_privacy_commands(commands)
    register_backup_commands(commands)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return CONFIG_ERROR_STATUS
    except MeldError as exc:
        print(str(exc), file=sys.stderr)
        return MELD_ERROR_STATUS
