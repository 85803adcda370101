"""Reading events out of request bodies, and the key Klaviyo deduplicates them by.

Klaviyo records an event once per (profile, metric, ``unique_id``). When ``unique_id`` is
absent it defaults to the event time truncated to the second, and when ``time`` is absent too,
to the second the request was received. This module computes that key the same way for the
sender (never two equal keys in one bulk request), the contract check (which rejects such a
request, as Klaviyo does) and the sandbox (which counts later repeats as duplicates).

The readers are tolerant: they skip parts of a body whose shape is wrong, because schema
validation reports those separately.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

__all__ = [
    "PROFILE_IDENTIFIERS",
    "EventKey",
    "EventView",
    "effective_unique_id",
    "iter_events",
    "parse_time",
    "profile_identity",
]

# Order decides which identifier names a profile when several are given: email first, then
# phone, then external id (how the service and its tests count profiles), then the rest.
PROFILE_IDENTIFIERS = ("email", "phone_number", "external_id", "id", "anonymous_id", "_kx")

BULK_EVENTS_POINTER = "/data/attributes/events-bulk-create/data"


class EventKey(NamedTuple):
    """What Klaviyo deduplicates events by."""

    profile: str
    metric: str
    unique_id: str


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def profile_identity(profile: Mapping[str, Any]) -> str | None:
    """A stable name for the profile of a ``profile.data`` resource object, or None.

    The name is ``"<identifier>:<value>"`` for the first identifier present in
    ``PROFILE_IDENTIFIERS`` order; e-mail addresses are compared case-insensitively.
    """
    attributes = _mapping(profile.get("attributes"))
    for name in PROFILE_IDENTIFIERS:
        value = profile.get("id") if name == "id" else attributes.get(name)
        if isinstance(value, str) and value.strip():
            value = value.strip()
            return f"{name}:{value.lower() if name == 'email' else value}"
    return None


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 date-time with an offset, as an aware datetime; None if it is not one."""
    if not isinstance(value, str) or len(value) < 11 or value[10] not in "Tt ":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def effective_unique_id(event: Mapping[str, Any], received_at: datetime | None) -> str:
    """The ``unique_id`` Klaviyo uses for an event's attributes.

    The explicit ``unique_id`` if given; else the event ``time`` truncated to the second;
    else the second the request was received (``received_at``; when None, a placeholder that
    is equal for every event of one request, which is all an in-request check needs).
    """
    unique_id = event.get("unique_id")
    if isinstance(unique_id, str):
        return unique_id
    moment = parse_time(event.get("time"))
    if moment is None and event.get("time") is not None:
        return f"time:{event.get('time')}"
    if moment is None:
        if received_at is None:
            return "time:<request>"
        moment = received_at
    return "time:" + moment.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class EventView:
    """One event of a request body, with the profile it belongs to.

    ``pointer`` is the JSON pointer of the event resource object; ``attributes`` are the
    event's attributes; ``profile`` is the ``profile.data`` object; ``entry_backfill`` is the
    bulk entry's ``backfill`` flag (None for single events).
    """

    pointer: str
    attributes: Mapping[str, Any]
    profile: Mapping[str, Any]
    entry_backfill: bool | None = None

    @property
    def metric_name(self) -> str | None:
        """The metric name, or None when missing or not a string."""
        metric = _mapping(_mapping(_mapping(self.attributes.get("metric")).get("data")))
        name = _mapping(metric.get("attributes")).get("name")
        return name if isinstance(name, str) else None

    @property
    def backfill(self) -> bool:
        """Whether the event is a backfill (the event flag wins over the entry flag)."""
        flag = self.attributes.get("backfill")
        if isinstance(flag, bool):
            return flag
        return self.entry_backfill is True

    def key(self, received_at: datetime | None = None) -> EventKey | None:
        """The dedup key, or None when the profile or metric cannot be named."""
        profile = profile_identity(self.profile)
        metric = self.metric_name
        if profile is None or metric is None:
            return None
        return EventKey(profile, metric, effective_unique_id(self.attributes, received_at))


def iter_events(operation_id: str, body: object) -> Iterator[EventView]:
    """Every event of a ``bulk_create_events`` or ``create_event`` body, in body order."""
    data = _mapping(_mapping(body).get("data"))
    attributes = _mapping(data.get("attributes"))
    if operation_id == "create_event":
        profile = _mapping(_mapping(attributes.get("profile")).get("data"))
        yield EventView("/data", attributes, profile)
        return
    if operation_id != "bulk_create_events":
        return
    entries = _list(_mapping(attributes.get("events-bulk-create")).get("data"))
    for entry_index, entry in enumerate(entries):
        entry_attributes = _mapping(_mapping(entry).get("attributes"))
        profile = _mapping(_mapping(entry_attributes.get("profile")).get("data"))
        entry_backfill = entry_attributes.get("backfill")
        events = _list(_mapping(entry_attributes.get("events")).get("data"))
        for event_index, event in enumerate(events):
            yield EventView(
                pointer=f"{BULK_EVENTS_POINTER}/{entry_index}/attributes/events/data/{event_index}",
                attributes=_mapping(_mapping(event).get("attributes")),
                profile=profile,
                entry_backfill=entry_backfill if isinstance(entry_backfill, bool) else None,
            )
