"""The input every measurement reads: the realistic generated mix of ``devstack.traffic``."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.stack import ENV_PREFIX, PARTITIONS, ROOT, BenchStack, JobTopics
from consumer.decode import SchemaCatalog
from consumer.devstack.publish import encoder, ensure_input_topics, publish
from consumer.devstack.traffic import InputRecord, Subject, sample_traffic
from consumer.kafka import Producer
from consumer.settings import Settings

__all__ = [
    "Input",
    "dev_produce_rate",
    "generate",
    "orders_for",
    "publish_input",
    "publish_paced",
]

# sample_traffic yields about this many records per order (scenario steps, returns, storefront).
_RECORDS_PER_ORDER = 4.35


@dataclass(frozen=True)
class Input:
    """Published input: its topics and how many records they hold."""

    topics: JobTopics
    records: int


def orders_for(records: int, merchants: int) -> int:
    """Orders per merchant for about ``records`` records of the mix."""
    return max(1, math.ceil(records / _RECORDS_PER_ORDER / merchants))


def generate(merchants: list[str], records: int, now: datetime | None = None) -> list[InputRecord]:
    """At least ``records`` records of the realistic mix, spread over ``merchants``."""
    return sample_traffic(merchants, orders_for(records, len(merchants)), now or datetime.now(UTC))


def publish_input(stack: BenchStack, traffic: list[InputRecord]) -> Input:
    """Publish ``traffic`` to fresh input topics."""
    topics = stack.job("input")
    settings = stack.settings(topics)
    ensure_input_topics(settings, PARTITIONS)
    return Input(topics, publish(settings, traffic))


def dev_produce_rate(stack: BenchStack, orders_per_merchant: int) -> dict[str, float]:
    """Run ``klaviyo-consumer dev produce`` as a user would; its own reported rate."""
    topics = stack.job("produce")
    env = {f"{ENV_PREFIX}KAFKA__BOOTSTRAP_SERVERS": stack.bootstrap_servers}
    for name, topic in topics.names().items():
        env[f"{ENV_PREFIX}TOPICS__{name.upper()}"] = topic
    argv = [sys.executable, "-m", "consumer.cli.main", "dev", "produce"]
    argv += ["--sample-merchants", str(len(stack.merchants))]
    argv += ["--orders", str(orders_per_merchant)]
    started = time.monotonic()
    done = subprocess.run(
        argv, cwd=ROOT, env=_env(env), capture_output=True, text=True, check=True, timeout=600
    )
    wall = time.monotonic() - started
    # "published N records to ... in S s (R rec/s)"
    line = next(x for x in done.stdout.splitlines() if x.startswith("published "))
    count = int(line.split()[1])
    seconds = float(line.rsplit(" in ", 1)[1].split()[0])
    return {"records": count, "rec_per_s": count / seconds, "command_rec_per_s": count / wall}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**env, **extra}


def publish_paced(
    settings: Settings,
    traffic: list[InputRecord],
    rate: float,
    on_sent: Callable[[InputRecord, float], None],
    stop: threading.Event,
) -> int:
    """Produce ``traffic`` at ``rate`` records/s (20 ms ticks); ``on_sent(record, wall time)``
    is called as each record is handed to the producer, and each tick is flushed."""
    catalog = SchemaCatalog()
    encoders: dict[Subject, tuple[str, Callable[[dict[str, Any]], bytes]]] = {}
    producer = Producer(settings.kafka, extra={"linger.ms": 1})
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    started = time.monotonic()
    sent = 0
    try:
        for start in range(0, len(traffic), per_tick):
            if stop.is_set():
                break
            for record in traffic[start : start + per_tick]:
                if record.subject not in encoders:
                    encoders[record.subject] = encoder(
                        settings, record.subject, "single-object", catalog
                    )
                topic, encode = encoders[record.subject]
                producer.produce(topic, record.key.encode(), encode(record.value))
                on_sent(record, time.time())
                sent += 1
            producer.flush()
            wait = started + (start + per_tick) / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing: this thread only produces
    finally:
        producer.close()
    return sent
