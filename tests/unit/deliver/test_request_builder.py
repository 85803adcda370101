"""Request bodies: exact shapes, grouping, layout for pointers, and the vendored contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.deliver.request_builder import (
    body_size,
    build_event_batch,
    build_event_bulk_request,
    build_subscription_batch,
    build_subscription_request,
    event_key,
    serialize,
    serialize_alone,
)
from consumer.klaviyo import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES, validate_request
from consumer.outbox.operations import Channel, EventOperation, Profile
from tests.unit.deliver import factories

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_build_event_bulk_request_exact_shape() -> None:
    op = factories.event(
        0,
        profile=Profile(
            email="a@example.com",
            phone_number="+15005550006",
            external_id="cust-1",
            first_name="Ada",
            last_name="Lovelace",
        ),
        backfill=True,
    )
    assert orjson.loads(serialize(build_event_bulk_request([op]))) == {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "profile": {
                                    "data": {
                                        "type": "profile",
                                        "attributes": {
                                            "email": "a@example.com",
                                            "phone_number": "+15005550006",
                                            "external_id": "cust-1",
                                            "first_name": "Ada",
                                            "last_name": "Lovelace",
                                        },
                                    }
                                },
                                "events": {
                                    "data": [
                                        {
                                            "type": "event",
                                            "attributes": {
                                                "properties": {
                                                    "return_id": "ret-0",
                                                    "items": 2,
                                                    "reason": "too small",
                                                },
                                                "time": "2026-01-02T03:04:05+00:00",
                                                "unique_id": "ret-0",
                                                "backfill": True,
                                                "metric": {
                                                    "data": {
                                                        "type": "metric",
                                                        "attributes": {"name": "Return Created"},
                                                    }
                                                },
                                                "value": 19.99,
                                                "value_currency": "EUR",
                                            },
                                        }
                                    ]
                                },
                            },
                        }
                    ]
                }
            },
        }
    }


def test_build_event_batch_groups_by_profile_in_first_seen_order() -> None:
    ops = [factories.event(n, shopper=s) for n, s in enumerate([1, 2, 1, 3, 2, 1])]
    built = build_event_batch(ops)
    assert built.entries == ((0, 2, 5), (1, 4), (3,))
    entries = built.body["data"]["attributes"]["events-bulk-create"]["data"]
    emails = [e["attributes"]["profile"]["data"]["attributes"]["email"] for e in entries]
    assert emails == ["shopper1@example.com", "shopper2@example.com", "shopper3@example.com"]
    assert validate_request(BULK_CREATE_EVENTS, built.body, now=NOW) == []


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (Decimal("10"), b"10"),
        (Decimal("10.0000"), b"10"),
        (Decimal("0.1"), b"0.1"),
        (Decimal("12.3400"), b"12.34"),
        (Decimal("1E+2"), b"100"),
        (Decimal("99999999999999.9999"), b"99999999999999.9999"),
        (Decimal("0.0000"), b"0"),
    ],
)
def test_event_value_is_sent_as_its_exact_decimal_text(value: Decimal, sent: bytes) -> None:
    op = factories.event(0, value=value, value_currency="USD")
    body = serialize(build_event_bulk_request([op]))
    assert b'"value":' + sent + b',"value_currency":"USD"' in body
    assert validate_request(BULK_CREATE_EVENTS, body, now=NOW) == []


def test_event_without_value_has_neither_value_nor_currency() -> None:
    op = factories.event(0, value=None, value_currency=None)
    body = orjson.loads(serialize(build_event_bulk_request([op])))
    event = body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]
    assert "value" not in event["data"][0]["attributes"]
    assert "value_currency" not in event["data"][0]["attributes"]


def test_decimal_properties_are_sent_exactly() -> None:
    op = factories.event(0, properties={"Price": Decimal("99999999999999.9999"), "n": 2})
    body = serialize(build_event_bulk_request([op]))
    assert b'"properties":{"Price":99999999999999.9999,"n":2}' in body


def test_serialize_alone_raises_for_an_operation_orjson_cannot_write() -> None:
    nested: object = "leaf"
    for _ in range(300):  # deeper than orjson writes, shallower than it reads
        nested = [nested]
    op = factories.event(0, properties={"deep": nested})
    with pytest.raises(TypeError):
        serialize_alone(op)


def test_event_time_is_iso_utc_whatever_the_zone() -> None:
    zone = timezone(timedelta(hours=2))
    op = factories.event(0, time=datetime(2026, 1, 2, 5, 4, 5, 123000, tzinfo=zone))
    body = build_event_bulk_request([op])
    event = body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]
    assert event["data"][0]["attributes"]["time"] == "2026-01-02T03:04:05.123000+00:00"


@pytest.mark.parametrize(
    ("pointer", "positions"),
    [
        (
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/time",
            (2,),
        ),
        ("/data/attributes/events-bulk-create/data/1/attributes/events/data/0", (1,)),
        (
            "/data/attributes/events-bulk-create/data/0/attributes/profile/data/attributes/email",
            (0, 2),
        ),
        ("/data/attributes/events-bulk-create/data/1", (1,)),
        ("/data/attributes/events-bulk-create/data/9/attributes/events/data/0", ()),
        ("/data/attributes/events-bulk-create/data/0/attributes/events/data/7", ()),
        ("/data", ()),
        ("/data/attributes/profiles/data/0", ()),
    ],
)
def test_positions_map_klaviyo_pointers_to_operations(
    pointer: str, positions: tuple[int, ...]
) -> None:
    built = build_event_batch([factories.event(n, shopper=s) for n, s in enumerate([1, 2, 1])])
    assert built.positions(pointer) == positions


def test_build_subscription_request_exact_shape_live_signup_has_no_consented_at() -> None:
    op = factories.subscription(3, channel=Channel.SMS, list_id="Y6nRLr")
    assert build_subscription_request([op]) == {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "custom_source": "Tracking page",
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "shopper3@example.com",
                                "phone_number": "+15005550003",
                                "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"}}},
                            },
                        }
                    ]
                },
            },
            "relationships": {"list": {"data": {"type": "list", "id": "Y6nRLr"}}},
        }
    }
    assert (
        validate_request(BULK_SUBSCRIBE_PROFILES, build_subscription_request([op]), now=NOW) == []
    )


def test_build_subscription_historical_import_carries_consented_at() -> None:
    op = factories.subscription(1, historical_import=True)
    body = build_subscription_request([op])
    assert body["data"]["attributes"]["historical_import"] is True
    profile = body["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert profile["subscriptions"]["email"]["marketing"] == {
        "consent": "SUBSCRIBED",
        "consented_at": "2026-01-02T03:04:05+00:00",
    }
    assert validate_request(BULK_SUBSCRIBE_PROFILES, body, now=NOW) == []


def test_build_subscription_merges_channels_of_one_profile() -> None:
    shopper = Profile(email="a@example.com", phone_number="+15005550006")
    ops = [
        factories.subscription(0, profile=shopper),
        factories.subscription(1),
        factories.subscription(0, channel=Channel.SMS, profile=shopper),
    ]
    built = build_subscription_batch(ops)
    assert built.entries == ((0, 2), (1,))
    assert built.positions("/data/attributes/profiles/data/0/attributes/phone_number") == (0, 2)
    first = built.body["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert set(first["subscriptions"]) == {"email", "sms"}
    assert validate_request(BULK_SUBSCRIBE_PROFILES, built.body, now=NOW) == []


def test_build_subscription_rejects_mixed_lists_and_empty_input() -> None:
    with pytest.raises(ValueError, match="one list"):
        build_subscription_batch(
            [factories.subscription(0), factories.subscription(1, list_id="X")]
        )
    with pytest.raises(ValueError, match="at least one"):
        build_subscription_batch([])


def test_body_size_is_the_serialized_length() -> None:
    body = build_event_bulk_request([factories.event(n) for n in range(20)])
    assert body_size(body) == len(serialize(body)) == len(orjson.dumps(body))


def test_event_key_names_the_profile_like_the_contract() -> None:
    op = factories.event(0, profile=Profile(email="Shopper@Example.com"))
    assert event_key(op) == ("email:shopper@example.com", "Return Created", "ret-0")
    phone = factories.event(0, profile=Profile(phone_number="+15005550006"))
    assert event_key(phone)[0] == "phone_number:+15005550006"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_profiles = st.builds(
    Profile,
    email=st.one_of(st.none(), st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.com", fullmatch=True)),
    phone_number=st.one_of(st.none(), st.from_regex(r"\+1[2-9]\d{9}", fullmatch=True)),
    external_id=st.from_regex(r"cust-[0-9]{1,6}", fullmatch=True),
    first_name=st.one_of(st.none(), _text),
    last_name=st.one_of(st.none(), _text),
)
_events = st.builds(
    EventOperation,
    merchant_id=st.just("m"),
    metric=st.sampled_from(["Return Created", "Order Tracking Update", "Customer Account Created"]),
    profile=_profiles,
    properties=st.dictionaries(
        _text, st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), _text), max_size=5
    ),
    time=st.datetimes(
        # hypothesis takes naive bounds and applies ``timezones`` itself
        min_value=datetime(2001, 1, 1),  # noqa: DTZ001
        max_value=datetime(2027, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    unique_id=st.uuids().map(str),
    value=st.one_of(st.none(), st.decimals(0, 100_000, places=2)),
    value_currency=st.sampled_from(["USD", "EUR"]),
    backfill=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_events, min_size=1, max_size=20))
def test_any_event_batch_satisfies_the_contract(events: list[EventOperation]) -> None:
    body = serialize(build_event_bulk_request(events))
    assert validate_request(BULK_CREATE_EVENTS, body, now=NOW) == []
