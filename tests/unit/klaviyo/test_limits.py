"""The prose limits: counts, sizes, names, identifiers, repeated unique ids, consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from consumer.klaviyo import (
    BULK_CREATE_EVENTS,
    BULK_SUBSCRIBE_PROFILES,
    CREATE_EVENT,
    MAX_EVENTS_PER_REQUEST,
    MAX_PAYLOAD_BYTES,
    MAX_STRING_BYTES,
    ContractViolation,
    Rule,
    validate_request,
)
from tests.unit.klaviyo import bodies

EVENTS = "/data/attributes/events-bulk-create/data"
FIRST_EVENT = f"{EVENTS}/0/attributes/events/data/0"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rules(violations: list[ContractViolation]) -> set[str]:
    return {v.rule for v in violations}


def test_limits_1000_events_pass_1001_fail_pointing_at_the_list() -> None:
    assert validate_request(BULK_CREATE_EVENTS, bodies.bulk_of(MAX_EVENTS_PER_REQUEST)) == []
    violations = validate_request(BULK_CREATE_EVENTS, bodies.bulk_of(MAX_EVENTS_PER_REQUEST + 1))
    assert [(v.pointer, v.rule) for v in violations] == [(EVENTS, Rule.TOO_MANY_EVENTS)]


def test_limits_events_are_counted_across_profile_entries() -> None:
    """Klaviyo counts events, not entries: 2 entries of 501 events are too many."""
    body = bodies.bulk_of(1002, per_profile=501)
    assert len(body["data"]["attributes"]["events-bulk-create"]["data"]) == 2
    assert rules(validate_request(BULK_CREATE_EVENTS, body)) == {Rule.TOO_MANY_EVENTS}


def test_limits_payload_over_5_mb_is_rejected_as_a_whole() -> None:
    # 60 events of ~90 KB each: every string is legal, the request is not.
    filler = "x" * 90_000
    events = [bodies.event(unique_id=f"e{i}", properties={"blob": filler}) for i in range(60)]
    body = orjson.dumps(bodies.bulk(bodies.entry(events)))
    assert len(body) > MAX_PAYLOAD_BYTES
    violations = validate_request(BULK_CREATE_EVENTS, body)
    assert [(v.pointer, v.rule) for v in violations] == [("/data", Rule.PAYLOAD_TOO_LARGE)]


def test_limits_string_over_100_kb_points_at_the_string() -> None:
    ok = bodies.bulk(
        bodies.entry([bodies.event(properties={"note": "é" * (MAX_STRING_BYTES // 2)})])
    )
    assert validate_request(BULK_CREATE_EVENTS, ok) == []
    # Multi-byte characters count in UTF-8 bytes: 50,001 "é" are 100,002 bytes.
    big = "é" * (MAX_STRING_BYTES // 2 + 1)
    body = bodies.bulk(bodies.entry([bodies.event(properties={"note": big})]))
    [violation] = validate_request(BULK_CREATE_EVENTS, body)
    assert violation.pointer == f"{FIRST_EVENT}/attributes/properties/note"
    assert violation.rule == Rule.STRING_TOO_LONG


def test_limits_metric_name_must_be_under_128_characters() -> None:
    assert (
        validate_request(BULK_CREATE_EVENTS, bodies.bulk(bodies.entry([bodies.event("M" * 127)])))
        == []
    )
    [violation] = validate_request(
        BULK_CREATE_EVENTS, bodies.bulk(bodies.entry([bodies.event("M" * 128)]))
    )
    assert violation.pointer == f"{FIRST_EVENT}/attributes/metric/data/attributes/name"
    assert violation.rule == Rule.METRIC_NAME


def test_limits_at_most_400_event_properties() -> None:
    props = {f"p{i}": i for i in range(400)}
    assert validate_request(CREATE_EVENT, bodies.single(properties=props)) == []
    props["one_more"] = 1
    [violation] = validate_request(CREATE_EVENT, bodies.single(properties=props))
    assert (violation.pointer, violation.rule) == (
        "/data/attributes/properties",
        Rule.TOO_MANY_PROPERTIES,
    )


def test_limits_repeated_unique_id_in_one_request_points_at_the_repeat() -> None:
    body = bodies.bulk(
        bodies.entry([bodies.event(unique_id="a"), bodies.event(unique_id="b")]),
        bodies.entry([bodies.event(unique_id="a")], email="SHOPPER@example.com"),
    )
    [violation] = validate_request(BULK_CREATE_EVENTS, body)
    assert violation.rule == Rule.DUPLICATE_UNIQUE_ID
    assert violation.pointer == f"{EVENTS}/1/attributes/events/data/0/attributes/unique_id"
    assert FIRST_EVENT in violation.message


def test_limits_same_unique_id_for_another_metric_or_profile_is_fine() -> None:
    body = bodies.bulk(
        bodies.entry(
            [bodies.event("Return Created", "a"), bodies.event("Return Created Item", "a")]
        ),
        bodies.entry([bodies.event("Return Created", "a")], email="other@example.com"),
    )
    assert validate_request(BULK_CREATE_EVENTS, body) == []


def test_limits_default_unique_id_collides_within_the_same_second() -> None:
    """Without unique_id, Klaviyo uses the time to the second: two such events collide."""
    same_second = [
        bodies.event(unique_id=None, time="2026-01-02T03:04:05.100+00:00"),
        bodies.event(unique_id=None, time="2026-01-02T04:04:05.900+01:00"),
    ]
    [violation] = validate_request(BULK_CREATE_EVENTS, bodies.bulk(bodies.entry(same_second)))
    assert violation.pointer == f"{EVENTS}/0/attributes/events/data/1/attributes/time"
    no_time = [bodies.event(unique_id=None, time=None), bodies.event(unique_id=None, time=None)]
    assert rules(validate_request(BULK_CREATE_EVENTS, bodies.bulk(bodies.entry(no_time)))) == {
        Rule.DUPLICATE_UNIQUE_ID
    }


def test_limits_event_time_after_1990_and_within_a_year() -> None:
    old = bodies.bulk(bodies.entry([bodies.event(time="1989-12-31T23:59:59+00:00")]))
    assert rules(validate_request(BULK_CREATE_EVENTS, old)) == {Rule.TIME_OUT_OF_RANGE}
    future = (NOW + timedelta(days=400)).isoformat()
    body = bodies.bulk(bodies.entry([bodies.event(time=future)]))
    assert validate_request(BULK_CREATE_EVENTS, body) == []  # no clock, no future check
    assert rules(validate_request(BULK_CREATE_EVENTS, body, now=NOW)) == {Rule.TIME_OUT_OF_RANGE}


def test_limits_event_profile_needs_an_identifier() -> None:
    body = bodies.single()
    body["data"]["attributes"]["profile"]["data"]["attributes"] = {"first_name": "Ada"}
    [violation] = validate_request(CREATE_EVENT, body)
    assert (violation.pointer, violation.rule) == (
        "/data/attributes/profile/data/attributes",
        Rule.MISSING_IDENTIFIER,
    )
    body["data"]["attributes"]["profile"]["data"]["attributes"] = {"external_id": "c-1"}
    assert validate_request(CREATE_EVENT, body) == []


def test_limits_phone_must_be_e164_and_email_an_address() -> None:
    body = bodies.single()
    body["data"]["attributes"]["profile"]["data"]["attributes"] = {
        "phone_number": "0151 123",
        "email": "not-an-address",
    }
    assert [(v.pointer, v.rule) for v in validate_request(CREATE_EVENT, body)] == [
        ("/data/attributes/profile/data/attributes/email", Rule.INVALID_IDENTIFIER),
        ("/data/attributes/profile/data/attributes/phone_number", Rule.INVALID_IDENTIFIER),
    ]


def test_limits_consented_at_only_with_historical_import() -> None:
    consented = bodies.sms_profile(consented_at="2025-01-01T00:00:00+00:00")
    [violation] = validate_request(BULK_SUBSCRIBE_PROFILES, bodies.subscribe(consented))
    assert violation.rule == Rule.CONSENT
    assert violation.pointer.endswith("/subscriptions/sms/marketing/consented_at")
    historical = bodies.subscribe(consented, historical_import=True)
    assert validate_request(BULK_SUBSCRIBE_PROFILES, historical, now=NOW) == []
    missing = bodies.subscribe(bodies.sms_profile(), historical_import=True)
    assert rules(validate_request(BULK_SUBSCRIBE_PROFILES, missing)) == {Rule.CONSENT}
    future = bodies.subscribe(
        bodies.sms_profile(consented_at="2027-01-01T00:00:00+00:00"), historical_import=True
    )
    assert rules(validate_request(BULK_SUBSCRIBE_PROFILES, future, now=NOW)) == {Rule.CONSENT}


def test_limits_sms_subscription_needs_a_phone_number() -> None:
    profile = bodies.sms_profile()
    profile["attributes"] = {
        "email": "a@example.com",
        "subscriptions": profile["attributes"]["subscriptions"],
    }
    violations = validate_request(BULK_SUBSCRIBE_PROFILES, bodies.subscribe(profile))
    assert [(v.pointer, v.rule) for v in violations] == [
        ("/data/attributes/profiles/data/0/attributes/phone_number", Rule.MISSING_IDENTIFIER)
    ]


def test_limits_at_most_1000_profiles_per_subscription_job() -> None:
    profiles = [bodies.sms_profile(f"+1500555{i:04d}") for i in range(1001)]
    violations = validate_request(BULK_SUBSCRIBE_PROFILES, bodies.subscribe(*profiles))
    assert [(v.pointer, v.rule) for v in violations] == [
        ("/data/attributes/profiles/data", Rule.TOO_MANY_PROFILES)
    ]
    assert validate_request(BULK_SUBSCRIBE_PROFILES, bodies.subscribe(*profiles[:1000])) == []
