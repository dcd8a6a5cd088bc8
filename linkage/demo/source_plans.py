"""The four demo source systems: how each samples and distorts persons, and its file.

Layout of the generated folder::

    meld.yaml
    landing/crm_contacts.csv
    landing/webshop_accounts.csv
    landing/support_tickets.jsonl
    landing/pos_loyalty.parquet
    landing/truth.csv
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from linkage.demo.knobs import Profile

__all__ = [
    "CONFIG_FILE",
    "NATIONAL_PHONE_STYLES",
    "SOURCE_FILES",
    "SOURCE_PLANS",
    "TRUTH_FILE",
    "SourcePlan",
    "profiled_plan",
]


@dataclass(frozen=True)
class SourcePlan:
    """How one source system samples and distorts persons.

    Attributes:
        name: Source system name, also the file stem under ``landing/``.
        p_present: Probability that a person has any record in the source.
        p_repeat: Probability, per further record, that the person has one more.
        max_records: Cap on records per person.
        noise: Multiplier on the per-record error rates.
        missing: Null rate per output column.
        phone_formats: Relative weights of the styles in
            :data:`linkage.demo.phones.PHONE_FORMATS`.
        identity_columns: Columns blanked in the unusable "no identity" rows.
        contact_columns: The e-mail and phone columns among ``identity_columns``; the
            others are the name.
        to_national_phones: Share of internationally written phones rewritten in a
            national style (see :data:`NATIONAL_PHONE_STYLES`); set by a profile for
            sources without a country column.
    """

    name: str
    p_present: float
    p_repeat: float
    max_records: int
    noise: float
    missing: dict[str, float]
    phone_formats: dict[str, float]
    identity_columns: tuple[str, ...]
    contact_columns: tuple[str, ...]
    to_national_phones: float = 0.0


SOURCE_PLANS: dict[str, SourcePlan] = {
    "crm_contacts": SourcePlan(
        name="crm_contacts",
        p_present=0.75,
        p_repeat=0.05,
        max_records=3,
        noise=1.0,
        missing={
            "given_name": 0.005,
            "family_name": 0.005,
            "birth_date": 0.06,
            "email_address": 0.10,
            "mobile": 0.12,
            "street": 0.04,
            "zip": 0.04,
            "town": 0.03,
            "country_code": 0.03,
        },
        phone_formats={"e164": 4, "national": 3, "intl_spaced": 1, "national_compact": 1},
        identity_columns=("given_name", "family_name", "email_address", "mobile"),
        contact_columns=("email_address", "mobile"),
    ),
    "webshop_accounts": SourcePlan(
        name="webshop_accounts",
        p_present=0.58,
        p_repeat=0.15,
        max_records=2,
        noise=1.2,
        missing={"full_name": 0.01, "email": 0.005, "phone": 0.25, "shipping_address": 0.08},
        phone_formats={"e164": 3, "intl_spaced": 3, "intl_00": 2, "dashed": 1, "national": 1},
        identity_columns=("full_name", "email", "phone"),
        contact_columns=("email", "phone"),
    ),
    "support_tickets": SourcePlan(
        name="support_tickets",
        p_present=0.42,
        p_repeat=0.55,
        max_records=8,
        noise=1.5,
        missing={"name": 0.03, "contact_email": 0.08, "contact_phone": 0.35, "country": 0.10},
        phone_formats={
            "e164": 2,
            "intl_spaced": 2,
            "intl_00": 1,
            "national": 2,
            "national_compact": 1,
            "trunk_paren": 1,
            "dashed": 1,
        },
        identity_columns=("name", "contact_email", "contact_phone"),
        contact_columns=("contact_email", "contact_phone"),
    ),
    "pos_loyalty": SourcePlan(
        name="pos_loyalty",
        p_present=0.78,
        p_repeat=0.2,
        max_records=3,
        noise=0.8,
        missing={
            "first": 0.01,
            "surname": 0.01,
            "born": 0.10,
            "phone_no": 0.15,
            "postal_code": 0.05,
            "city": 0.05,
            "country": 0.05,
        },
        phone_formats={"national": 4, "national_compact": 2, "trunk_paren": 1, "e164": 1},
        identity_columns=("first", "surname", "phone_no"),
        contact_columns=("phone_no",),
    ),
}

NATIONAL_PHONE_STYLES: dict[str, float] = {"national": 3, "national_compact": 2, "trunk_paren": 1}
"""The national styles of :data:`linkage.demo.phones.PHONE_FORMATS`, with the weights
of their use where a profile rewrites international numbers in a national style."""


def profiled_plan(plan: SourcePlan, profile: Profile, has_country: bool) -> SourcePlan:
    """The source's plan under a profile: noise and null rates scaled, phone styles mixed.

    Args:
        plan: The source's own plan.
        profile: The profile to generate.
        has_country: Whether the source has a column mapped to ``country``; in sources
            without one, ``profile.national_phone_share`` of phones are written in a
            national style.

    Returns:
        The plan to build the source with; equal to ``plan`` under ``clean``. Phone
        styles are drawn as in ``plan``; ``to_national_phones`` then rewrites enough
        of the international ones in a national style to reach the profile's share.
    """
    share = profile.national_phone_share
    to_national = 0.0
    if share is not None and not has_country:
        national = sum(v for k, v in plan.phone_formats.items() if k in NATIONAL_PHONE_STYLES)
        own_share = national / sum(plan.phone_formats.values())
        to_national = max(0.0, (share - own_share) / (1 - own_share))
    return replace(
        plan,
        noise=plan.noise * profile.noise_scale,
        missing={k: min(1.0, v * profile.missing_scale) for k, v in plan.missing.items()},
        to_national_phones=to_national,
    )


SOURCE_FILES: dict[str, str] = {
    "crm_contacts": "landing/crm_contacts.csv",
    "webshop_accounts": "landing/webshop_accounts.csv",
    "support_tickets": "landing/support_tickets.jsonl",
    "pos_loyalty": "landing/pos_loyalty.parquet",
}
TRUTH_FILE = "landing/truth.csv"
CONFIG_FILE = "meld.yaml"
