"""The live, in-memory table of merchant integrations, fed from the compacted topic.

Every process reads the whole topic (all partitions, assigned, no consumer group commits):
``load()`` reads up to the high watermarks seen at start, so the first lookup already sees
every integration written before the process started; a background task owned by the table
then applies later records as they arrive, which is how a change takes effect without a
restart. A tombstone removes the merchant.

A record that cannot be used never stops the table. It is logged (merchant, offset, reason;
never key material), counted in ``stats`` and listed in ``problems()``; the merchant keeps
its last good settings, except that an undecryptable record may still *narrow* them: its
``enabled`` / ``order_tracking_enabled`` / ``marketing_enabled`` can switch a feature off,
never on. So a missing KEK cannot stop a "disable" from taking effect, and cannot send data
with an old key for a merchant who was turned off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from consumer.decode import DecodeError
from consumer.integrations.codec import IntegrationCodec, IntegrationRecord
from consumer.integrations.crypto import Keyring
from consumer.integrations.errors import DecryptError, IntegrationRecordError, IntegrationsError
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

__all__ = ["ChangeListener", "IntegrationsTable", "TableStats"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

ChangeListener = Callable[[str, MerchantSettings | None], None]
"""Called with a merchant id and its new settings (None = removed) after each change."""

_RETRY_SECONDS: Final = 0.5


@dataclass(slots=True)
class TableStats:
    """Counters since the table was created (the metrics layer exports them)."""

    records: int = 0
    """Records read, tombstones included."""
    tombstones: int = 0
    undecodable: int = 0
    """Not an integration record (bad Avro, wrong key, missing fields)."""
    undecryptable: int = 0
    """Decoded, but the API key did not decrypt (unknown or wrong KEK, tampering)."""


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
        self._consumer: KafkaConsumer | None = None
        self._settings: dict[str, MerchantSettings] = {}
        self._records: dict[str, IntegrationRecord] = {}
        self._problems: dict[str, str] = {}
        self._listeners: list[ChangeListener] = []
        self._changed = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[Any] | None = None
        self._failure: BaseException | None = None
        self._loaded = False
        self._closed = False

    # -- lookups (non-blocking, on the event loop) ---------------------------------------

    def get(self, merchant_id: str) -> MerchantSettings | None:
        """The merchant's current settings, or None if it has no (usable) integration."""
        return self._settings.get(merchant_id)

    def record(self, merchant_id: str) -> IntegrationRecord | None:
        """The merchant's latest decodable record (key still encrypted), or None."""
        return self._records.get(merchant_id)

    def records(self) -> dict[str, IntegrationRecord]:
        """Every merchant's latest decodable record, by merchant id (a copy)."""
        return dict(self._records)

    def merchant_ids(self) -> list[str]:
        """Merchants with usable settings, sorted."""
        return sorted(self._settings)

    def problems(self) -> dict[str, str]:
        """Merchant id → reason its latest record could not be applied (a copy)."""
        return dict(self._problems)

    @property
    def ready(self) -> bool:
        """True once ``load`` has caught up and while the background task is alive."""
        return self._loaded and self._failure is None and not self._closed

    @property
    def failure(self) -> BaseException | None:
        """What stopped the background task, if it died."""
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
        admin = KafkaAdmin(self._kafka)
        count = await asyncio.to_thread(admin.partition_count, self.topic, self._request_timeout)
        partitions = [TopicPartition(self.topic, p) for p in range(count)]
        consumer = self._consumer = await asyncio.to_thread(self._new_consumer)
        catch_up = await self._call(CatchUp.start, consumer, partitions, self._request_timeout)
        while not catch_up.done:
            batch = await self._call(consumer.consume, self._max_batch, self._poll_timeout)
            self._apply_batch(batch)
            await self._call(catch_up.advance)
        self._loaded = True
        _log.info(
            "integrations table loaded topic=%s partitions=%d merchants=%d problems=%d",
            self.topic,
            count,
            len(self._settings),
            len(self._problems),
        )
        self._follower = asyncio.create_task(self._follow(), name=f"integrations:{self.topic}")
        self._follower.add_done_callback(self._on_follower_done)

    def _new_consumer(self) -> KafkaConsumer:
        # group.id is required by the facade but never used: partitions are assigned and no
        # offset is ever committed, since every process needs the whole table.
        return KafkaConsumer(
            self._kafka, f"{self._kafka.group_id}-integrations-table", extra=self._consumer_extra
        )

    async def wait_until(self, predicate: Callable[[IntegrationsTable], bool]) -> None:
        """Return once ``predicate(self)`` holds, re-checked after every applied batch.

        Bound it with ``asyncio.timeout``.

        Raises:
            IntegrationsError: the background task died or the table was closed first.
        """
        while not predicate(self):
            if self._failure is not None or self._closed:
                raise IntegrationsError(
                    "integrations table stopped before the condition held"
                ) from self._failure
            await self._changed.wait()

    async def close(self) -> None:
        """Stop following, wait for the in-flight poll, release the consumer. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        if self._inflight is not None:
            # The worker thread cannot be cancelled; the client must not close under it.
            await asyncio.gather(self._inflight, return_exceptions=True)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
        self._notify()

    async def __aenter__(self) -> IntegrationsTable:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- background -----------------------------------------------------------------------

    async def _call(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run one blocking consumer call in a thread, remembered so ``close`` can await it."""
        future: asyncio.Future[_T] = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._inflight = future
        return await asyncio.shield(future)

    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 -- set by load() before this task starts
        while True:
            try:
                batch = await self._call(consumer.consume, self._max_batch, self._poll_timeout)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                _log.warning("integrations table poll failed, retrying error=%s", exc)
                await asyncio.sleep(_RETRY_SECONDS)  # back-off, not synchronisation
                continue
            if batch:
                self._apply_batch(batch)

    def _on_follower_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        self._failure = task.exception()
        if self._failure is not None:
            _log.error(
                "integrations table stopped following topic=%s error=%s",
                self.topic,
                self._failure,
            )
        self._notify()

    def _notify(self) -> None:
        # A fresh event per generation: waiters woken now re-check, later ones wait anew.
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- applying records -----------------------------------------------------------------

    def _apply_batch(self, batch: list[ConsumedMessage]) -> None:
        for message in batch:
            self._apply(message)
        if batch:
            self._notify()

    def _apply(self, message: ConsumedMessage) -> None:
        self.stats.records += 1
        try:
            merchant_id = (message.key or b"").decode("utf-8")
        except UnicodeDecodeError:
            merchant_id = ""
        if not merchant_id:
            self._skip(message, None, IntegrationRecordError("record key is not a merchant id"))
            return
        if message.value is None:
            self.stats.tombstones += 1
            self._records.pop(merchant_id, None)
            self._problems.pop(merchant_id, None)
            if self._settings.pop(merchant_id, None) is not None:
                self._tell(merchant_id, None)
            return
        try:
            record = self._codec.decode(message.value)
        except (DecodeError, IntegrationRecordError) as exc:
            self._skip(message, merchant_id, exc)
            return
        if record.merchant_id != merchant_id:
            mismatch = IntegrationRecordError("merchant_id differs from the record key")
            self._skip(message, merchant_id, mismatch)
            return
        self._records[merchant_id] = record
        try:
            settings = record.to_settings(self._keyring)
        except DecryptError as exc:
            self._skip(message, merchant_id, exc)
            self._narrow(merchant_id, record)
            return
        self._problems.pop(merchant_id, None)
        self._settings[merchant_id] = settings
        self._tell(merchant_id, settings)

    def _skip(
        self,
        message: ConsumedMessage,
        merchant_id: str | None,
        error: DecodeError | IntegrationsError,
    ) -> None:
        if isinstance(error, DecryptError):
            self.stats.undecryptable += 1
        else:
            self.stats.undecodable += 1
        if merchant_id is not None:
            self._problems[merchant_id] = error.reason
        # Our error messages name merchant, key id and cause only: safe to log verbatim.
        _log.error(
            "integration record skipped merchant=%s partition=%d offset=%d reason=%s error=%s",
            merchant_id,
            message.partition,
            message.offset,
            error.reason,
            error,
        )

    def _narrow(self, merchant_id: str, record: IntegrationRecord) -> None:
        previous = self._settings.get(merchant_id)
        if previous is None:
            return
        narrowed = dataclasses.replace(
            previous,
            enabled=previous.enabled and record.enabled,
            order_tracking_enabled=previous.order_tracking_enabled
            and record.order_tracking_enabled,
            marketing_enabled=previous.marketing_enabled and record.marketing_enabled,
        )
        if narrowed != previous:
            self._settings[merchant_id] = narrowed
            self._tell(merchant_id, narrowed)

    def _tell(self, merchant_id: str, settings: MerchantSettings | None) -> None:
        for listener in self._listeners:
            try:
                listener(merchant_id, settings)
            except Exception:  # noqa: BLE001 -- a listener's bug must not stop the table
                _log.exception("integrations table listener failed merchant=%s", merchant_id)
