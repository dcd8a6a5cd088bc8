"""Tunable knobs of the demo generator: country mix, popularity curves and error rates.

Rates are probabilities. Per-record error rates are multiplied by the source's
``noise`` factor (see :mod:`linkage.demo.source_plans`). The rates below make the
base records; :data:`PROFILES` (``clean``, ``realistic``, ``hostile``) adds errors to
them and can raise them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_DATE = np.datetime64("2025-01-01")
"""Ages are computed against this fixed day so output never depends on today."""
MIN_AGE, MAX_AGE = 18, 90

COUNTRY_WEIGHTS: dict[str, float] = {"SE": 0.40, "NO": 0.15, "DE": 0.20, "PL": 0.10, "GB": 0.15}

# Zipf exponents: larger means fewer, more shared values.
ZIPF_FIRST_NAMES = 0.75
ZIPF_LAST_NAMES = 0.85
ZIPF_STREETS = 0.7
ZIPF_CITIES = 1.0
ZIPF_EMAIL_DOMAINS = 1.2

# Persons.
P_HOUSEHOLD = 0.25  # share of persons living with another person
P_PARTNER_OPPOSITE_GENDER = 0.85
P_FAMILY_EMAIL = 0.15  # share of households where both use the same e-mail
P_MOVED = 0.12  # persons with an older address still in some systems
P_EMAIL_CHANGED = 0.15  # persons with an older e-mail still in some systems

# Per record. Error rates are multiplied by the source's ``noise`` factor.
P_OLD_ADDRESS = 0.5  # of a mover's records, share showing the old address
P_OLD_EMAIL = 0.5  # of an e-mail changer's records, share showing the old e-mail
P_DUPLICATE_ACCOUNT_NEW_EMAIL = 0.7  # second webshop sign-up uses another e-mail
P_NICKNAME = 0.2  # of records of persons whose first name has a nickname
P_TYPO = 0.025  # one substitution, transposition or deletion
P_DIACRITICS_LOST = 0.15  # of names with diacritics: Jörg -> Jorg
P_TRANSLITERATED = 0.05  # of names with diacritics: Jörg -> Joerg
P_UPPER = 0.03
P_LOWER = 0.015
P_EXTRA_WHITESPACE = 0.02
P_DOB_SWAPPED = 0.02  # day and month swapped (only where the result is a valid date)
P_EMAIL_UPPER = 0.03
P_EMAIL_CAPITALISED = 0.02
P_STREET_ABBREVIATED = 0.15  # Hauptstraße -> Hauptstr., Station Road -> Station Rd
P_POSTCODE_UNFORMATTED = 0.08  # "123 45" -> "12345", "01067" -> "1067"
P_CITY_EXONYM = 0.05  # München -> Munich
P_COUNTRY_LOWER = 0.02
P_COUNTRY_AS_NAME = 0.05  # "Sverige" instead of "SE" (support and POS only)
P_ADDRESS_WITH_COUNTRY = 0.15  # webshop address line ends with ", Sweden"
P_FIRST_NAME_ONLY = 0.03  # support ticket signed with the first name only
P_UNUSABLE = 0.001  # per kind (empty id; all identifying fields empty), at least one each

# Identifiers quoted across systems (drawn after the records, from their own stream).
P_CRM_LOYALTY_CARD = 0.35  # of CRM records of loyalty cardholders: the card is on file
P_CARD_MISTYPED = 0.03  # of cards on file: one digit wrong
P_CARD_STALE = 0.03  # of cards on file: an old, replaced card no other system knows
P_CARD_OF_PARTNER = 0.04  # of cards on file of persons living with a cardholder: the partner's
P_CARD_GROUPED = 0.25  # cards on file written in groups of four digits
P_TICKET_CUSTOMER_NUMBER = 0.3  # of tickets of CRM customers: quotes the customer number
P_CUSTOMER_NUMBER_MISTYPED = 0.04  # of quoted customer numbers: one digit wrong
P_CUSTOMER_NUMBER_RESTYLED = 0.2  # quoted as "c0001234", "C-0001234" or "C 0001234"
P_WEBSHOP_DEVICE = 0.7  # web-shop accounts with the id of the device they were opened on
P_USUAL_DEVICE = 0.75  # of those: the person's usual device (else another one)
P_SHARED_DEVICE = 0.4  # households whose partners use one device

# Phones that ``phonenumbers.is_valid_number`` rejects, by how they came about (relative
# weights; used by every profile that has invalid phones, see ``Profile.p_invalid_phone``).
INVALID_PHONE_KINDS: dict[str, float] = {
    "unallocated": 0.42,  # a range never or no longer allocated: old plans, retired prefixes
    "extra_digit": 0.25,  # one digit too many
    "missing_digit": 0.25,  # one digit too few
    "made_up": 0.08,  # a test number typed into a form (0000000000), shared by many persons
}


@dataclass(frozen=True)
class Profile:
    """How hard a generated data set is: the errors laid over the base records.

    The base records (names with typos and nicknames, swapped day and month, old
    addresses, phones in many styles, missing values; the rates above) are the same in
    every profile; ``noise_scale`` and ``missing_scale`` raise them. The other rates add
    errors the base records lack. They are drawn from their own random streams, so a
    profile never shifts the base records: ``clean`` writes exactly what the generator
    wrote before profiles existed, and ``realistic`` is ``clean`` with errors added,
    never removed.

    Per-record rates are multiplied by the source's ``noise`` factor, like the rates
    above.

    Attributes:
        name: The profile's name, as given to ``--profile``.
        noise_scale: Multiplier on every source's ``noise`` factor (the base error rates).
        missing_scale: Multiplier on every source's null rates.
        p_invalid_phone: Share of persons whose number is one ``phonenumbers`` calls
            invalid (kinds in ``INVALID_PHONE_KINDS``); the number is theirs in every
            record, like any number.
        national_phone_share: Share of phones written in a national style (``070-123 45
            67``) in sources without a country column, where they are read in the
            source's default country whatever the person's country; ``None`` keeps
            the source's own phone styles.
        p_keyboard_typo: Per name: one letter replaced by a neighbouring key.
        p_ocr_confusion: Per name: one OCR confusion (rn/m, l/1, O/0, cl/d, I/l).
        p_doubled_letter: Per name: one letter written twice (``Annna``).
        p_swapped_case: Per record: caps lock on, first and last name swap case
            (``jOHN sMITH``).
        p_initial: Per record: the first name cut to its initial (``J.`` or ``J``).
        p_dob_digit: Per date of birth: two digits of the day, month or year transposed
            (``1985-03-12`` -> ``1985-03-21``, ``1958-03-12``) or one digit wrong; the
            result is still a date and not in the future, as systems check dates on
            entry.
        p_email_typo: Per e-mail: one letter replaced by a neighbouring key.
        p_sparse: Per record: only the name and one contact field (e-mail or phone)
            survive, the way rows of a marketing list look.
    """

    name: str
    noise_scale: float = 1.0
    missing_scale: float = 1.0
    p_invalid_phone: float = 0.0
    national_phone_share: float | None = None
    p_keyboard_typo: float = 0.0
    p_ocr_confusion: float = 0.0
    p_doubled_letter: float = 0.0
    p_swapped_case: float = 0.0
    p_initial: float = 0.0
    p_dob_digit: float = 0.0
    p_email_typo: float = 0.0
    p_sparse: float = 0.0


PROFILES: dict[str, Profile] = {
    # The base records only: byte for byte what the generator wrote before profiles.
    "clean": Profile(name="clean"),
    # The default, and what ``make demo`` generates: the errors real customer data has.
    "realistic": Profile(
        name="realistic",
        p_invalid_phone=0.33,
        national_phone_share=0.40,
        p_keyboard_typo=0.02,
        p_ocr_confusion=0.008,
        p_doubled_letter=0.008,
        p_swapped_case=0.006,
        p_initial=0.04,
        p_dob_digit=0.03,
        p_email_typo=0.01,
        p_sparse=0.06,
    ),
    # Clearly worse than real data in every respect, to find where Meld breaks.
    "hostile": Profile(
        name="hostile",
        noise_scale=1.6,
        missing_scale=1.5,
        p_invalid_phone=0.50,
        national_phone_share=0.65,
        p_keyboard_typo=0.06,
        p_ocr_confusion=0.025,
        p_doubled_letter=0.025,
        p_swapped_case=0.02,
        p_initial=0.12,
        p_dob_digit=0.08,
        p_email_typo=0.03,
        p_sparse=0.15,
    ),
}
"""The profiles of ``--profile``, from easiest to hardest."""
DEFAULT_PROFILE = "realistic"


def profile_named(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        ValueError: If there is no such profile.

    Examples:
        >>> profile_named("clean").p_invalid_phone
        0.0
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown demo profile {name!r}; expected one of {', '.join(PROFILES)}"
        ) from None
