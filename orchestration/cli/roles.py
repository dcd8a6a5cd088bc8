"""``meld roles``: the roles a project declares and what each sees; and how the read
commands (``meld customer``, ``meld explain``, ``meld explain-customer``) choose theirs.

A read command takes ``--role NAME``, else the environment variable ``MELD_ROLE``,
else the config's ``roles.default_role`` (the least privileged role). ``--mask`` masks
whatever the chosen role would see in clear: it never shows more than the role.

Examples:
    ```sh
    meld roles                                  # field by field, role by role
    MELD_ROLE=service meld customer anna@example.com
    meld customer cus_00a36e81bcfd0080 --role steward --mask
    ```
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.privacy.role_policy import Role, role_view_columns
from linkage.tables import role_schema

ROLE_ENV = "MELD_ROLE"


def add_role_arguments(parser: argparse.ArgumentParser) -> None:
    """``--role`` and ``--mask`` for a read command."""
    parser.add_argument(
        "--role",
        help=f"whose view: a role of the config (default: ${ROLE_ENV}, else roles.default_role)",
    )
    parser.add_argument(
        "--mask", action="store_true", help="mask what the role would see in clear, too"
    )


def chosen_role(project: ProjectConfig, args: argparse.Namespace) -> Role:
    """The role a read command shows its output as (see the module docstring).

    Raises:
        RoleError: The name is not a declared role.
    """
    role = project.roles.role(args.role or os.environ.get(ROLE_ENV) or None)
    return role.masked() if args.mask else role


def role_note(project: ProjectConfig, role: Role) -> str:
    """One line saying whose view is shown and what it leaves out, for stderr."""
    seen = role_view_columns(role, project.custom_fields)
    hidden = [f for f, v in seen.items() if v == "hidden"]
    masked = [f for f, v in seen.items() if v == "masked"]
    default = " (the default role)" if role.name == project.roles.default_role else ""
    parts = [f"shown as role {role.name}{default}"]
    if hidden:
        parts.append(f"hidden: {', '.join(hidden)}")
    if masked:
        parts.append(f"masked: {', '.join(masked)}")
    if not hidden and not masked:
        parts.append("every field in clear")
    return "; ".join(parts) + f" (--role or ${ROLE_ENV} to change)"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``meld roles`` to the command line."""
    parser = commands.add_parser("roles", help="list the roles and what each sees")
    parser.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_roles)


def _roles(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    roles = project.roles.all_roles()
    custom = project.custom_fields
    if args.json:
        payload = {
            "default_role": project.roles.default_role,
            "roles": {
                r.name: {
                    "description": r.description,
                    "schema": role_schema(r.name),
                    "fields": role_view_columns(r, custom),
                }
                for r in roles
            },
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(format_roles(project, roles))
    return 0


def format_roles(project: ProjectConfig, roles: list[Role]) -> str:
    """A table of every field's visibility, one column per role."""
    custom = project.custom_fields
    columns = {r.name: role_view_columns(r, custom) for r in roles}
    fields = list(dict.fromkeys(f for seen in columns.values() for f in seen))
    width = max(len(f) for f in (*fields, "other fields")) + 2
    names = [r.name + ("*" if r.name == project.roles.default_role else "") for r in roles]
    cell = max(9, *(len(n) + 2 for n in names))
    lines = ["field".ljust(width) + "".join(n.ljust(cell) for n in names)]
    for f in fields:
        lines.append(f.ljust(width) + "".join(columns[r.name][f].ljust(cell) for r in roles))
    lines.append("other fields".ljust(width) + "".join(r.other_fields.ljust(cell) for r in roles))
    lines.append("")
    lines.append(
        f"* default role (used without --role or ${ROLE_ENV}). Views: schema role_<name>, "
        "one view per customer table."
    )
    lines += [f"{r.name}: {r.description}" for r in roles if r.description]
    return "\n".join(line.rstrip() for line in lines)


def print_role_note(project: ProjectConfig, role: Role) -> None:
    """Say on stderr whose view the output is."""
    print(role_note(project, role), file=sys.stderr)
