"""The rules Klaviyo states in prose rather than in the schemas.

Each number below is quoted from the operation or field descriptions of the pinned spec
(see ``klaviyo/api-notes.md``). Sizes use decimal units (5 MB = 5,000,000 bytes, 100 KB =
100,000 bytes, counted as UTF-8): the spec does not say which unit it means, and the smaller
reading is the one a sender can never be rejected for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from consumer.klaviyo.events import EventKey, iter_events, parse_time
from consumer.klaviyo.violations import ContractViolation, Rule, to_pointer

__all__ = [
    "MAX_EVENTS_PER_REQUEST",
    "MAX_EVENT_PROPERTIES",
    "MAX_METRIC_NAME_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_PROFILES_PER_SUBSCRIPTION_REQUEST",
    "MAX_STRING_BYTES",
    "MIN_EVENT_TIME",
    "check_limits",
]

MAX_EVENTS_PER_REQUEST = 1_000  # "Accepts up to 1,000 events per request."
MAX_PAYLOAD_BYTES = 5_000_000  # "The maximum allowed payload size is 5MB."
MAX_STRING_BYTES = 100_000  # "A single string cannot exceed 100KB."
MAX_METRIC_NAME_CHARS = 127  # "Must be less than 128 characters."
MAX_EVENT_PROPERTIES = 400  # "must not exceed 400 properties"
MAX_PROFILES_PER_SUBSCRIPTION_REQUEST = 1_000  # "Maximum number of profiles ...: 1000"
MIN_EVENT_TIME = datetime(1990, 1, 1, tzinfo=UTC)  # "The time must be after the year 1990"
MAX_EVENT_FUTURE_DAYS = 365  # "can only be up to 1 year in the future"

# Reported per request at most; a 5 MB body of bad strings must not produce a 5 MB answer.
MAX_REPORTED = 100

REQUEST_POINTER = "/data"
# E.164: "+", a non-zero country digit, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EVENT_IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def check_limits(
    operation_id: str, body: object, payload_bytes: int, now: datetime | None
) -> list[ContractViolation]:
    """Every prose-rule violation of ``body`` (already parsed; ``payload_bytes`` long).

    ``now`` enables the rules that depend on the current time (event time at most a year
    ahead, ``consented_at`` in the past); without it they are skipped.
    """
    found: list[ContractViolation] = []
    if payload_bytes > MAX_PAYLOAD_BYTES:
        found.append(
            ContractViolation(
                REQUEST_POINTER,
                f"payload is {payload_bytes} bytes; the maximum is {MAX_PAYLOAD_BYTES}",
                Rule.PAYLOAD_TOO_LARGE,
            )
        )
    for path, size in _long_strings(body, []):
        found.append(
            ContractViolation(
                to_pointer(path),
                f"string is {size} bytes; the maximum is {MAX_STRING_BYTES}",
                Rule.STRING_TOO_LONG,
            )
        )
        if len(found) >= MAX_REPORTED:
            return found
    if operation_id in ("bulk_create_events", "create_event"):
        found.extend(_check_events(operation_id, body, now))
    elif operation_id == "bulk_subscribe_profiles":
        found.extend(_check_subscriptions(body, now))
    return found[:MAX_REPORTED]


def _long_strings(node: object, path: list[str | int]) -> Iterator[tuple[list[str | int], int]]:
    """Paths of strings (values or keys) longer than ``MAX_STRING_BYTES`` in UTF-8.

    ``path`` is shared and mutated while walking (copied only on a hit): this runs over
    every value of every request, so it must not allocate per node.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            path.append(key)
            if _too_long(key):
                yield list(path), _utf8_size(key)
            if isinstance(value, str):
                if _too_long(value):
                    yield list(path), _utf8_size(value)
            elif isinstance(value, dict | list):
                yield from _long_strings(value, path)
            path.pop()
    elif isinstance(node, list):
        for index, item in enumerate(node):
            path.append(index)
            if isinstance(item, str):
                if _too_long(item):
                    yield list(path), _utf8_size(item)
            elif isinstance(item, dict | list):
                yield from _long_strings(item, path)
            path.pop()
    elif isinstance(node, str) and _too_long(node):
        yield list(path), _utf8_size(node)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _too_long(text: object) -> bool:
    # A str of n characters is at most 4n bytes: only long ones need encoding.
    return (
        isinstance(text, str)
        and len(text) * 4 > MAX_STRING_BYTES
        and (_utf8_size(text) > MAX_STRING_BYTES)
    )


def _check_events(operation_id: str, body: object, now: datetime | None) -> list[ContractViolation]:
    found: list[ContractViolation] = []
    seen: dict[EventKey, str] = {}
    profiles_checked: set[str] = set()
    count = 0
    for event in iter_events(operation_id, body):
        count += 1
        attributes = event.attributes
        metric_pointer = f"{event.pointer}/attributes/metric/data/attributes/name"
        name = event.metric_name
        if name is not None and not name.strip():
            found.append(
                ContractViolation(metric_pointer, "metric name is empty", Rule.METRIC_NAME)
            )
        elif name is not None and len(name) > MAX_METRIC_NAME_CHARS:
            found.append(
                ContractViolation(
                    metric_pointer,
                    f"metric name is {len(name)} characters; it must be less than 128",
                    Rule.METRIC_NAME,
                )
            )
        properties = attributes.get("properties")
        if isinstance(properties, Mapping) and len(properties) > MAX_EVENT_PROPERTIES:
            found.append(
                ContractViolation(
                    f"{event.pointer}/attributes/properties",
                    f"event has {len(properties)} properties; the maximum is "
                    f"{MAX_EVENT_PROPERTIES}",
                    Rule.TOO_MANY_PROPERTIES,
                )
            )
        found.extend(_check_event_time(event.pointer, attributes.get("time"), now))
        profile_pointer = _profile_pointer(operation_id, event.pointer)
        if profile_pointer not in profiles_checked:
            profiles_checked.add(profile_pointer)
            found.extend(_check_event_profile(profile_pointer, event.profile))
        key = event.key(received_at=None)
        if key is not None:
            if key in seen:
                where = "unique_id" if isinstance(attributes.get("unique_id"), str) else "time"
                found.append(
                    ContractViolation(
                        f"{event.pointer}/attributes/{where}",
                        f"unique_id {key.unique_id!r} is repeated for the same profile and "
                        f"metric {key.metric!r} (first at {seen[key]}); Klaviyo fails the "
                        "whole request",
                        Rule.DUPLICATE_UNIQUE_ID,
                    )
                )
            else:
                seen[key] = event.pointer
    if count > MAX_EVENTS_PER_REQUEST:
        found.append(
            ContractViolation(
                "/data/attributes/events-bulk-create/data",
                f"request has {count} events; the maximum is {MAX_EVENTS_PER_REQUEST}",
                Rule.TOO_MANY_EVENTS,
            )
        )
    return found


def _profile_pointer(operation_id: str, event_pointer: str) -> str:
    if operation_id == "create_event":
        return "/data/attributes/profile/data"
    entry = event_pointer.split("/attributes/events/")[0]
    return f"{entry}/attributes/profile/data"


def _check_event_time(pointer: str, value: object, now: datetime | None) -> list[ContractViolation]:
    moment = parse_time(value)
    if moment is None:
        return []  # absent, null, or malformed (the schema's date-time format reports that)
    where = f"{pointer}/attributes/time"
    if moment <= MIN_EVENT_TIME:
        return [ContractViolation(where, "time must be after 1990", Rule.TIME_OUT_OF_RANGE)]
    if now is not None and (moment - now).days >= MAX_EVENT_FUTURE_DAYS:
        return [
            ContractViolation(
                where, "time can be at most 1 year in the future", Rule.TIME_OUT_OF_RANGE
            )
        ]
    return []


def _check_event_profile(pointer: str, profile: Mapping[str, Any]) -> list[ContractViolation]:
    attributes = _mapping(profile.get("attributes"))
    found = _check_identifier_formats(f"{pointer}/attributes", attributes)
    has_id = isinstance(profile.get("id"), str) and bool(profile["id"])
    if not has_id and not any(
        isinstance(attributes.get(n), str) and attributes[n] for n in _EVENT_IDENTIFIERS
    ):
        found.append(
            ContractViolation(
                f"{pointer}/attributes",
                "profile needs at least one identifier (id, email, phone_number, external_id, "
                "anonymous_id or _kx)",
                Rule.MISSING_IDENTIFIER,
            )
        )
    return found


def _check_identifier_formats(
    pointer: str, attributes: Mapping[str, Any]
) -> list[ContractViolation]:
    found: list[ContractViolation] = []
    phone = attributes.get("phone_number")
    if isinstance(phone, str) and not _E164.match(phone):
        found.append(
            ContractViolation(
                f"{pointer}/phone_number",
                "phone_number must be in E.164 format (+ and up to 15 digits)",
                Rule.INVALID_IDENTIFIER,
            )
        )
    email = attributes.get("email")
    if isinstance(email, str) and not _EMAIL.match(email):
        found.append(
            ContractViolation(
                f"{pointer}/email", "email is not a valid address", Rule.INVALID_IDENTIFIER
            )
        )
    return found


def _check_subscriptions(body: object, now: datetime | None) -> list[ContractViolation]:
    found: list[ContractViolation] = []
    attributes = _mapping(_mapping(_mapping(body).get("data")).get("attributes"))
    historical = attributes.get("historical_import") is True
    profiles_pointer = "/data/attributes/profiles/data"
    profiles = _list(_mapping(attributes.get("profiles")).get("data"))
    if len(profiles) > MAX_PROFILES_PER_SUBSCRIPTION_REQUEST:
        found.append(
            ContractViolation(
                profiles_pointer,
                f"request has {len(profiles)} profiles; the maximum is "
                f"{MAX_PROFILES_PER_SUBSCRIPTION_REQUEST}",
                Rule.TOO_MANY_PROFILES,
            )
        )
    for index, raw in enumerate(profiles):
        profile = _mapping(raw)
        pointer = f"{profiles_pointer}/{index}/attributes"
        profile_attributes = _mapping(profile.get("attributes"))
        found.extend(_check_identifier_formats(pointer, profile_attributes))
        channels = _mapping(profile_attributes.get("subscriptions"))
        found.extend(_check_channel_identifiers(pointer, profile, channels))
        for channel, parameters in channels.items():
            for kind, consent in _mapping(parameters).items():
                if kind in ("tokens", "anonymous_id", "open_tracking"):
                    continue
                found.extend(
                    _check_consented_at(
                        f"{pointer}/subscriptions/{channel}/{kind}/consented_at",
                        _mapping(consent).get("consented_at"),
                        historical,
                        now,
                    )
                )
    return found


def _check_channel_identifiers(
    pointer: str, profile: Mapping[str, Any], channels: Mapping[str, Any]
) -> list[ContractViolation]:
    attributes = _mapping(profile.get("attributes"))
    if isinstance(profile.get("id"), str) and profile["id"]:
        return []  # the profile is looked up by id, which carries its own identifiers
    found: list[ContractViolation] = []
    needs = {"email": "email", "sms": "phone_number", "whatsapp": "phone_number"}
    for channel, identifier in needs.items():
        if isinstance(channels.get(channel), Mapping) and not attributes.get(identifier):
            found.append(
                ContractViolation(
                    f"{pointer}/{identifier}",
                    f"subscribing to {channel} needs {identifier}",
                    Rule.MISSING_IDENTIFIER,
                )
            )
    push = _mapping(channels.get("push"))
    if not any(attributes.get(n) for n in ("email", "phone_number")) and not push.get(
        "anonymous_id"
    ):
        found.append(
            ContractViolation(
                pointer,
                "profile needs an email or phone_number (or push anonymous_id)",
                Rule.MISSING_IDENTIFIER,
            )
        )
    return found


def _check_consented_at(
    pointer: str, value: object, historical: bool, now: datetime | None
) -> list[ContractViolation]:
    if value is not None and not historical:
        return [
            ContractViolation(
                pointer, "consented_at is only allowed when historical_import is true", Rule.CONSENT
            )
        ]
    if value is None and historical:
        return [
            ContractViolation(
                pointer, "historical_import requires consented_at for each profile", Rule.CONSENT
            )
        ]
    moment = parse_time(value)
    if historical and now is not None and moment is not None and moment > now:
        return [ContractViolation(pointer, "consented_at must be in the past", Rule.CONSENT)]
    return []
