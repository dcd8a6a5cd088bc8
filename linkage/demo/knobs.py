"""Tunable knobs of the demo generator: country mix, popularity curves and error rates.

Rates are probabilities. Per-record error rates are multiplied by the source's
``noise`` factor (see :mod:`linkage.demo.source_plans`).
"""

from __future__ import annotations

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
