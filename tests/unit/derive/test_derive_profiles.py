"""Profile identity: e-mail and phone normalisation, dropping unusable identifiers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.derive import (
    DeadLetterCode,
    derive_return,
    normalize_email,
    normalize_phone,
)
from consumer.derive.errors import InvalidRecord
from consumer.derive.profiles import profile_from_customer
from tests.unit.derive.records import CONFIG, MERCHANT, NOW, customer, events, return_record


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("a@b.co", "a@b.co"),
        ("no-at-sign.example.com", None),
        ("two words@example.com", None),
        ("jane@localhost", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email_trims_lowercases_and_checks_shape(
    raw: str | None, expected: str | None
) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("+1 415 555 0100", "US", "+14155550100"),
        ("0151 12345678", "DE", "+4915112345678"),
        ("+49 151 12345678", "US", "+4915112345678"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("12", "US", None),
        ("call me", "US", None),
        ("0151 12345678", "XX", None),
        ("   ", "US", None),
    ],
)
def test_normalize_phone_makes_e164_or_none(raw: str, country: str, expected: str | None) -> None:
    assert normalize_phone(raw, country) == expected


def test_profile_unparseable_phone_with_email_drops_phone() -> None:
    profile = profile_from_customer(customer(phone="not a phone"), "US")
    assert profile.phone_number is None
    assert profile.email == "jane.doe@example.com"


def test_profile_invalid_email_with_phone_drops_email() -> None:
    profile = profile_from_customer(customer(email="jane@", external_id=None), "US")
    assert profile.email is None
    assert profile.phone_number == "+14155550100"


@pytest.mark.parametrize(
    ("person", "code"),
    [
        ({"phone": "555"}, DeadLetterCode.INVALID_PHONE),
        ({"email": "jane(at)example.com"}, DeadLetterCode.INVALID_EMAIL),
        ({"email": " ", "phone": None, "external_id": ""}, DeadLetterCode.NO_IDENTIFIER),
        ({"first_name": "Jane"}, DeadLetterCode.NO_IDENTIFIER),
    ],
)
def test_profile_without_usable_identifier_raises_dead_letter_reason(
    person: dict[str, Any], code: DeadLetterCode
) -> None:
    with pytest.raises(InvalidRecord) as caught:
        profile_from_customer(person, "US")
    assert caught.value.reason.code == code


def test_profile_external_id_alone_is_enough() -> None:
    profile = profile_from_customer({"external_id": " cust_9 "}, "US")
    assert profile.external_id == "cust_9"


@given(phone=st.text(max_size=30))
def test_return_unparseable_only_phone_is_dead_letter_not_crash(phone: str) -> None:
    record = return_record(customer={"phone": phone})
    result = derive_return(record, MERCHANT, NOW, CONFIG)
    if result.dead_letter is None:
        (event,) = events(result.operations, "Return Created")
        assert event.profile.phone_number is not None
        assert event.profile.phone_number.startswith("+")
    else:
        assert result.dead_letter.code in (
            DeadLetterCode.INVALID_PHONE,
            DeadLetterCode.NO_IDENTIFIER,
        )
        assert result.operations == ()
