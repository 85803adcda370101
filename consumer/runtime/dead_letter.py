"""Dead-letter and parked records, with Kafka-Connect-style error headers.

The value is the original bytes (the input payload in derive, the outbox operation in
deliver) and the original headers ride along under ``H_ORIGINAL_HEADER``, so a record can be
replayed unchanged once the cause is fixed. Every message passes through ``scrub`` so nothing
shaped like an API key is ever written.

Every record fits (``record_budget``): one whose original does not fit keeps a prefix of its
value (and drops its original headers, then cuts its key, if even those do not fit), says so
in ``H_ORIGINAL_SIZE`` and still names its source by topic, partition and offset. A record
that cannot be written would abort the transaction it belongs to, every time it is retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from consumer.kafka import ConsumedMessage, Header
from consumer.observability import scrub

__all__ = [
    "H_FIRST_FAILURE",
    "H_MERCHANT",
    "H_ORIGINAL_HEADER",
    "H_ORIGINAL_SIZE",
    "H_REASON",
    "FailedRecord",
    "FailureRecord",
    "failure_headers",
    "failure_record",
    "original_headers",
    "record_budget",
    "record_size",
]

H_TOPIC = "__connect.errors.topic"
H_PARTITION = "__connect.errors.partition"
H_OFFSET = "__connect.errors.offset"
H_CLASS = "__connect.errors.exception.class.name"
H_MESSAGE = "__connect.errors.exception.message"
H_REASON = "klaviyo_consumer.reason"
H_MERCHANT = "klaviyo_consumer.merchant_id"
H_STAGE = "klaviyo_consumer.stage"
H_ATTEMPTS = "klaviyo_consumer.attempts"
H_FIRST_FAILURE = "klaviyo_consumer.first_failure_at"
H_ORIGINAL_SIZE = "klaviyo_consumer.original_size"
"""Set only on a truncated record: the original value's size in bytes."""
H_ORIGINAL_HEADER = "klaviyo_consumer.header."
"""Prefix of the original record's headers."""

_FRAMING_BYTES = 1024
"""Room left for the record batch and per-record framing within ``max.message.bytes``."""
_HEADER_FRAMING_BYTES = 10  # two varint lengths per header, generously
_MAX_MESSAGE_CHARS = 2000
_MAX_KEY_BYTES = 1024  # a cut key still tells an operator which record it was


def record_budget(max_message_bytes: int) -> int:
    """Bytes of key, value and headers one record may carry under ``max_message_bytes``."""
    return max_message_bytes - _FRAMING_BYTES


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[Header] = ()) -> int:
    """What a record counts against ``record_budget``."""
    size = len(key or b"") + len(value or b"")
    return size + sum(len(n.encode()) + len(v) + _HEADER_FRAMING_BYTES for n, v in headers)


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """Why one record could not be processed (or delivered now)."""

    reason: str
    error_class: str
    message: str
    merchant_id: str | None = None
    attempts: int = 1
    first_failure_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """A dead-letter or parked record, ready to produce."""

    key: bytes | None
    value: bytes | None
    headers: list[Header]


def failure_headers(source: ConsumedMessage, stage: str, failure: FailedRecord) -> list[Header]:
    """Headers naming the source record, the error and the merchant."""
    first = failure.first_failure_at or datetime.now(UTC)
    message = scrub(failure.message)[:_MAX_MESSAGE_CHARS]
    headers: list[Header] = [
        (H_TOPIC, source.topic.encode()),
        (H_PARTITION, str(source.partition).encode()),
        (H_OFFSET, str(source.offset).encode()),
        (H_CLASS, failure.error_class.encode()),
        (H_MESSAGE, message.encode()),
        (H_REASON, failure.reason.encode()),
        (H_STAGE, stage.encode()),
        (H_ATTEMPTS, str(failure.attempts).encode()),
        (H_FIRST_FAILURE, first.isoformat().encode()),
    ]
    if failure.merchant_id:
        headers.append((H_MERCHANT, failure.merchant_id.encode()))
    return headers


def failure_record(
    source: ConsumedMessage, stage: str, failure: FailedRecord, budget: int
) -> FailureRecord:
    """The record to write for ``source``, within ``budget`` bytes (see the module doc)."""
    headers = failure_headers(source, stage, failure)
    kept = [(H_ORIGINAL_HEADER + name, value) for name, value in source.headers]
    if record_size(source.key, source.value, headers + kept) <= budget:
        return FailureRecord(source.key, source.value, headers + kept)
    value = source.value or b""
    headers.append((H_ORIGINAL_SIZE, str(len(value)).encode()))
    key = source.key
    if record_size(key, None, headers + kept) <= budget // 2:
        headers += kept
    elif key is not None and record_size(key, None, headers) > budget // 2:
        key = key[:_MAX_KEY_BYTES]
    room = budget - record_size(key, None, headers)
    return FailureRecord(key, value[: max(room, 0)], headers)


def original_headers(message: ConsumedMessage) -> list[Header]:
    """The headers the record had before it was dead-lettered or parked."""
    cut = len(H_ORIGINAL_HEADER)
    return [(n[cut:], v) for n, v in message.headers if n.startswith(H_ORIGINAL_HEADER)]
