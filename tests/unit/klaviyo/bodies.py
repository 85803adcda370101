"""Request bodies for Klaviyo contract and sandbox tests (minimal and full shapes)."""

from __future__ import annotations

from typing import Any

TIME = "2026-01-02T03:04:05+00:00"


def event(
    metric: str = "Return Created",
    unique_id: str | None = "ret-1",
    *,
    time: str | None = TIME,
    properties: dict[str, Any] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    """One event resource object (bulk entry or the ``attributes`` of a single event)."""
    body: dict[str, Any] = {
        "properties": {"return_id": "ret-1"} if properties is None else properties,
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        **attributes,
    }
    if unique_id is not None:
        body["unique_id"] = unique_id
    if time is not None:
        body["time"] = time
    return {"type": "event", "attributes": body}


def profile(email: str | None = "shopper@example.com", **attributes: Any) -> dict[str, Any]:
    """A ``profile.data`` object."""
    if email is not None:
        attributes["email"] = email
    return {"type": "profile", "attributes": attributes}


def entry(events: list[dict[str, Any]], email: str = "shopper@example.com") -> dict[str, Any]:
    """One bulk entry: a profile and its events."""
    return {
        "type": "event-bulk-create",
        "attributes": {"profile": {"data": profile(email)}, "events": {"data": events}},
    }


def bulk(*entries: dict[str, Any]) -> dict[str, Any]:
    """A ``bulk_create_events`` body."""
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": list(entries)}},
        }
    }


def bulk_of(count: int, *, per_profile: int = 10, prefix: str = "ev") -> dict[str, Any]:
    """A bulk body of ``count`` distinct events over ``count / per_profile`` profiles."""
    entries = []
    for start in range(0, count, per_profile):
        events = [
            event(unique_id=f"{prefix}-{i}") for i in range(start, min(count, start + per_profile))
        ]
        entries.append(entry(events, email=f"p{start}@example.com"))
    return bulk(*entries)


def single(**event_attributes: Any) -> dict[str, Any]:
    """A ``create_event`` body."""
    attributes = event(**event_attributes)["attributes"]
    attributes["profile"] = {"data": profile()}
    return {"data": {"type": "event", "attributes": attributes}}


def subscribe(
    *profiles: dict[str, Any], list_id: str | None = "Y6nRLr", **attributes: Any
) -> dict[str, Any]:
    """A ``bulk_subscribe_profiles`` body (one SMS profile if none given)."""
    if not profiles:
        profiles = (sms_profile(),)
    data: dict[str, Any] = {
        "type": "profile-subscription-bulk-create-job",
        "attributes": {"profiles": {"data": list(profiles)}, **attributes},
    }
    if list_id is not None:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def sms_profile(phone: str = "+15005550006", **consent: Any) -> dict[str, Any]:
    """A profile subscribing to SMS marketing."""
    return {
        "type": "profile",
        "attributes": {
            "phone_number": phone,
            "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED", **consent}}},
        },
    }


def full_bulk() -> dict[str, Any]:
    """A bulk body using every optional field the schema offers."""
    full_event = event(
        "Order Tracking Update",
        "shp-1:delivered:2026-01-02T03:04:05Z",
        properties={"tracking_number": "1Z999", "items": [{"sku": "A", "qty": 1}]},
        value=12.5,
        value_currency="EUR",
        backfill=True,
    )
    full_event["attributes"]["metric"]["data"]["attributes"]["service"] = "api"
    full_profile = {
        "type": "profile",
        "id": None,
        "attributes": {
            "email": "Shopper@Example.com",
            "phone_number": "+4915112345678",
            "external_id": "cust-9",
            "anonymous_id": None,
            "_kx": None,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "organization": None,
            "locale": "de-DE",
            "title": None,
            "image": None,
            "location": {
                "address1": "Street 1",
                "address2": None,
                "city": "Berlin",
                "country": "Germany",
                "latitude": 52.52,
                "longitude": "13.40",
                "region": None,
                "zip": "10115",
                "timezone": "Europe/Berlin",
                "ip": None,
            },
            "properties": {"loyalty": "gold"},
        },
        "meta": {
            "patch_properties": {"append": {"skus": "A"}, "unappend": None, "unset": ["old"]},
            "patch_identifiers": None,
        },
    }
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "backfill": None,
                                "profile": {"data": full_profile},
                                "events": {"data": [full_event]},
                            },
                        }
                    ]
                }
            },
        }
    }
