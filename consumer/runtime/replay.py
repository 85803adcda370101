"""Replays of parked and dead-lettered records, once their cause is fixed.

- A parked operation, or one Klaviyo rejected (dead-letter stage ``deliver``), goes back to the
  outbox. Events that happened longer ago than the backfill threshold get Klaviyo's
  ``backfill`` flag, so merchants' flows do not fire for them now.
- An input record that derivation could not process (stage ``derive``) goes back to the topic
  it came from, to be derived again by a fixed service.

A record is republished with the headers it had originally. One that was truncated to fit the
dead-letter topic (header ``original_size``) cannot be restored and is counted as
``truncated``; its source coordinates are in its headers.

Replays are idempotent: operations keep their ``unique_id``, so Klaviyo records each event once
however often it is replayed. Publishing is paced to ``rate`` records per second.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from consumer.kafka import ConsumedMessage, KafkaAdmin, Producer
from consumer.outbox import EventOperation, OutboxFormatError, decode_operation, encode_operation
from consumer.runtime.dead_letter import (
    H_FIRST_FAILURE,
    H_MERCHANT,
    H_ORIGINAL_SIZE,
    H_STAGE,
    H_TOPIC,
    original_headers,
)
from consumer.runtime.restore import read_partitions_to_end
from consumer.settings import Settings

__all__ = ["ReplayReport", "replay"]

log = logging.getLogger(__name__)

Source = Literal["dead-letter", "parked"]


@dataclass
class ReplayReport:
    """What a replay did."""

    to_outbox: int = 0
    to_source_topics: int = 0
    backfilled: int = 0
    filtered_out: int = 0
    unreadable: int = 0
    truncated: int = 0


def _header(message: ConsumedMessage, name: str) -> str | None:
    value = message.header(name)
    return None if value is None else value.decode()


def _selected(message: ConsumedMessage, merchant: str | None, since: datetime | None) -> bool:
    if merchant is not None and _header(message, H_MERCHANT) != merchant:
        return False
    if since is not None:
        first = _header(message, H_FIRST_FAILURE)
        if first is None or datetime.fromisoformat(first) < since:
            return False
    return True


def replay(
    settings: Settings,
    source: Source,
    now: datetime,
    *,
    merchant: str | None = None,
    since: datetime | None = None,
    rate: float = 500.0,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayReport:
    """Republish the selected records of ``source``; returns the counts.

    Raises:
        KafkaError: the topics cannot be read or written.
    """
    topics = settings.topics
    topic = topics.parked if source == "parked" else topics.dead_letter
    partitions = range(KafkaAdmin(settings.kafka).partition_count(topic))
    messages = read_partitions_to_end(
        settings.kafka, topic, list(partitions), f"{settings.kafka.group_id}-replay"
    )
    backfill_before = now - timedelta(hours=settings.derive.backfill_after_hours)
    report = ReplayReport()
    producer = Producer(settings.kafka)
    try:
        for message in _paced(_flatten(messages.values()), rate, clock):
            if not _selected(message, merchant, since):
                report.filtered_out += 1
            elif message.header(H_ORIGINAL_SIZE) is not None:
                report.truncated += 1
            elif _header(message, H_STAGE) == "derive":
                origin = _header(message, H_TOPIC) or ""
                producer.produce(origin, message.key, message.value, original_headers(message))
                report.to_source_topics += 1
            else:
                _to_outbox(producer, topics.outbox, message, backfill_before, report)
        producer.flush()
    finally:
        producer.close()
    log.info("replay finished", extra=dataclasses.asdict(report))
    return report


def _to_outbox(
    producer: Producer,
    outbox: str,
    message: ConsumedMessage,
    backfill_before: datetime,
    report: ReplayReport,
) -> None:
    value = message.value or b""
    try:
        op = decode_operation(value)
        if isinstance(op, EventOperation) and not op.backfill and op.time < backfill_before:
            value = encode_operation(dataclasses.replace(op, backfill=True))
            report.backfilled += 1
    except (OutboxFormatError, TypeError):  # TypeError: orjson cannot write it back
        report.unreadable += 1
        return
    producer.produce(outbox, op.merchant_id.encode(), value, original_headers(message))
    report.to_outbox += 1


def _flatten(groups: Iterable[list[ConsumedMessage]]) -> Iterable[ConsumedMessage]:
    for group in groups:
        yield from group


def _paced(
    messages: Iterable[ConsumedMessage], rate: float, clock: Callable[[], float]
) -> Iterable[ConsumedMessage]:
    """Yield at most ``rate`` messages per second (a replay must not flood Klaviyo)."""
    started = clock()
    for index, message in enumerate(messages):
        ahead = index / rate - (clock() - started)
        if ahead > 0:
            time.sleep(ahead)  # pacing a batch tool, not synchronisation
        yield message
