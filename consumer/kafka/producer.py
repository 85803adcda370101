"""Producer facades: ``Producer`` (idempotent) and ``TransactionalProducer`` (exactly-once).

Both block: ``flush``, ``init_transactions``, ``send_offsets``, ``commit`` and ``abort`` make
network round trips and may take up to their ``timeout``. The asyncio runtime calls them
through ``asyncio.to_thread``, one call at a time per producer. ``produce`` only queues the
record (it blocks only while the local queue is full); code on an event loop uses
``BackgroundProducer`` (``background.py``), which never blocks its caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from typing import Any, Final

import confluent_kafka

from consumer.kafka.config import ConfigValue, build_config
from consumer.kafka.consumer import GroupMetadata
from consumer.kafka.errors import FatalKafkaError, KafkaError, RetriableKafkaError, wrap
from consumer.kafka.messages import Header, TopicPartitionOffset, to_confluent
from consumer.settings import KafkaSettings

__all__ = ["DeliveryCallback", "Producer", "TransactionalProducer"]

DeliveryCallback = Callable[[KafkaError | None], None]
"""Told one record's fate: ``None`` once the broker acknowledged it, else the error."""

logger = logging.getLogger(__name__)

_PINNED: Final[Mapping[str, ConfigValue]] = {
    # No duplicates or reordering from internal retries; required by transactions too.
    "enable.idempotence": True,
    "acks": "all",
}
_DEFAULTS: Final[Mapping[str, ConfigValue]] = {
    "linger.ms": 5,
    "compression.type": "lz4",
}
_QUEUE_FULL_WAIT_SECONDS: Final = 0.1


def _defaults(settings: KafkaSettings) -> dict[str, ConfigValue]:
    # The internal topics' max.message.bytes is the same setting (consumer.runtime.topics).
    return {**_DEFAULTS, "message.max.bytes": settings.max_message_bytes}


_STUCK_GRACE_SECONDS: Final = 5.0


class _BaseProducer:
    """Delivery tracking shared by both producers."""

    def __init__(self, conf: dict[str, Any], queue_full_timeout: float) -> None:
        self._producer = confluent_kafka.Producer(conf)
        self._queue_full_timeout = queue_full_timeout
        self._lock = threading.Lock()
        self._failed: list[KafkaError] = []

    def _on_delivery(
        self, error: confluent_kafka.KafkaError | None, message: confluent_kafka.Message
    ) -> None:
        if error is not None:
            failure = wrap(error, f"delivery to {message.topic()}[{message.partition()}]")
            with self._lock:
                self._failed.append(failure)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue one record; ``partition=None`` lets the key choose (murmur2, as Java does).

        With ``on_delivery``, that callback learns the record's fate (from inside ``poll`` or
        ``flush``) and a failure is not raised by ``flush``: the caller was told.

        Raises:
            RetriableKafkaError: the local queue stayed full for ``queue_full_timeout`` s.
            KafkaError: the record was refused (too large, unknown partition, ...).
        """
        report = self._on_delivery if on_delivery is None else _report(on_delivery)
        self._queue(topic, key, value, headers, partition, timestamp_ms, report)
        self._producer.poll(0)

    def _queue(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        partition: int | None,
        timestamp_ms: int | None,
        on_delivery: Callable[[Any, Any], None] | None,
    ) -> None:
        deadline: float | None = None  # the clock is read only once the queue is full
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    -1 if partition is None else partition,
                    on_delivery=on_delivery,
                    timestamp=timestamp_ms or 0,
                    headers=list(headers) if headers else None,
                )
            except BufferError:
                moment = time.monotonic()
                if deadline is None:
                    deadline = moment + self._queue_full_timeout
                elif moment >= deadline:
                    raise RetriableKafkaError(
                        f"produce to {topic}: local queue full for {self._queue_full_timeout} s"
                    ) from None
                # Serving delivery reports is what frees room in the queue.
                self._producer.poll(_QUEUE_FULL_WAIT_SECONDS)
            except confluent_kafka.KafkaException as exc:
                raise wrap(exc, f"produce to {topic}") from exc
            else:
                return

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports (their callbacks run here), waiting up to ``timeout`` s."""
        self._producer.poll(timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every queued record is delivered.

        Raises:
            KafkaError: a record failed delivery since the last ``flush`` (the first failure;
                the count is in the message).
            RetriableKafkaError: records were still undelivered after ``timeout`` seconds.
        """
        remaining = self._producer.flush(timeout)
        with self._lock:
            failed, self._failed = self._failed, []
        if failed:
            first = failed[0]
            raise type(first)(
                f"{first} ({len(failed)} record(s) failed)", code=first.code, name=first.name
            )
        if remaining:
            raise RetriableKafkaError(f"flush: {remaining} record(s) undelivered after {timeout} s")

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued (best effort) and release the client; never raises.

        A client already failed (e.g. fenced) reports that error on close too; it was raised
        by the call that hit it, so here it is only logged.
        """
        try:
            self._producer.flush(timeout)
            self._producer.close()
        except (confluent_kafka.KafkaException, RuntimeError) as exc:
            logger.info("producer closed with error=%s", exc)

    def __len__(self) -> int:
        """Records queued or in flight."""
        return len(self._producer)


def _report(
    callback: DeliveryCallback,
) -> Callable[[confluent_kafka.KafkaError | None, confluent_kafka.Message], None]:
    def on_delivery(
        error: confluent_kafka.KafkaError | None, message: confluent_kafka.Message
    ) -> None:
        where = f"delivery to {message.topic()}[{message.partition()}]"
        callback(None if error is None else wrap(error, where))

    return on_delivery


class Producer(_BaseProducer):
    """An idempotent producer (``acks=all``): no duplicates from retries, order kept.

    Args:
        settings: Connection settings.
        extra: More librdkafka properties; ``enable.idempotence`` and ``acks`` are fixed.
        queue_full_timeout: How long ``produce`` waits for room in a full local queue.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        extra: Mapping[str, ConfigValue] | None = None,
        queue_full_timeout: float = 30.0,
    ) -> None:
        conf = build_config(settings, defaults=_defaults(settings), pinned=_PINNED, extra=extra)
        super().__init__(conf, queue_full_timeout)


class TransactionalProducer(_BaseProducer):
    """A transactional producer: records and consumer offsets commit together, or not at all.

    Usage, per checkpoint: ``begin``, ``produce``..., ``send_offsets``, ``commit`` (which
    flushes). On an ``abortable`` error call ``abort`` and redo the work; on a ``fatal`` one
    (e.g. fenced by a newer instance with the same ``transactional_id``) close this producer.

    Args:
        settings: Connection settings (``transaction_timeout_ms`` is used).
        transactional_id: Stable id per input partition set / process; a restarted instance
            with the same id fences the old one and aborts its open transaction.
        extra: More librdkafka properties.
        queue_full_timeout: How long ``produce`` waits for room in a full local queue.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        *,
        extra: Mapping[str, ConfigValue] | None = None,
        queue_full_timeout: float = 30.0,
    ) -> None:
        pinned = {**_PINNED, "transactional.id": transactional_id}
        defaults = {
            **_defaults(settings),
            "transaction.timeout.ms": settings.transaction_timeout_ms,
        }
        conf = build_config(settings, defaults=defaults, pinned=pinned, extra=extra)
        super().__init__(conf, queue_full_timeout)
        self.transactional_id = transactional_id
        self._stuck: str | None = None
        """The transactional call that never returned, once one did not."""

    def init_transactions(self, timeout: float = 60.0) -> None:
        """Register the transactional id (fencing older instances); call once, first."""
        self._bounded("init_transactions", self._producer.init_transactions, timeout)

    def begin(self) -> None:
        """Start a transaction."""
        try:
            self._producer.begin_transaction()
        except confluent_kafka.KafkaException as exc:
            raise wrap(exc, "begin_transaction") from exc

    def send_offsets(
        self,
        offsets: Sequence[TopicPartitionOffset],
        group_metadata: GroupMetadata,
        timeout: float = 10.0,
    ) -> None:
        """Add the consumer's ``offsets`` (next offsets to consume) to this transaction.

        A healthy group coordinator answers in milliseconds; the short timeout bounds how
        long a checkpoint waits for one that went away (see ``_bounded``).
        """
        if not offsets:
            return
        self._bounded(
            "send_offsets_to_transaction",
            lambda seconds: self._producer.send_offsets_to_transaction(
                to_confluent(offsets), group_metadata.handle, seconds
            ),
            timeout,
        )

    def commit(self, timeout: float = 60.0) -> None:
        """Flush and commit the transaction.

        Raises:
            KafkaError: check ``abortable`` (abort, redo), ``retriable`` (call ``commit``
                again) and ``fatal`` (close).
        """
        self._bounded("commit_transaction", self._producer.commit_transaction, timeout)
        with self._lock:
            self._failed.clear()  # a committed transaction had every record delivered

    def abort(self, timeout: float = 60.0) -> None:
        """Abort the transaction: its records stay invisible to read_committed consumers."""
        self._bounded("abort_transaction", self._producer.abort_transaction, timeout)
        with self._lock:
            self._failed.clear()  # those records were discarded anyway

    def close(self, timeout: float = 30.0) -> None:
        """Abort an open transaction, if any, and release the client; never raises.

        A producer with a call stuck inside librdkafka is left as it is (closing it would
        wait for that call); the broker aborts its transaction when a new producer with the
        same transactional id calls ``init_transactions``.
        """
        if self._stuck is not None:
            logger.warning("transactional producer abandoned, %s never returned", self._stuck)
            return
        self._release()

    def _release(self) -> None:
        try:
            self._producer.close()
        except (confluent_kafka.KafkaException, RuntimeError) as exc:
            logger.info("transactional producer closed with error=%s", exc)

    def _bounded(self, what: str, call: Callable[[float], object], timeout: float) -> None:
        """Run a blocking transactional ``call(timeout)``, waiting at most a little longer.

        librdkafka does not always honour the timeout: ``send_offsets_to_transaction`` can
        block for good when the group coordinator went away mid-call (librdkafka issues
        #5456, #5511). The call runs in a daemon thread so that such a hang costs a
        producer, not the process: it becomes fatal here, and the caller builds a new one.
        """
        if self._stuck is not None:
            raise FatalKafkaError(f"{what}: producer abandoned, {self._stuck} never returned")
        outcome: Future[None] = Future()

        def run() -> None:
            try:
                call(timeout)
            except BaseException as exc:  # noqa: BLE001 -- handed to the waiting thread
                outcome.set_exception(exc)
            else:
                outcome.set_result(None)
            with self._lock:
                abandoned = self._stuck is not None
            if abandoned:
                # Released here, if the call ever returns: destroying a client can block,
                # and a garbage collection could otherwise do it on the event loop's thread.
                self._release()

        threading.Thread(target=run, name=f"kafka-{what}", daemon=True).start()
        wait([outcome], timeout + _STUCK_GRACE_SECONDS)  # returns done or not, never raises
        with self._lock:
            if not outcome.done():
                self._stuck = what
        if self._stuck is not None:
            raise FatalKafkaError(
                f"{what}: no answer {timeout + _STUCK_GRACE_SECONDS:.0f} s after its "
                f"{timeout:.0f} s timeout; abandoning this producer"
            )
        error = outcome.exception()
        if isinstance(error, confluent_kafka.KafkaException):
            raise wrap(error, what) from error
        if error is not None:
            raise error
