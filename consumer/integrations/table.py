"""The live, in-memory table of merchant integrations, fed from the compacted topic.

Every process reads the whole topic (all partitions, assigned, no consumer group commits):
``load()`` reads up to the high watermarks seen at start, so the first lookup already sees
every integration written before the process started; a background task owned by the table
then applies later records as they arrive, which is how a change takes effect without a
restart. A tombstone removes the merchant.

The reader is supervised: if it dies (a Kafka error no retry cures, a bug), the table says so
at once (``ready`` false, ``on_reader(error)``: the service turns that into ``/readyz`` 503
and a metric) and keeps serving the last settings it has, flagged as possibly stale. After a
back-off a new consumer reads the whole topic again into a fresh view, which replaces the
served one in one step (listeners hear of every merchant that differs); then
``on_reader(None)``. Restarts go on, with a growing back-off, until one succeeds.

A record that cannot be used never stops the table either (``view.py`` says how each is
applied); nor does one whose application raises unexpectedly (a bug meeting odd data): it is
logged with its traceback, counted (``stats.failed``) and listed in ``problems()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from consumer.integrations.codec import IntegrationCodec, IntegrationRecord
from consumer.integrations.crypto import Keyring
from consumer.integrations.errors import IntegrationsError
from consumer.integrations.view import TableStats, TableView, merchant_id_of
from consumer.kafka import (
    CatchUp,
    ConfigValue,
    ConsumedMessage,
    KafkaAdmin,
    KafkaConsumer,
    KafkaError,
    TopicPartition,
)
from consumer.merchant import MerchantSettings
from consumer.settings import KafkaSettings

__all__ = ["ChangeListener", "IntegrationsTable", "ReaderListener"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

ChangeListener = Callable[[str, MerchantSettings | None], None]
"""Called with a merchant id and its new settings (None = removed) after each change."""

ReaderListener = Callable[[BaseException | None], None]
"""Called with the error when the reader dies, and with None once a restarted one caught up."""

_RETRY_SECONDS: Final = 0.5
_HEALTHY_SECONDS: Final = 60.0
"""A reader that ran this long before dying restarts after the first back-off again."""


class ReaderStopped(IntegrationsError):
    """The reader task ended (cancelled) while the table was open."""


class IntegrationsTable:
    """Merchant id → ``MerchantSettings``, kept current from the integrations topic.

    Args:
        kafka: Connection settings.
        topic: The integrations topic (``TopicSettings.integrations``).
        keyring: Decrypts the API keys.
        codec: Decodes values (default: the schemas shipped with the service).
        consumer_extra: More librdkafka consumer properties (tests shorten timeouts).
        poll_timeout: Longest wait of one background poll; bounds how long ``close`` waits.
        max_batch: Most records taken per poll.
        request_timeout: Timeout of one metadata or watermark request to the broker.
        on_reader: Told when the reader dies (the error) and when it is back (None).
        restart_delay: First back-off before restarting a dead reader; doubles per failure.
        max_restart_delay: Longest back-off between restarts.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        keyring: Keyring,
        *,
        codec: IntegrationCodec | None = None,
        consumer_extra: Mapping[str, ConfigValue] | None = None,
        poll_timeout: float = 0.5,
        max_batch: int = 500,
        request_timeout: float = 10.0,
        on_reader: ReaderListener | None = None,
        restart_delay: float = 1.0,
        max_restart_delay: float = 30.0,
    ) -> None:
        self.topic = topic
        self.stats = TableStats()
        self._kafka = kafka
        self._keyring = keyring
        self._codec = codec or IntegrationCodec()
        self._consumer_extra = dict(consumer_extra or {})
        self._poll_timeout = poll_timeout
        self._max_batch = max_batch
        self._request_timeout = request_timeout
        self._on_reader = on_reader
        self._restart_delay = restart_delay
        self._max_restart_delay = max_restart_delay
        self._consumer: KafkaConsumer | None = None
        self._view = TableView()
        self._listeners: list[ChangeListener] = []
        self._changed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reader_started = 0.0
        self._inflight: asyncio.Future[Any] | None = None
        self._failure: BaseException | None = None
        self._loaded = False
        self._closed = False

    # -- lookups (non-blocking, on the event loop) ---------------------------------------

    def get(self, merchant_id: str) -> MerchantSettings | None:
        """The merchant's current settings, or None if it has no (usable) integration."""
        return self._view.settings.get(merchant_id)

    def record(self, merchant_id: str) -> IntegrationRecord | None:
        """The merchant's latest decodable record (key still encrypted), or None."""
        return self._view.records.get(merchant_id)

    def records(self) -> dict[str, IntegrationRecord]:
        """Every merchant's latest decodable record, by merchant id (a copy)."""
        return dict(self._view.records)

    def merchant_ids(self) -> list[str]:
        """Merchants with usable settings, sorted."""
        return sorted(self._view.settings)

    def problems(self) -> dict[str, str]:
        """Merchant id → reason its latest record could not be applied (a copy)."""
        return dict(self._view.problems)

    @property
    def ready(self) -> bool:
        """True once ``load`` has caught up and while the reader is alive (settings current)."""
        return self._loaded and self._failure is None and not self._closed

    @property
    def failure(self) -> BaseException | None:
        """What stopped the reader, while it is down (None once a restart caught up)."""
        return self._failure

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every change (it must not block or raise)."""
        self._listeners.append(listener)

    # -- lifecycle ------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every partition up to its current high watermark, then follow live updates.

        Bound it with ``asyncio.timeout``; after a timeout or an error, ``close()`` the table.
        Reads are read_committed, so a transaction left open on the topic (a CLI killed
        mid-write) holds readiness back until the broker aborts it (transaction timeout).

        Raises:
            KafkaError: the topic is missing or the broker cannot be read.
        """
        if self._loaded or self._closed or self._consumer is not None:
            raise IntegrationsError("load() may be called once, before close()")
        count = await self._read_to_end(self._view)
        self._loaded = True
        _log.info(
            "integrations table loaded topic=%s partitions=%d merchants=%d problems=%d",
            self.topic,
            count,
            len(self._view.settings),
            len(self._view.problems),
        )
        self._start_reader()
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"integrations-supervisor:{self.topic}"
        )

    async def _read_to_end(self, view: TableView) -> int:
        """A new consumer reads every partition up to its current end into ``view``."""
        admin = KafkaAdmin(self._kafka)
        count = await asyncio.to_thread(admin.partition_count, self.topic, self._request_timeout)
        partitions = [TopicPartition(self.topic, p) for p in range(count)]
        consumer = self._consumer = await asyncio.to_thread(self._new_consumer)
        catch_up = await self._call(CatchUp.start, consumer, partitions, self._request_timeout)
        while not catch_up.done:
            batch = await self._call(consumer.consume, self._max_batch, self._poll_timeout)
            self._apply_batch(batch, view)
            await self._call(catch_up.advance)
        return count

    def _new_consumer(self) -> KafkaConsumer:
        # group.id is required by the facade but never used: partitions are assigned and no
        # offset is ever committed, since every process needs the whole table.
        return KafkaConsumer(
            self._kafka, f"{self._kafka.group_id}-integrations-table", extra=self._consumer_extra
        )

    async def wait_until(self, predicate: Callable[[IntegrationsTable], bool]) -> None:
        """Return once ``predicate(self)`` holds, re-checked after every applied batch.

        Bound it with ``asyncio.timeout`` (a dead reader is restarted, so it may hold later).

        Raises:
            IntegrationsError: the table was closed first.
        """
        while not predicate(self):
            if self._closed:
                raise IntegrationsError("integrations table closed before the condition held")
            await self._changed.wait()

    async def close(self) -> None:
        """Stop following, wait for the in-flight poll, release the consumer. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # The supervisor first, so that it starts no new reader; then the reader.
        for task in (self._supervisor, self._reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._release_consumer()
        self._notify()

    async def __aenter__(self) -> IntegrationsTable:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _release_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if self._inflight is not None:
            # The worker thread cannot be cancelled; the client must not close under it.
            await asyncio.gather(self._inflight, return_exceptions=True)
        if consumer is not None:
            await asyncio.to_thread(consumer.close)

    # -- background -----------------------------------------------------------------------

    async def _call(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run one blocking consumer call in a thread, remembered so ``close`` can await it."""
        future: asyncio.Future[_T] = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._inflight = future
        return await asyncio.shield(future)

    def _start_reader(self) -> None:
        self._reader_started = time.monotonic()
        self._reader = asyncio.create_task(self._follow(), name=f"integrations-reader:{self.topic}")

    async def _supervise(self) -> None:
        """Watch the reader; when it dies, report it and restart it with back-off."""
        delay = self._restart_delay
        while True:
            reader = self._reader
            assert reader is not None  # noqa: S101 -- started before the supervisor
            await asyncio.wait({reader})
            if time.monotonic() - self._reader_started >= _HEALTHY_SECONDS:
                delay = self._restart_delay
            self._reader_died(
                ReaderStopped("reader task cancelled") if reader.cancelled() else reader.exception()
            )
            while True:
                await asyncio.sleep(delay)  # back-off before the next consumer, not a sync
                delay = min(delay * 2, self._max_restart_delay)
                try:
                    await self._reload()
                except Exception as exc:  # noqa: BLE001 -- logged; retried after a longer back-off
                    _log.error(
                        "integrations table restart failed topic=%s error=%s retry_s=%.1f",
                        self.topic,
                        exc,
                        delay,
                    )
                else:
                    break
            self._start_reader()
            self._reader_back()

    async def _follow(self) -> None:
        while True:
            consumer = self._consumer
            assert consumer is not None  # noqa: S101 -- set before the reader starts
            try:
                batch = await self._call(consumer.consume, self._max_batch, self._poll_timeout)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                _log.warning("integrations table poll failed, retrying error=%s", exc)
                await asyncio.sleep(_RETRY_SECONDS)  # back-off, not synchronisation
                continue
            self._apply_batch(batch)

    async def _reload(self) -> None:
        """A new consumer reads the whole topic into a fresh view, which replaces the served one.

        Rebuilding (rather than resuming at the last offsets) is always right: the topic may
        have been recreated, or compaction may have removed tombstones meanwhile.
        """
        await self._release_consumer()
        view = TableView()
        await self._read_to_end(view)
        old, self._view = self._view, view
        for merchant_id in sorted(old.settings.keys() | view.settings.keys()):
            settings = view.settings.get(merchant_id)
            if old.settings.get(merchant_id) != settings:
                self._tell(merchant_id, settings)
        self._notify()

    def _reader_died(self, failure: BaseException | None) -> None:
        self._failure = failure or ReaderStopped("reader returned")
        self.stats.restarts += 1
        _log.error(
            "integrations table reader died, settings may be stale until it is restarted "
            "topic=%s error=%s",
            self.topic,
            self._failure,
            exc_info=self._failure,
        )
        self._notify()
        if self._on_reader is not None:
            self._on_reader(self._failure)

    def _reader_back(self) -> None:
        self._failure = None
        _log.info(
            "integrations table reader restarted topic=%s merchants=%d",
            self.topic,
            len(self._view.settings),
        )
        self._notify()
        if self._on_reader is not None:
            self._on_reader(None)

    def _notify(self) -> None:
        # A fresh event per generation: waiters woken now re-check, later ones wait anew.
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- applying records -----------------------------------------------------------------

    def _apply_batch(self, batch: list[ConsumedMessage], view: TableView | None = None) -> None:
        """Apply ``batch`` to ``view`` (default: the served one); listeners hear of changes to
        the served view only."""
        view = self._view if view is None else view
        for message in batch:
            merchant_id = merchant_id_of(message)
            before = view.settings.get(merchant_id) if merchant_id else None
            try:
                view.apply(message, merchant_id, self._codec, self._keyring, self.stats)
            except Exception:  # noqa: BLE001 -- a bug meeting odd data must not stop the table
                self.stats.failed += 1
                if merchant_id:
                    view.problems[merchant_id] = "unexpected_error"
                _log.exception(
                    "integration record failed merchant=%s partition=%d offset=%d",
                    merchant_id,
                    message.partition,
                    message.offset,
                )
                continue
            after = view.settings.get(merchant_id) if merchant_id else None
            if view is self._view and after is not before:
                self._tell(merchant_id, after)
        if batch:
            self._notify()

    def _tell(self, merchant_id: str, settings: MerchantSettings | None) -> None:
        for listener in self._listeners:
            try:
                listener(merchant_id, settings)
            except Exception:  # noqa: BLE001 -- a listener's bug must not stop the table
                _log.exception("integrations table listener failed merchant=%s", merchant_id)
