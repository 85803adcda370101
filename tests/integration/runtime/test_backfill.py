"""``backfill``: a newly integrated merchant's 60 days of history reach Klaviyo once, flagged
``backfill``, with the service running; killed mid-run it resumes; run again it adds nothing;
live traffic of the merchant is not held up by it."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from pydantic import SecretStr

from consumer.backfill import Backfill, BackfillRequest, Progress, as_history
from consumer.cli.main import main
from consumer.decode import SchemaCatalog, encode_single_object
from consumer.devstack.process import spawn
from consumer.devstack.publish import topic_of
from consumer.devstack.traffic import InputRecord, sample_traffic
from consumer.integrations import IntegrationPublisher, IntegrationRecord, Keyring
from consumer.integrations.audit import AuditAction, audit_change
from consumer.kafka import (
    KafkaConsumer,
    RetriableKafkaError,
    TopicPartition,
    TopicPartitionOffset,
    TopicSpec,
    UnknownTopicError,
    ensure_topics,
    partition_count,
)
from consumer.merchant import MerchantSettings
from consumer.outbox import EventOperation, decode_operation
from consumer.settings import Settings
from tests.helpers.kafka import Record, drain, produce_records
from tests.helpers.reference import expected_operations
from tests.helpers.waiting import wait_until
from tests.integration.runtime.conftest import Stack, running_service

M = "merchant-5"
M_KEY = "pk_backfillMerchantFive000001"
OTHERS = ["merchant-1", "merchant-2"]
NOW = datetime.now(UTC)
SINCE = NOW - timedelta(days=60)
pytestmark = pytest.mark.slow


def renamed(records: Iterable[InputRecord], suffix: str) -> list[InputRecord]:
    """The records with every id made unique to one batch of sample traffic."""
    out = []
    for record in records:
        value = dict(record.value)
        if record.subject == "orders":
            value["order_id"] += suffix
            value["shipments"] = [
                {**s, "shipment_id": s["shipment_id"] + suffix} for s in value["shipments"]
            ]
            key = value["order_id"]
        elif record.subject == "returns":
            value["return_id"] += suffix
            key = value["return_id"]
        else:
            value["event_id"] += suffix
            key = value["event_id"]
        out.append(InputRecord(record.subject, key, value))
    return out


def record_time(record: InputRecord) -> datetime:
    """When the record happened: its Kafka timestamp, as upstream's producer would set it."""
    value = record.value
    moment = value.get("updated_at") or value.get("occurred_at")
    assert isinstance(moment, datetime)
    return moment


def history() -> list[InputRecord]:
    """60 days of traffic for M and two other merchants, oldest first."""
    records: list[InputRecord] = []
    for days_ago in (57, 47, 37, 27, 17, 7):
        batch = sample_traffic([M, *OTHERS], 80, NOW - timedelta(days=days_ago), seed=days_ago)
        records += renamed(batch, f"-d{days_ago}")
    return sorted(records, key=record_time)


def keep_forever(settings: Settings) -> None:
    """Input topics that keep 60-day-old records: retention goes by record timestamp, and the
    broker's default (7 days) would delete this history within a minute."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    forever = [ConfigEntry("retention.ms", "-1", incremental_operation=AlterConfigOpType.SET)]
    resources = [
        ConfigResource(ResourceType.TOPIC, topic_of(settings, subject), incremental_configs=forever)
        for subject in ("returns", "orders", "storefront-events")
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=30)


def produce(settings: Settings, records: list[InputRecord]) -> None:
    """Produce records with their own times as Kafka timestamps (single-object encoding)."""
    keep_forever(settings)
    catalog = SchemaCatalog()
    by_topic: dict[str, list[Record]] = {}
    for record in records:
        version = catalog.latest(record.subject)  # its fingerprint costs more than the record
        payload = encode_single_object(version.schema, record.value, version.fingerprint)
        stamp = int(record_time(record).timestamp() * 1000)
        topic = topic_of(settings, record.subject)
        by_topic.setdefault(topic, []).append(
            Record(record.key.encode(), payload, timestamp_ms=stamp)
        )
    for topic, items in by_topic.items():
        produce_records(settings.kafka, topic, items)


def skip_history_for_live_derive(settings: Settings) -> None:
    """The live service processed the history long ago (when M was not integrated): its
    derive group's offsets stand at the inputs' ends."""
    topics = settings.topics
    consumer = KafkaConsumer(settings.kafka, f"{settings.kafka.group_id}-derive")
    try:
        ends = []
        for topic in (topics.returns, topics.orders, topics.storefront_events):
            for p in range(partition_count(settings.kafka, topic)):
                high = consumer.get_watermark_offsets(TopicPartition(topic, p))[1]
                ends.append(TopicPartitionOffset(topic, p, high))

        def committed() -> bool:
            try:
                consumer.commit(ends)
            except RetriableKafkaError:  # the group coordinator is still loading
                return False
            return True

        wait_until(committed, timeout=30, what="the live derive group's offsets committed")
    finally:
        consumer.close()


def integrate(stack: Stack, settings: MerchantSettings) -> None:
    """M's integration, as ``integrations set`` writes it."""
    keyring = Keyring.from_settings(stack.settings.integrations)
    record = IntegrationRecord.from_settings(
        settings, keyring, updated_by="test", updated_at=datetime.now(UTC).replace(microsecond=0)
    )
    with IntegrationPublisher(stack.settings.kafka, stack.settings.topics) as publisher:
        publisher.publish([(record, audit_change(AuditAction.SET, None, record, key_change=None))])


def outbox_size(settings: Settings) -> int:
    """Records ever written to the outbox (0 while it does not exist)."""
    topic = settings.topics.outbox
    try:
        partitions = partition_count(settings.kafka, topic)
    except UnknownTopicError:
        return 0
    consumer = KafkaConsumer(settings.kafka, "outbox-size")
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(partitions)
        )
    finally:
        consumer.close()


def expected_events(records: list[InputRecord], merchant: MerchantSettings) -> set[tuple[str, str]]:
    """(metric, unique_id) of every event M's records in the window derive."""
    window = [r for r in records if record_time(r) >= SINCE and r.value["merchant_id"] == M]
    ops = expected_operations(window, {M: merchant}, NOW)
    return {
        (op.metric, op.unique_id) for op in map(as_history, ops) if isinstance(op, EventOperation)
    }


async def test_backfill_delivers_history_once_resumes_after_kill_and_lets_live_go_first(
    stack: Stack,
) -> None:
    # Delivery slowed to 1 request a second per merchant, so the backfill is still being
    # delivered when live traffic comes: arrival order then shows who went first.
    stack.overrides["delivery"] = {
        "linger_seconds": 0.2,
        "events_burst_per_second": 1,
        "events_steady_per_minute": 60,
    }
    settings = Settings(**stack.overrides)
    merchant = MerchantSettings(
        merchant_id=M,
        api_key=SecretStr(M_KEY),
        order_tracking_enabled=True,
        marketing_enabled=True,
        email_list_id=f"{M}-email-list",
        sms_list_id=f"{M}-sms-list",
        tracking_page_url_template="https://track.example.com/{order_name}?t={tracking_number}",
    )
    stack.sandbox.add_account(M, M_KEY)
    stack.sandbox.add_lists(M, f"{M}-email-list", f"{M}-sms-list")
    records = history()
    assert sum(r.value["merchant_id"] == M for r in records) >= 2000
    assert min(record_time(r) for r in records) < SINCE  # some history is older than --since
    await asyncio.to_thread(produce, settings, records)
    await asyncio.to_thread(skip_history_for_live_derive, settings)
    await asyncio.to_thread(integrate, stack, merchant)
    wanted = expected_events(records, merchant)

    async with running_service(settings):
        # 1. A first run, killed -9 after its first committed chunk.
        argv = [sys.executable, "-m", "consumer.cli.main", "backfill", "--merchant", M,
                "--since", SINCE.isoformat(), "--chunk", "100"]  # fmt: skip
        child = spawn(argv, env=stack.env(), output=subprocess.PIPE)
        killed_at = await asyncio.to_thread(_kill_after_first_commit, child)
        assert child.returncode == -signal.SIGKILL, f"the first run ended first: {killed_at}"
        assert 0 < killed_at["read"] < killed_at["total"]

        # 2. The same run resumed in-process; live traffic of M arrives while it goes on.
        live = renamed(sample_traffic([M], 2, datetime.now(UTC), seed=99), "-live")
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def report(progress: Progress, committed: bool) -> None:
            loop.call_soon_threadsafe(started.set)

        request = BackfillRequest(merchant, SINCE, chunk_records=100)
        resumed = asyncio.create_task(asyncio.to_thread(Backfill(settings, request).run, report))
        await started.wait()
        await stack.publish(live)
        progress = await resumed
        assert progress.done
        live_ops = [
            op
            for op in expected_operations(live, {M: merchant}, datetime.now(UTC))
            if isinstance(op, EventOperation)
        ]
        live_keys = {(op.metric, op.unique_id) for op in live_ops}
        try:
            await stack.sandbox.wait_for_events(M, len(wanted) + len(live_keys), timeout=60)
        except TimeoutError:
            have = {(e.metric, e.unique_id) for e in stack.sandbox.events(M)}
            missing_live = sorted(live_keys - have)[:5]
            missing_history = sorted(wanted - have)[:5]
            extra = sorted(have - wanted - live_keys)[:5]
            raise AssertionError(
                f"{missing_live=} {missing_history=} {extra=} {progress.to_json()}"
            ) from None

    stored = stack.sandbox.events(M)
    backfilled = [e for e in stored if (e.metric, e.unique_id) in wanted]
    assert {(e.metric, e.unique_id) for e in backfilled} == wanted
    assert len(backfilled) == len(wanted)
    assert all(e.backfill for e in backfilled), "a backfilled event would fire flows"
    assert stack.sandbox.duplicate_count(M) == 0, "an event was sent twice"
    arrived_live = [e for e in stored if (e.metric, e.unique_id) in live_keys]
    assert len(arrived_live) == len(live_keys)
    assert max(e.request_number for e in arrived_live) < max(
        e.request_number for e in backfilled
    ), "live events waited for the whole backfill"
    for other in OTHERS:
        assert stack.sandbox.events(other) == [], f"{other} got events from M's backfill"

    # 3. Run again: done already, nothing is written.
    before = await asyncio.to_thread(outbox_size, settings)
    again = await asyncio.to_thread(Backfill(settings, request).run, lambda p, c: None)
    assert again.done
    assert await asyncio.to_thread(outbox_size, settings) == before


def _kill_after_first_commit(child: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Read the child's JSON progress lines; SIGKILL it after the first committed chunk."""
    assert child.stdout is not None
    seen = []
    with child.stdout:
        for raw in child.stdout:
            seen.append(raw[:300])
            line = orjson.loads(raw) if raw.startswith(b'{"backfill"') else None
            if line is not None and line["committed"] and not line["done"]:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                return dict(line)
    child.wait(timeout=30)
    return {"seen": seen}


async def test_backfill_dry_run_counts_per_metric_and_writes_nothing(stack: Stack) -> None:
    merchant = dataclasses.replace(
        MerchantSettings(merchant_id=M, api_key=SecretStr(M_KEY)), order_tracking_enabled=True
    )
    traffic = renamed(sample_traffic([M, *OTHERS], 10, NOW - timedelta(days=3)), "-dry")
    records = sorted(traffic, key=record_time)
    await asyncio.to_thread(produce, stack.settings, records)
    before = await asyncio.to_thread(outbox_size, stack.settings)
    since = NOW - timedelta(days=10)
    request = BackfillRequest(merchant, since)
    progress = await asyncio.to_thread(
        Backfill(stack.settings, request).run, lambda p, c: None, dry_run=True
    )
    records = [r for r in records if record_time(r) >= since]  # the stalled orders are older
    ops = expected_operations(
        [r for r in records if r.value["merchant_id"] == M], {M: merchant}, NOW
    )
    wanted = Counter(f"event:{op.metric}" for op in ops if isinstance(op, EventOperation))
    assert progress.derived == wanted
    assert progress.kept == sum(r.value["merchant_id"] == M for r in records)
    assert progress.other_merchants == len(records) - progress.kept
    assert await asyncio.to_thread(outbox_size, stack.settings) == before


async def test_integrations_set_with_backfill_days_writes_the_history_flagged(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``integrations set M --backfill-days 10``: saved, then M's last 10 days to the outbox."""
    settings = stack.settings
    ensure_topics(settings.kafka, [TopicSpec(settings.topics.outbox, 3)])
    records = sorted(renamed(sample_traffic([M, *OTHERS], 6, NOW - timedelta(days=3)), "-set"),
                     key=record_time)  # fmt: skip
    await asyncio.to_thread(produce, settings, records)
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    key_file = tmp_path / "key"
    key_file.write_text(M_KEY)
    argv = ["integrations", "set", M, "--api-key-file", str(key_file), "--order-tracking",
            "--no-verify", "--backfill-days", "10"]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0
    written = [
        decode_operation(m.value or b"") for m in drain(settings.kafka, settings.topics.outbox)
    ]
    window = [r for r in records if record_time(r) >= NOW - timedelta(days=10)]
    merchant = MerchantSettings(
        merchant_id=M, api_key=SecretStr(M_KEY), order_tracking_enabled=True
    )
    expected = [as_history(op) for op in expected_operations(
        [r for r in window if r.value["merchant_id"] == M], {M: merchant}, NOW)]  # fmt: skip
    assert {op.merchant_id for op in written} == {M}
    assert Counter((type(op).__name__, op.unique_id) for op in written) == Counter(
        (type(op).__name__, op.unique_id) for op in expected
    )
    assert all(op.backfill for op in written if isinstance(op, EventOperation))
