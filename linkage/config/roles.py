"""The ``roles:`` section: who sees which personal field in clear, masked or not at all.

Each role names the fields it sees (``clear``, ``masked`` or ``hidden``); fields it does
not name, custom fields included, follow its ``other_fields`` (default ``hidden``).
``default_role`` is the role of anyone who does not say (``--role``, ``MELD_ROLE``):
the least privileged one. Without the section, four built-in roles apply:

==============  =======  =======  =========  =======
field           steward  service  marketing  analyst
==============  =======  =======  =========  =======
first_name      clear    clear    clear      hidden
last_name       clear    clear    clear      hidden
date_of_birth   clear    masked   hidden     masked
email           clear    masked   clear      hidden
phone           clear    masked   hidden     hidden
street          clear    clear    clear      hidden
postcode        clear    clear    clear      masked
city, country   clear    clear    clear      clear
loyalty_card    clear    masked   masked     hidden
customer_number clear    masked   masked     hidden
national_id,    clear    hidden   hidden     hidden
device_id,
cookie_id
record_id       clear    masked   masked     masked
other fields    clear    hidden   hidden     hidden
==============  =======  =======  =========  =======

and the default role is ``analyst``. A ``roles.roles`` mapping in the config replaces
the built-in roles entirely.

Examples:
    ```yaml
    roles:
      default_role: analyst
      roles:
        steward: {description: resolves matches, other_fields: clear}
        analyst:
          fields: {date_of_birth: masked, postcode: masked, city: clear, country: clear}
    ```
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import Field, field_validator, model_validator

from linkage.config.base import SOURCE_NAME_PATTERN, StrictModel
from linkage.privacy.role_policy import ROLE_FIELDS, Role, RoleError, Visibility

SPLIT_FIELDS: dict[str, tuple[str, ...]] = {
    "full_name": ("first_name", "last_name"),
    "address": ("street", "postcode", "city", "country"),
}
"""Source fields split during staging: a role names their parts."""


class RoleConfig(StrictModel):
    """What one role sees."""

    description: str = Field(default="", max_length=500, description="Who the role is for.")
    fields: dict[str, Visibility] = Field(
        default_factory=dict,
        description=f"clear, masked or hidden per field: {list(ROLE_FIELDS)} or a custom field.",
    )
    other_fields: Visibility = Field(
        default="hidden", description="Visibility of every field not listed."
    )

    @field_validator("fields")
    @classmethod
    def _split_fields_named_by_parts(cls, value: dict[str, Visibility]) -> dict[str, Visibility]:
        for name, parts in SPLIT_FIELDS.items():
            if name in value:
                raise ValueError(f"{name!r} is split during staging; name its parts {list(parts)}")
        return value

    def to_role(self, name: str) -> Role:
        """This role as the domain code takes it."""
        return Role(
            name=name,
            fields=dict(self.fields),
            other_fields=self.other_fields,
            description=self.description,
        )


def _everything(visibility: Visibility) -> dict[str, Visibility]:
    return dict.fromkeys(ROLE_FIELDS, visibility)


BUILT_IN_ROLES: dict[str, RoleConfig] = {
    "steward": RoleConfig(
        description="Data stewards: resolve matches and erasures; see every value.",
        other_fields="clear",
    ),
    "service": RoleConfig(
        description="Customer service: recognise a caller; contact details and "
        "identifiers only masked.",
        fields={
            **_everything("clear"),
            "date_of_birth": "masked",
            "email": "masked",
            "phone": "masked",
            "national_id": "hidden",
            "loyalty_card": "masked",
            "customer_number": "masked",
            "device_id": "hidden",
            "cookie_id": "hidden",
            "record_id": "masked",
        },
    ),
    "marketing": RoleConfig(
        description="Marketing: names, e-mail and postal address to contact customers; "
        "no birth date, phone or identifiers.",
        fields={
            **_everything("hidden"),
            "first_name": "clear",
            "last_name": "clear",
            "email": "clear",
            "street": "clear",
            "postcode": "clear",
            "city": "clear",
            "country": "clear",
            "loyalty_card": "masked",
            "customer_number": "masked",
            "record_id": "masked",
        },
    ),
    "analyst": RoleConfig(
        description="Analysts: no direct identifiers; birth year and postcode prefix only.",
        fields={
            **_everything("hidden"),
            "date_of_birth": "masked",
            "postcode": "masked",
            "city": "clear",
            "country": "clear",
            "record_id": "masked",
        },
    ),
}
"""The roles of a project whose config has no ``roles.roles``."""

DEFAULT_ROLE = "analyst"


class RolesConfig(StrictModel):
    """The roles a project declares, and the role of anyone who does not say."""

    default_role: str = Field(
        default=DEFAULT_ROLE,
        description="The role used without --role or MELD_ROLE: the least privileged one.",
    )
    roles: dict[str, RoleConfig] = Field(
        default_factory=lambda: dict(BUILT_IN_ROLES),
        min_length=1,
        description="Role name to what it sees; replaces the built-in roles when given.",
    )

    @field_validator("roles")
    @classmethod
    def _role_names(cls, value: dict[str, RoleConfig]) -> dict[str, RoleConfig]:
        bad = sorted(name for name in value if not re.match(SOURCE_NAME_PATTERN, name))
        if bad:
            raise ValueError(
                f"role name(s) {bad} must be lower case letters, digits and _ (they name "
                "the DuckDB schema role_<name>)"
            )
        return value

    @model_validator(mode="after")
    def _default_is_declared(self) -> RolesConfig:
        if self.default_role not in self.roles:
            raise ValueError(
                f"default_role {self.default_role!r} is not a declared role; "
                f"declared: {sorted(self.roles)}"
            )
        return self

    def check_fields(self, custom_fields: Iterable[str]) -> None:
        """Every field a role names is a role field or one of the project's custom fields.

        Raises:
            ValueError: naming the role and the unknown field(s).
        """
        known = {*ROLE_FIELDS, *custom_fields}
        for name, role in self.roles.items():
            unknown = sorted(set(role.fields) - known)
            if unknown:
                raise ValueError(
                    f"roles.roles.{name}.fields: unknown field(s) {unknown}; expected some "
                    f"of {sorted(known)}"
                )

    def role(self, name: str | None = None) -> Role:
        """The role called ``name``; the default role when ``name`` is None or empty.

        Raises:
            RoleError: No such role is declared.
        """
        chosen = name or self.default_role
        if chosen not in self.roles:
            raise RoleError(
                f"unknown role {chosen!r}; the project declares {', '.join(sorted(self.roles))} "
                "(config key roles.roles)"
            )
        return self.roles[chosen].to_role(chosen)

    def all_roles(self) -> list[Role]:
        """Every declared role, in config order."""
        return [config.to_role(name) for name, config in self.roles.items()]
