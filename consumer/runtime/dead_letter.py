"""Dead-letter and parked records, with Kafka-Connect-style error headers.

The value is the original bytes (the input payload in derive, the outbox operation in
deliver), so a record can be replayed unchanged once the cause is fixed. Every message passes
through ``scrub`` so nothing shaped like an API key is ever written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from consumer.kafka import ConsumedMessage, Header
from consumer.observability import scrub

__all__ = ["H_FIRST_FAILURE", "H_MERCHANT", "H_REASON", "FailedRecord", "failure_headers"]

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


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """Why one record could not be processed (or delivered now)."""

    reason: str
    error_class: str
    message: str
    merchant_id: str | None = None
    attempts: int = 1
    first_failure_at: datetime | None = None


def failure_headers(source: ConsumedMessage, stage: str, failure: FailedRecord) -> list[Header]:
    """Headers naming the source record, the error and the merchant."""
    first = failure.first_failure_at or datetime.now(UTC)
    headers: list[Header] = [
        (H_TOPIC, source.topic.encode()),
        (H_PARTITION, str(source.partition).encode()),
        (H_OFFSET, str(source.offset).encode()),
        (H_CLASS, failure.error_class.encode()),
        (H_MESSAGE, scrub(failure.message).encode()),
        (H_REASON, failure.reason.encode()),
        (H_STAGE, stage.encode()),
        (H_ATTEMPTS, str(failure.attempts).encode()),
        (H_FIRST_FAILURE, first.isoformat().encode()),
    ]
    if failure.merchant_id:
        headers.append((H_MERCHANT, failure.merchant_id.encode()))
    return headers
