"""The integrations table on a real broker: load to the end, then live updates."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import SecretStr

from consumer.integrations import (
    IntegrationCodec,
    IntegrationRecord,
    IntegrationsTable,
    Keyring,
    MerchantSettings,
)
from consumer.settings import KafkaSettings
from tests.integration.conftest import TopicFactory

CODEC = IntegrationCodec()
COMPACT = {"cleanup.policy": "compact"}
DEADLINE = 30.0


def record(keyring: Keyring, merchant_id: str, **values: object) -> IntegrationRecord:
    settings = MerchantSettings(
        merchant_id=merchant_id, api_key=SecretStr(f"pk_{merchant_id}Key0123456789")
    )
    base = IntegrationRecord.from_settings(
        settings, keyring, updated_by="test", updated_at=datetime.now(UTC)
    )
    return base.replace(**values)


def kv(rec: IntegrationRecord) -> tuple[bytes, bytes]:
    return rec.merchant_id.encode(), CODEC.encode(rec)


async def test_table_load_reads_everything_written_before(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    keyring = Keyring({"k1": os.urandom(32)})
    topic = topic_factory(partitions=3, config=COMPACT)
    records = [record(keyring, f"m{i}", order_tracking_enabled=i % 2 == 0) for i in range(20)]
    produce(topic, [kv(r) for r in records])
    produce(topic, [(b"m3", None), (b"m4", b"not avro")], transactional=True)

    async with IntegrationsTable(kafka_settings, topic, keyring) as table:
        assert not table.ready
        async with asyncio.timeout(DEADLINE):
            await table.load()
        assert table.ready
        # 20 less m3 (tombstone); m4 keeps its last good settings despite the garbage after it
        assert len(table.merchant_ids()) == 19
        assert table.get("m4") is not None
        m2 = table.get("m2")
        assert m2 is not None
        assert m2.order_tracking_enabled
        assert m2.api_key.get_secret_value() == "pk_m2Key0123456789"
        assert table.get("m3") is None
        assert table.problems() == {"m4": "unknown_magic_byte"}
        assert table.stats.tombstones == 1
    assert not table.ready


async def test_table_load_of_empty_topic_is_ready_at_once(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(config=COMPACT)
    async with IntegrationsTable(kafka_settings, topic, Keyring({"k1": os.urandom(32)})) as table:
        async with asyncio.timeout(DEADLINE):
            await table.load()
        assert table.ready
        assert table.merchant_ids() == []


async def test_table_order_tracking_off_applies_on_next_record(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    """Turning order tracking off takes effect live, without a restart."""
    keyring = Keyring({"k1": os.urandom(32)})
    topic = topic_factory(config=COMPACT)
    on = record(keyring, "shop", order_tracking_enabled=True, marketing_enabled=True)
    produce(topic, [kv(on)])
    changes: list[tuple[str, MerchantSettings | None]] = []

    async with IntegrationsTable(kafka_settings, topic, keyring) as table:
        table.add_listener(lambda m, s: changes.append((m, s)))
        async with asyncio.timeout(DEADLINE):
            await table.load()
        before = table.get("shop")
        assert before is not None
        assert before.order_tracking_enabled

        await asyncio.to_thread(produce, topic, [kv(on.replace(order_tracking_enabled=False))])
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: not _tracking(t, "shop"))
        after = table.get("shop")
        assert after is not None
        assert after.marketing_enabled  # the rest is unchanged
        assert after.enabled

        await asyncio.to_thread(produce, topic, [(b"shop", None)])
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: t.get("shop") is None)
    assert [s.order_tracking_enabled if s else None for _, s in changes] == [True, False, None]


async def test_table_bad_records_live_are_counted_not_fatal(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    keyring = Keyring({"k1": os.urandom(32)})
    other = Keyring({"k2": os.urandom(32)})
    topic = topic_factory(config=COMPACT)
    async with IntegrationsTable(kafka_settings, topic, keyring) as table:
        async with asyncio.timeout(DEADLINE):
            await table.load()
        produce_later = [
            (b"a", b"\xc3\x01garbage-garbage"),
            kv(record(other, "b")),
            kv(record(keyring, "c")),
        ]
        await asyncio.to_thread(produce, topic, produce_later)
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: t.get("c") is not None)
        assert table.ready
        assert table.stats.undecodable == 1
        assert table.stats.undecryptable == 1
        assert table.problems() == {"a": "unknown_fingerprint", "b": "unknown_key_id"}


def _tracking(table: IntegrationsTable, merchant_id: str) -> bool:
    settings = table.get(merchant_id)
    return settings is not None and settings.order_tracking_enabled


async def test_table_dead_reader_is_reported_restarted_and_catches_up(
    kafka_settings: KafkaSettings, topic_factory: TopicFactory, produce: Callable[..., None]
) -> None:
    """Killing the reader: not ready and told at once, old settings kept meanwhile; after the
    back-off a new reader has read the whole topic again and follows it."""
    keyring = Keyring({"k1": os.urandom(32)})
    topic = topic_factory(config=COMPACT)
    produce(topic, [kv(record(keyring, "shop", order_tracking_enabled=True))])
    reports: list[BaseException | None] = []
    changes: list[tuple[str, MerchantSettings | None]] = []

    async with IntegrationsTable(
        kafka_settings, topic, keyring, on_reader=reports.append, restart_delay=0.2
    ) as table:
        table.add_listener(lambda m, s: changes.append((m, s)))
        async with asyncio.timeout(DEADLINE):
            await table.load()
        changes.clear()
        assert table._reader is not None
        table._reader.cancel()  # the reader task dies
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: not t.ready)
        assert len(reports) == 1
        assert reports[0] is not None
        assert _tracking(table, "shop")  # last settings still served (flagged as stale)

        written_around_the_restart = [
            kv(record(keyring, "shop", order_tracking_enabled=False)),
            kv(record(keyring, "new")),
        ]
        await asyncio.to_thread(produce, topic, written_around_the_restart)
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: t.ready)
            # The records may land before the new reader's start (read back) or after it
            # (followed live): either way they are applied.
            await table.wait_until(lambda t: not _tracking(t, "shop") and t.get("new") is not None)
        assert reports[1:] == [None]
        assert table.stats.restarts == 1
        assert sorted(m for m, _ in changes) == ["new", "shop"]

        # and the new reader follows live updates
        await asyncio.to_thread(produce, topic, [(b"new", None)])
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: t.get("new") is None)
