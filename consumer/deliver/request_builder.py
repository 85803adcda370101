"""Klaviyo request bodies from outbox operations: pure functions, no I/O.

Shapes follow the pinned revision's schemas (``klaviyo/openapi.json``):

- ``POST /api/event-bulk-create-jobs`` (``EventsBulkCreateJob``): one ``event-bulk-create``
  entry per profile, carrying that profile's events in submission order.
- ``POST /api/profile-subscription-bulk-create-jobs`` (``SubscriptionCreateJobCreateQuery``):
  one ``profile`` entry per profile with its channel consents; the list, ``custom_source`` and
  ``historical_import`` belong to the whole request, so one request serves one such group.

Besides the body, each builder returns the layout (which operations sit under which entry), so
a Klaviyo error's ``source.pointer`` can be traced back to the operations it names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from consumer.klaviyo.contract import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES, operation
from consumer.klaviyo.events import profile_identity
from consumer.outbox.operations import (
    EventOperation,
    Operation,
    Profile,
    PropertyValue,
    SubscriptionOperation,
)

__all__ = [
    "EVENTS_PATH",
    "SUBSCRIPTIONS_PATH",
    "BuiltRequest",
    "SubscriptionGroup",
    "body_size",
    "build_event_batch",
    "build_event_bulk_request",
    "build_subscription_batch",
    "build_subscription_request",
    "event_key",
    "event_resource",
    "profile_entry_overhead",
    "serialize",
    "serialize_alone",
    "subscription_group",
    "subscription_key",
]

EVENTS_PATH = operation(BULK_CREATE_EVENTS).path
SUBSCRIPTIONS_PATH = operation(BULK_SUBSCRIBE_PROFILES).path

# ``consent`` has a one-value enum in the schema: the endpoint only ever subscribes.
_SUBSCRIBED = "SUBSCRIBED"
_EVENTS_POINTER = re.compile(r"^/data/attributes/events-bulk-create/data/(\d+)(/attributes/(.*))?$")
_EVENT_IN_ENTRY = re.compile(r"^events/data/(\d+)(/.*)?$")
_PROFILES_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(/.*)?$")


@dataclass(frozen=True, slots=True)
class SubscriptionGroup:
    """The request-level fields of a subscription job: operations sharing them share a request."""

    list_id: str
    custom_source: str
    historical_import: bool


@dataclass(frozen=True, slots=True)
class BuiltRequest:
    """A request body plus where each input operation landed in it.

    ``entries[i]`` lists the input indexes under body entry ``i`` (``events-bulk-create.data[i]``
    or ``profiles.data[i]``), in body order; for events, ``entries[i][j]`` is event ``j`` of
    entry ``i``.
    """

    operation_id: str
    body: dict[str, Any]
    entries: tuple[tuple[int, ...], ...]

    def positions(self, pointer: str) -> tuple[int, ...]:
        """Input indexes a JSON pointer from Klaviyo names (empty if it names none).

        A pointer into one event names that event; a pointer into an entry's profile names
        every operation of the entry (a bad profile spoils all its events); ``/data`` or
        anything outside the entries names none, meaning "the request as a whole".
        """
        if self.operation_id == BULK_CREATE_EVENTS:
            match = _EVENTS_POINTER.match(pointer)
            if match is None:
                return ()
            entry = int(match.group(1))
            if entry >= len(self.entries):
                return ()
            inner = _EVENT_IN_ENTRY.match(match.group(3) or "")
            if inner is None:
                return self.entries[entry]
            event = int(inner.group(1))
            members = self.entries[entry]
            return (members[event],) if event < len(members) else ()
        match = _PROFILES_POINTER.match(pointer)
        if match is None or int(match.group(1)) >= len(self.entries):
            return ()
        return self.entries[int(match.group(1))]


def _iso(moment: datetime) -> str:
    """ISO 8601 with an offset, in UTC (derivation guarantees aware datetimes; a naive one is
    read as UTC rather than the host's zone, so output never depends on where we run)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _exact_number(value: Decimal) -> orjson.Fragment:
    """``value`` as an exact JSON number, in plain notation without trailing zeros.

    orjson has no Decimal, and a float would round money (99999999999999.9999 became
    100000000000000.0); a fragment is written as it is. Derivation bounds amounts and the
    outbox codec refuses non-finite ones, so the text is always a JSON number.
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return orjson.Fragment(text)


def _property(value: PropertyValue) -> object:
    return _exact_number(value) if isinstance(value, Decimal) else value


def _profile_attributes(profile: Profile) -> dict[str, str]:
    fields = {
        "email": profile.email,
        "phone_number": profile.phone_number,
        "external_id": profile.external_id,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _profile_data(profile: Profile) -> dict[str, Any]:
    return {"type": "profile", "attributes": _profile_attributes(profile)}


def event_resource(event: EventOperation) -> dict[str, Any]:
    """The ``event`` resource object of one operation (one element of ``events.data``)."""
    attributes: dict[str, Any] = {
        "properties": {name: _property(value) for name, value in event.properties.items()},
        "time": _iso(event.time),
        "unique_id": event.unique_id,
        "backfill": event.backfill,
        "metric": {"data": {"type": "metric", "attributes": {"name": event.metric}}},
    }
    if event.value is not None:
        attributes["value"] = _exact_number(event.value)
    if event.value_currency is not None:
        attributes["value_currency"] = event.value_currency
    return {"type": "event", "attributes": attributes}


def _event_entry(profile: Profile, events: list[object]) -> dict[str, Any]:
    return {
        "type": "event-bulk-create",
        "attributes": {"profile": {"data": _profile_data(profile)}, "events": {"data": events}},
    }


def profile_entry_overhead(profile: Profile) -> int:
    """Serialized bytes an events entry adds for ``profile`` before any event (plus a comma)."""
    return len(orjson.dumps(_event_entry(profile, []))) + 1


def event_key(event: EventOperation) -> tuple[str, str, str]:
    """(profile, metric, unique_id): what Klaviyo deduplicates by and rejects twice per request.

    The profile is named exactly as ``consumer.klaviyo.events.profile_identity`` names it, the
    same function the contract check and the sandbox count with.
    """
    identity = profile_identity(_profile_data(event.profile)) or ""
    return (identity, event.metric, event.unique_id)


def build_event_batch(
    events: Sequence[EventOperation], resources: Sequence[bytes] | None = None
) -> BuiltRequest:
    """The bulk-create-events body for ``events`` and its layout.

    Events are grouped by profile (first appearance order); the caller keeps repeated
    (profile, metric, unique_id) keys out of one batch and stays within the count and size
    limits. ``resources``, if given, are the events' ``event_resource`` already serialised
    (the batcher made them to size its batches): they go into the body as they are.
    """
    groups: dict[Profile, list[int]] = {}
    for index, event in enumerate(events):
        groups.setdefault(event.profile, []).append(index)
    resource: Callable[[int], object] = (
        (lambda i: event_resource(events[i]))
        if resources is None
        else (lambda i: orjson.Fragment(resources[i]))
    )
    entries = [
        _event_entry(profile, [resource(i) for i in members]) for profile, members in groups.items()
    ]
    body = {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": entries}},
        }
    }
    layout = tuple(tuple(members) for members in groups.values())
    return BuiltRequest(BULK_CREATE_EVENTS, body, layout)


def build_event_bulk_request(events: Sequence[EventOperation]) -> dict[str, Any]:
    """JSON:API body of ``POST /api/event-bulk-create-jobs`` for ``events`` (see module doc)."""
    return build_event_batch(events).body


def subscription_group(subscription: SubscriptionOperation) -> SubscriptionGroup:
    """The request-level fields ``subscription`` needs to share with its request."""
    return SubscriptionGroup(
        subscription.list_id, subscription.custom_source, subscription.historical_import
    )


def subscription_key(subscription: SubscriptionOperation) -> Hashable:
    """What makes two subscriptions the same sign-up fact for one list and channel."""
    identity = profile_identity(_profile_data(subscription.profile)) or ""
    return (subscription.list_id, identity, subscription.channel.value)


def _consent(subscription: SubscriptionOperation) -> dict[str, Any]:
    consent: dict[str, Any] = {"consent": _SUBSCRIBED}
    # Klaviyo rejects consented_at unless the job is a historical import (and then requires it):
    # live sign-ups are stamped by Klaviyo at receipt, which is seconds from the real moment.
    if subscription.historical_import:
        consent["consented_at"] = _iso(subscription.consented_at)
    return consent


def _subscription_profile(profile: Profile) -> dict[str, Any]:
    # Only email and phone_number are profile attributes of this endpoint; names and
    # external ids are not accepted here.
    attributes: dict[str, Any] = {}
    if profile.email is not None:
        attributes["email"] = profile.email
    if profile.phone_number is not None:
        attributes["phone_number"] = profile.phone_number
    return attributes


def build_subscription_batch(subscriptions: Sequence[SubscriptionOperation]) -> BuiltRequest:
    """The bulk-subscribe body for ``subscriptions`` (one group) and its layout.

    Operations for the same profile become one entry carrying each channel's consent.

    Raises:
        ValueError: empty input, or operations from more than one ``SubscriptionGroup``.
    """
    if not subscriptions:
        raise ValueError("a subscription request needs at least one operation")
    group = subscription_group(subscriptions[0])
    if any(subscription_group(s) != group for s in subscriptions):
        raise ValueError("one subscription request serves one list, source and import flag")
    members: dict[Profile, list[int]] = {}
    for index, subscription in enumerate(subscriptions):
        members.setdefault(subscription.profile, []).append(index)
    profiles = []
    for profile, indexes in members.items():
        attributes = _subscription_profile(profile)
        attributes["subscriptions"] = {
            subscriptions[i].channel.value: {"marketing": _consent(subscriptions[i])}
            for i in indexes
        }
        profiles.append({"type": "profile", "attributes": attributes})
    attributes_out: dict[str, Any] = {
        "custom_source": group.custom_source,
        "profiles": {"data": profiles},
    }
    if group.historical_import:
        attributes_out["historical_import"] = True
    body = {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": attributes_out,
            "relationships": {"list": {"data": {"type": "list", "id": group.list_id}}},
        }
    }
    layout = tuple(tuple(indexes) for indexes in members.values())
    return BuiltRequest(BULK_SUBSCRIBE_PROFILES, body, layout)


def build_subscription_request(subscriptions: Sequence[SubscriptionOperation]) -> dict[str, Any]:
    """JSON:API body of ``POST /api/profile-subscription-bulk-create-jobs`` (see module doc)."""
    return build_subscription_batch(subscriptions).body


def serialize(body: dict[str, Any]) -> bytes:
    """The exact bytes sent for ``body`` (compact JSON, UTF-8)."""
    return orjson.dumps(body)


def serialize_alone(operation: Operation) -> bytes:
    """The body ``operation`` would be sent in on its own.

    Raises:
        TypeError: the operation cannot be serialised (orjson's ``JSONEncodeError``).
    """
    if isinstance(operation, EventOperation):
        return serialize(build_event_batch([operation]).body)
    return serialize(build_subscription_batch([operation]).body)


def body_size(body: dict[str, Any]) -> int:
    """Size in bytes of ``body`` as sent: what Klaviyo's 5 MB payload limit measures."""
    return len(serialize(body))
