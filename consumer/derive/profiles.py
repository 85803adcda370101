"""The Klaviyo profile an event is about, from a record's ``customer``.

Identifiers are normalised so one person is one profile however upstream spelt them:

- e-mail: trimmed and lower-cased, then a basic shape check (``local@domain.tld``, no spaces);
- phone: parsed with ``phonenumbers`` (national numbers in the merchant's default country),
  kept only if valid, formatted E.164 (Klaviyo rejects anything else);
- external id: trimmed.

An identifier that is present but unusable is *dropped* when another identifier remains (the
event still reaches the right person, just without that attribute); when nothing usable
remains the record is dead-lettered with ``invalid_phone`` / ``invalid_email`` if that was the
only thing the customer had, or ``no_identifier`` if they had nothing at all. First and last
names ride along on every profile: they only ever fill in the person's own profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import phonenumbers

from consumer.derive.errors import InvalidRecord
from consumer.derive.fields import optional_text
from consumer.derive.outcome import DeadLetterCode
from consumer.outbox.operations import Profile

__all__ = ["normalize_email", "normalize_phone", "profile_from_customer"]

# The same shape the Klaviyo contract check applies; deliberately loose (RFC 5322 is not the
# point, keeping obvious garbage out of a customer's profile is).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(raw: str | None) -> str | None:
    """The trimmed, lower-cased address, or ``None`` when absent or not shaped like one."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email if _EMAIL.match(email) else None


# Parsing is the costliest step of deriving an order record, and a customer's number comes
# back with every update of their order: a bounded cache of answers (pure, so always right).
@lru_cache(maxsize=65_536)
def normalize_phone(raw: str | None, default_country: str) -> str | None:
    """The number in E.164, or ``None`` when absent, unparseable or not a valid number."""
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, default_country.upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


def profile_from_customer(
    customer: Mapping[str, Any],
    default_country: str,
    *,
    where: str = "customer",
    email: str | None = None,
    phone: str | None = None,
) -> Profile:
    """The normalised profile of ``customer``; ``email``/``phone`` override the customer's.

    Raises:
        InvalidRecord: no usable identifier (``no_identifier``, ``invalid_email`` or
            ``invalid_phone``, see the module docstring).
    """
    raw_email = email if email is not None else optional_text(customer, "email", where)
    raw_phone = phone if phone is not None else optional_text(customer, "phone", where)
    external_id = optional_text(customer, "external_id", where)
    profile = Profile(
        email=normalize_email(raw_email),
        phone_number=normalize_phone(raw_phone, default_country),
        external_id=external_id.strip() if external_id else None,
        first_name=optional_text(customer, "first_name", where),
        last_name=optional_text(customer, "last_name", where),
    )
    if profile.email or profile.phone_number or profile.external_id:
        return profile
    if raw_phone is not None:
        raise InvalidRecord(
            DeadLetterCode.INVALID_PHONE,
            f"{where}/phone cannot be made E.164 and there is no other identifier",
        )
    if raw_email is not None:
        raise InvalidRecord(
            DeadLetterCode.INVALID_EMAIL,
            f"{where}/email is not a valid address and there is no other identifier",
        )
    raise InvalidRecord(DeadLetterCode.NO_IDENTIFIER, f"{where} has no email, phone or external_id")
