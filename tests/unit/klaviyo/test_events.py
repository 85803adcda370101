"""Reading events out of bodies, profile identity and the dedup key."""

from __future__ import annotations

from datetime import UTC, datetime

from consumer.klaviyo import (
    BULK_CREATE_EVENTS,
    CREATE_EVENT,
    EventKey,
    effective_unique_id,
    iter_events,
    profile_identity,
)
from tests.unit.klaviyo import bodies


def test_profile_identity_prefers_email_then_phone_then_external_id() -> None:
    assert profile_identity(bodies.profile("A@Example.COM ", phone_number="+15005550006")) == (
        "email:a@example.com"
    )
    assert profile_identity(bodies.profile(None, phone_number="+1500", external_id="c")) == (
        "phone_number:+1500"
    )
    assert profile_identity(bodies.profile(None, external_id="c-1", anonymous_id="x")) == (
        "external_id:c-1"
    )
    assert profile_identity({"type": "profile", "id": "01H", "attributes": {}}) == "id:01H"
    assert profile_identity(bodies.profile("", first_name="Ada")) is None


def test_effective_unique_id_explicit_then_time_then_received() -> None:
    received = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
    assert effective_unique_id({"unique_id": "u"}, received) == "u"
    assert effective_unique_id({"time": "2026-01-02T04:04:05.9+01:00"}, received) == (
        "time:2026-01-02T03:04:05+00:00"
    )
    assert effective_unique_id({"time": None}, received) == "time:2026-03-04T05:06:07+00:00"
    assert effective_unique_id({}, None) == effective_unique_id({"time": None}, None)


def test_iter_events_bulk_yields_pointers_profiles_and_backfill() -> None:
    body = bodies.bulk(
        bodies.entry([bodies.event(unique_id="a"), bodies.event(unique_id="b", backfill=False)]),
        bodies.entry([bodies.event(unique_id="c")], email="two@example.com"),
    )
    body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["backfill"] = True
    views = list(iter_events(BULK_CREATE_EVENTS, body))
    assert [v.pointer for v in views] == [
        "/data/attributes/events-bulk-create/data/0/attributes/events/data/0",
        "/data/attributes/events-bulk-create/data/0/attributes/events/data/1",
        "/data/attributes/events-bulk-create/data/1/attributes/events/data/0",
    ]
    assert [v.backfill for v in views] == [True, False, False]
    assert views[2].key() == EventKey("email:two@example.com", "Return Created", "c")


def test_iter_events_single_event_and_malformed_bodies() -> None:
    [view] = iter_events(CREATE_EVENT, bodies.single(unique_id="x"))
    assert view.pointer == "/data"
    assert view.key() == EventKey("email:shopper@example.com", "Return Created", "x")
    assert list(iter_events(BULK_CREATE_EVENTS, {"data": []})) == []
    assert list(iter_events(BULK_CREATE_EVENTS, "nonsense")) == []
    broken = bodies.bulk({"type": "event-bulk-create"})
    assert list(iter_events(BULK_CREATE_EVENTS, broken)) == []
