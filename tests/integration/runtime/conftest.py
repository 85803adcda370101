"""A whole local stack per test: unique topics on the session broker, a Klaviyo sandbox over
HTTP, onboarded merchants, and the service in-process or as a real child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumer.devstack.process import spawn
from consumer.devstack.publish import ensure_input_topics, publish
from consumer.devstack.stack import DemoMerchant, demo_merchants, merchant_settings, onboard
from consumer.devstack.traffic import InputRecord
from consumer.integrations.crypto import generate_kek
from consumer.kafka import (
    ConsumedMessage,
    KafkaConsumer,
    RetriableKafkaError,
    TopicPartition,
    partition_count,
)
from consumer.merchant import MerchantSettings
from consumer.runtime.service import Service, Stage
from consumer.sandbox import Sandbox
from consumer.settings import Settings, TopicSettings
from tests.helpers.kafka import drain, unique_name

ENV_PREFIX = "KLAVIYO_CONSUMER_"


@dataclass
class Stack:
    """Settings, sandbox and merchants of one test's stack."""

    overrides: dict[str, Any]
    sandbox: Sandbox
    merchants: list[DemoMerchant]
    log_dir: Path
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(**self.overrides)

    @property
    def integrated(self) -> dict[str, MerchantSettings]:
        """Merchant id → settings as the service sees them (the integrated merchants)."""
        return {m.merchant_id: merchant_settings(m) for m in self.merchants if m.api_key}

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for a child process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        for section, values in self.overrides.items():
            for name, value in values.items():
                text = orjson.dumps(value).decode() if isinstance(value, dict) else str(value)
                env[f"{ENV_PREFIX}{section.upper()}__{name.upper()}"] = text
        return env

    async def publish(self, records: Sequence[InputRecord]) -> int:
        """Publish input records (single-object encoding) and wait for the broker's acks."""
        return await asyncio.to_thread(publish, self.settings, records)

    async def outbox(self) -> list[ConsumedMessage]:
        """Every committed outbox record up to the current end."""
        return await asyncio.to_thread(drain, self.settings.kafka, self.settings.topics.outbox)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A Klaviyo sandbox on a free port."""
    async with Sandbox.run() as running:
        yield running


@pytest.fixture
def replication_factor() -> int:
    """Replicas of every topic of a ``stack`` (a module on a cluster overrides it)."""
    return 1


@pytest.fixture
async def stack(
    bootstrap_servers: str, replication_factor: int, sandbox: Sandbox, tmp_path: Path
) -> AsyncIterator[Stack]:
    """Unique topics and groups, the demo merchants onboarded, input topics with 3 partitions."""
    prefix = unique_name("e2e")
    topic_names = {
        name: f"{prefix}-{default.default}"
        for name, default in TopicSettings.model_fields.items()
        if isinstance(default.default, str)
    }
    overrides: dict[str, Any] = {
        "kafka": {
            "bootstrap_servers": bootstrap_servers,
            "group_id": prefix,
            "session_timeout_ms": 10_000,
        },
        "topics": {
            **topic_names,
            "internal_partitions": 3,
            "replication_factor": replication_factor,
        },
        "klaviyo": {"base_url": sandbox.url},
        "integrations": {"key_encryption_keys": {"test-1": generate_kek()}},
        "http": {"host": "127.0.0.1", "port": 0},
        "derive": {"checkpoint_interval_seconds": 0.3},
        "delivery": {"linger_seconds": 0.2},
        "logging": {"level": "INFO"},
    }
    result = Stack(overrides, sandbox, demo_merchants(), tmp_path)
    await asyncio.to_thread(ensure_input_topics, result.settings, 3)
    await asyncio.to_thread(onboard, result.settings, sandbox, result.merchants)
    yield result


async def wait_ready(service: Service, task: asyncio.Task[None]) -> None:
    """Return once every component of ``service`` is ready (fails fast if it died)."""
    async with asyncio.timeout(60):
        while not service.health.ready()[0]:
            if task.done():
                await task
                raise AssertionError("service stopped before it was ready")
            await asyncio.sleep(0.05)  # polling a condition with a deadline


@asynccontextmanager
async def running_service(
    settings: Settings,
    stage: Stage = "all",
    instance: str = "a",
    service_type: type[Service] = Service,
) -> AsyncIterator[Service]:
    """The service in this process, ready; stopped gracefully on exit.

    ``service_type`` lets a test run a subclass (e.g. one whose stage injects faults).
    """
    service = service_type(settings, stage, instance, shutdown_seconds=20)
    task = asyncio.create_task(service.run(), name=f"service-{instance}")
    try:
        await wait_ready(service, task)
        yield service
    finally:
        service.stop.set()
        async with asyncio.timeout(40):
            await task


class ServiceProcess:
    """``klaviyo-consumer run`` as a child process, for kill -9 and rebalance tests."""

    def __init__(
        self, stack: Stack, instance: str, stage: Stage = "all", http_port: int = 0
    ) -> None:
        self._stack = stack
        self.http_port = http_port
        self.instance = instance
        self.stage = stage
        self.process: subprocess.Popen[bytes] | None = None
        self.log = stack.log_dir / f"service-{instance}.log"
        self.starts = 0

    def start(self) -> None:
        """Start the process (output appended to its log file)."""
        self.starts += 1
        argv = [sys.executable, "-m", "consumer.cli.main", "run", "--stage", self.stage]
        argv += ["--instance-id", self.instance, "--shutdown-seconds", "15"]
        env = {**self._stack.env(), f"{ENV_PREFIX}HTTP__PORT": str(self.http_port)}
        with self.log.open("ab") as log:
            # Dies with the test run even if pytest itself is killed.
            self.process = spawn(argv, env=env, output=log)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 40.0) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def url(self) -> str:
        """Base URL of the process's HTTP endpoints (needs a fixed ``http_port``)."""
        return f"http://127.0.0.1:{self.http_port}"

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 60) -> str:
        """The end of the process's log (for assertion messages)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def caught_up(settings: Settings, group: str, topics: Sequence[str]) -> bool:
    """Whether ``group`` has committed every record of ``topics`` (non-transactional inputs)."""
    consumer = KafkaConsumer(settings.kafka, group)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in range(partition_count(settings.kafka, topic))
        ]
        committed = {o.topic_partition: o.offset for o in consumer.committed(partitions)}
        ends = {tp: consumer.get_watermark_offsets(tp)[1] for tp in partitions}
    except RetriableKafkaError:
        return False  # e.g. the group coordinator is still loading: ask again
    finally:
        consumer.close()
    return all(end == 0 or committed[tp] >= end for tp, end in ends.items())


def inputs_caught_up(settings: Settings) -> bool:
    """Whether the derive stage has committed every input record."""
    topics = settings.topics
    return caught_up(
        settings,
        f"{settings.kafka.group_id}-derive",
        [topics.returns, topics.orders, topics.storefront_events],
    )
