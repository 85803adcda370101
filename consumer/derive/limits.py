"""Klaviyo's per-event limits, checked before an operation leaves derivation.

A violation found here would otherwise make Klaviyo reject the whole bulk request the event
lands in, hurting other events of the same merchant. Catching it per record turns it into a
dead-letter reason on the record that caused it.

The values are the strictest that Klaviyo's own sources state (``klaviyo/api-notes.md`` §4,
"safe envelope"): the current spec allows 400 properties and times after 1990, older
references say 300 and 2000. A sender inside the stricter envelope is never rejected.
Sizes are decimal (100 KB = 100,000 bytes of UTF-8), the reading that can never be too big.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from consumer.derive.outcome import DeadLetterCode, DeadLetterReason, Derivation, Skip
from consumer.outbox.operations import EventOperation, Operation, Profile
from consumer.state.shipments import OrderState

__all__ = [
    "MAX_EVENT_FUTURE",
    "MAX_METRIC_NAME_CHARS",
    "MAX_PROPERTIES",
    "MAX_STRING_BYTES",
    "MIN_EVENT_TIME",
    "check_operation",
    "check_operations",
    "checked",
]

MAX_METRIC_NAME_CHARS = 127  # "Must be less than 128 characters."
MAX_PROPERTIES = 300  # 400 in the current spec, 300 in older ones: keep the smaller
MAX_STRING_BYTES = 100_000  # "A single string cannot exceed 100KB."
MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # "after 1990" now, "between 2000 and ..." before
MAX_EVENT_FUTURE = timedelta(days=365)  # "can only be up to 1 year in the future"


# A character is at most 4 UTF-8 bytes: a string this short cannot break the limit.
_SURELY_SHORT = MAX_STRING_BYTES // 4


def _too_long(value: str) -> bool:
    return len(value) > _SURELY_SHORT and len(value.encode("utf-8")) > MAX_STRING_BYTES


def _longest(op: Operation) -> int:
    """The length (characters) of ``op``'s longest string, in one pass of C loops: the
    common operation has only short ones and skips the per-string check."""
    profile = op.profile
    values: list[str | None] = [
        op.unique_id,
        profile.email,
        profile.phone_number,
        profile.external_id,
        profile.first_name,
        profile.last_name,
    ]
    if isinstance(op, EventOperation):
        values += (op.metric, op.value_currency, *op.properties)
        values += [v for v in op.properties.values() if isinstance(v, str)]
    else:
        values += (op.list_id, op.custom_source)
    return max(map(len, filter(None, values)), default=0)


def _profile_strings(profile: Profile) -> Iterable[tuple[str, str, str | None]]:
    yield "profile/", "email", profile.email
    yield "profile/", "phone_number", profile.phone_number
    yield "profile/", "external_id", profile.external_id
    yield "profile/", "first_name", profile.first_name
    yield "profile/", "last_name", profile.last_name


def _strings(op: Operation) -> Iterable[tuple[str, str, str | None]]:
    """``(prefix, name, value)``: where is ``prefix + name``, joined only for the message."""
    yield "", "unique_id", op.unique_id
    yield from _profile_strings(op.profile)
    if isinstance(op, EventOperation):
        yield "", "metric", op.metric
        yield "", "value_currency", op.value_currency
        for name, value in op.properties.items():
            yield "", "a property name", name
            if isinstance(value, str):
                yield "properties/", name, value
    else:
        yield "", "list_id", op.list_id
        yield "", "custom_source", op.custom_source


def check_operation(op: Operation, now: datetime) -> DeadLetterReason | None:
    """The first Klaviyo limit ``op`` breaks, as a dead-letter reason; ``None`` if it fits."""
    if _longest(op) > _SURELY_SHORT:
        for prefix, name, value in _strings(op):
            if value is not None and _too_long(value):
                return DeadLetterReason(
                    DeadLetterCode.STRING_TOO_LONG,
                    f"{prefix}{name} is longer than {MAX_STRING_BYTES} bytes",
                )
    if not isinstance(op, EventOperation):
        return None
    if len(op.metric) > MAX_METRIC_NAME_CHARS:
        return DeadLetterReason(
            DeadLetterCode.METRIC_NAME_TOO_LONG,
            f"metric name has {len(op.metric)} characters; it must be less than 128",
        )
    if len(op.properties) > MAX_PROPERTIES:
        return DeadLetterReason(
            DeadLetterCode.TOO_MANY_PROPERTIES,
            f"{op.metric} has {len(op.properties)} properties; the maximum is {MAX_PROPERTIES}",
        )
    if op.time < MIN_EVENT_TIME or op.time > now + MAX_EVENT_FUTURE:
        return DeadLetterReason(
            DeadLetterCode.TIME_OUT_OF_RANGE,
            f"{op.metric} time {op.time.isoformat()} is not between 2000-01-01 and a year from now",
        )
    return None


def check_operations(ops: Iterable[Operation], now: datetime) -> DeadLetterReason | None:
    """The first limit any of ``ops`` breaks (a record is dead-lettered whole), or ``None``."""
    for op in ops:
        found = check_operation(op, now)
        if found is not None:
            return found
    return None


def checked(
    operations: Sequence[Operation],
    now: datetime,
    *,
    skips: Sequence[Skip] = (),
    state: OrderState | None = None,
) -> Derivation:
    """The derivation of a record, or its dead-lettering if any operation breaks a limit.

    Every entry point ends here, so no operation reaches the outbox unchecked.
    """
    found = check_operations(operations, now)
    if found is not None:
        return Derivation(dead_letter=found)
    return Derivation(operations=tuple(operations), skips=tuple(skips), state=state)
