"""``BackgroundProducer``: a ``Producer`` driven by a thread of its own, for event-loop code.

``Producer.produce`` blocks while librdkafka's local queue is full (an outage fills it), and
delivery reports are only served by ``poll``/``flush``: neither belongs on an event loop. Here
one thread does both. ``send`` only appends to a queue and returns an ``asyncio.Future`` that
the thread settles with the record's delivery report, so a caller knows a record is on the
broker before it treats the work as done. The queue has no size limit of its own: the caller
bounds it by back-pressure (the deliver stage counts each unacknowledged record as unfinished
work of its partition, which pauses at the in-flight limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from consumer.kafka.config import ConfigValue
from consumer.kafka.errors import KafkaError
from consumer.kafka.messages import Header
from consumer.kafka.producer import Producer
from consumer.settings import KafkaSettings

__all__ = ["BackgroundProducer"]

log = logging.getLogger(__name__)

_POLL_SECONDS: Final = 0.05
"""How often the thread serves delivery reports while records are in flight."""


@dataclass(frozen=True, slots=True)
class _Send:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class BackgroundProducer:
    """An idempotent producer whose calls never block the caller's event loop.

    Args:
        settings: Connection settings.
        name: Names the thread (``kafka-<name>``), for thread dumps.
        extra: More librdkafka properties (see ``Producer``).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        name: str = "producer",
        extra: Mapping[str, ConfigValue] | None = None,
    ) -> None:
        self._producer = Producer(settings, extra=extra)
        self._queue: queue.SimpleQueue[_Send | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"kafka-{name}", daemon=True)
        self._thread.start()

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Sequence[Header] = ()
    ) -> asyncio.Future[None]:
        """Queue one record (on the running loop); the future ends when the broker has it.

        The future's exception is the ``KafkaError`` of a record that was refused or not
        delivered in time (librdkafka retries within ``message.timeout.ms`` first).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Send(topic, key, value, tuple(headers), loop, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (up to ``timeout`` s), then release the client; blocks.

        Records still undelivered then are dropped, their futures left pending: the caller
        did not count them as done.
        """
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Still inside a produce call waiting for room: closing under it would crash.
            log.warning("background producer abandoned: the broker took no records")
            return
        self._producer.close(timeout)

    def _run(self) -> None:
        while True:
            self._producer.poll(0)
            # Nothing in flight: no report to wait for, so sleep until the next record.
            wait = _POLL_SECONDS if len(self._producer) else None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if item is None:
                return
            try:
                self._producer.produce(
                    item.topic,
                    item.key,
                    item.value,
                    item.headers,
                    on_delivery=functools.partial(_settle, item),
                )
            except KafkaError as exc:  # refused, or the local queue stayed full
                _settle(item, exc)
            except Exception as exc:  # a bug (bad argument): fail this record, keep the thread
                log.exception("produce failed", extra={"topic": item.topic})
                _settle(item, KafkaError(f"produce to {item.topic}: {exc!r}"))


def _settle(item: _Send, error: KafkaError | None) -> None:
    """Hand a record's fate to its loop (if that loop still runs)."""

    def resolve() -> None:
        if item.future.done():
            return
        if error is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        item.loop.call_soon_threadsafe(resolve)
