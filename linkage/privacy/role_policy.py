"""What a role sees of each personal field: ``clear``, ``masked`` or ``hidden``.

A :class:`Role` is plain data, made from the ``roles:`` section of the project config
(:mod:`linkage.config.roles`). The fields are the canonical ones a table can hold
(``full_name`` and ``address`` are split into their parts during staging, so a role
names the parts), plus ``record_id``: a source record's id, which can be an identifier
itself (a loyalty card number, a customer number). Custom fields of a project are
fields too; a role that does not name one sees it as its ``other_fields`` say.

Examples:
    >>> analyst = Role("analyst", {"email": "hidden", "postcode": "masked"})
    >>> analyst.visibility("email"), analyst.visibility("postcode"), analyst.visibility("city")
    ('hidden', 'masked', 'hidden')
    >>> Role("steward", {}, other_fields="clear").sees_everything
    True
    >>> role_view_columns(analyst)["postcode"]
    'masked'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from linkage.canonical import MATCHING_COLUMNS
from linkage.errors import MeldError

__all__ = [
    "RECORD_ID",
    "ROLE_FIELDS",
    "VISIBILITIES",
    "UNRESTRICTED",
    "Role",
    "RoleError",
    "Visibility",
    "role_view_columns",
    "viewing_role",
]

Visibility = Literal["clear", "masked", "hidden"]
"""``clear``: the value as stored; ``masked``: a reduced form (see
:mod:`linkage.privacy.role_sql`); ``hidden``: the column is left out."""

VISIBILITIES: tuple[Visibility, ...] = get_args(Visibility)

RECORD_ID = "record_id"
"""The pseudo-field of source record ids (``unique_id``, ``source_record_id``, the
``<field>_source`` columns of golden records): they can be card or customer numbers."""

ROLE_FIELDS: tuple[str, ...] = (*MATCHING_COLUMNS, RECORD_ID)
"""The fields a role says something about, in the order ``meld roles`` lists them."""


class RoleError(MeldError, LookupError):
    """A role was asked for that the project config does not declare, or a role may not
    do what was asked (look a customer up by a field it does not see)."""


@dataclass(frozen=True, eq=False)
class Role:
    """What one role sees.

    Attributes:
        name: The role's name; its views live in the schema ``role_<name>``.
        fields: Visibility of each field the role names.
        other_fields: Visibility of every field it does not name (custom fields, and
            columns Meld knows neither as a field nor as non-personal).
        description: Who the role is for, shown by ``meld roles``.
    """

    name: str
    fields: Mapping[str, Visibility] = field(default_factory=dict)
    other_fields: Visibility = "hidden"
    description: str = ""

    def visibility(self, name: str) -> Visibility:
        """How the role sees field ``name``."""
        return self.fields.get(name, self.other_fields)

    @property
    def sees_everything(self) -> bool:
        """Every field in clear: nothing is masked or left out."""
        return self.other_fields == "clear" and all(
            self.visibility(f) == "clear" for f in (*ROLE_FIELDS, *self.fields)
        )

    def masked(self) -> Role:
        """The same role with every clear field masked (``--mask``: never more than
        the role, only less)."""
        return Role(
            name=self.name,
            fields={f: _masked(self.visibility(f)) for f in (*ROLE_FIELDS, *self.fields)},
            other_fields=_masked(self.other_fields),
            description=self.description,
        )


def _masked(visibility: Visibility) -> Visibility:
    return "masked" if visibility == "clear" else visibility


UNRESTRICTED = Role(
    "unrestricted",
    other_fields="clear",
    description="Every value in clear: what library functions show when given no role.",
)


def viewing_role(role: Role | None, *, mask: bool = False) -> Role:
    """The role a read shows its output as: ``role`` (every value in clear when None),
    with its clear fields masked when ``mask``.

    Examples:
        >>> viewing_role(None).sees_everything, viewing_role(None, mask=True).visibility("email")
        (True, 'masked')
    """
    chosen = UNRESTRICTED if role is None else role
    return chosen.masked() if mask else chosen


def role_view_columns(role: Role, custom_fields: Iterable[str] = ()) -> dict[str, Visibility]:
    """Each field's visibility for ``role``: the role fields, then the project's custom
    fields. What a server (``meld serve``) needs to decide what to return.

    Examples:
        >>> columns = role_view_columns(Role("r", {"email": "clear"}), ["birth_place"])
        >>> columns["email"], columns["phone"], columns["birth_place"]
        ('clear', 'hidden', 'hidden')
    """
    names = dict.fromkeys((*ROLE_FIELDS, *custom_fields, *role.fields))
    return {name: role.visibility(name) for name in names}
