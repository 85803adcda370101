"""Publish input records (examples, sample traffic) to the input topics, as upstream would."""

from __future__ import annotations

import functools
import json
import multiprocessing
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from consumer.decode import SchemaCatalog, encode_confluent, encode_single_object
from consumer.decode.json_records import record_from_json
from consumer.devstack.traffic import InputRecord, Subject, sample_traffic
from consumer.kafka import KafkaAdmin, Producer, TopicSpec
from consumer.settings import Settings

__all__ = [
    "Framing",
    "encoder",
    "ensure_input_topics",
    "example_records",
    "publish",
    "publish_sample_traffic",
    "topic_of",
]

Framing = Literal["single-object", "confluent"]
_KEYS: dict[Subject, str] = {
    "returns": "return_id",
    "orders": "order_id",
    "storefront-events": "event_id",
}


def topic_of(settings: Settings, subject: Subject) -> str:
    """The configured topic of an input contract."""
    topics = settings.topics
    return {
        "returns": topics.returns,
        "orders": topics.orders,
        "storefront-events": topics.storefront_events,
    }[subject]


def ensure_input_topics(settings: Settings, partitions: int) -> list[str]:
    """Create the input topics if missing (local stacks only; upstream owns them in prod)."""
    subjects: tuple[Subject, ...] = ("returns", "orders", "storefront-events")
    replicas = settings.topics.replication_factor  # as the service's own (a cluster: 3)
    specs = [
        TopicSpec(topic_of(settings, s), partitions, replication_factor=replicas) for s in subjects
    ]
    return KafkaAdmin(settings.kafka).ensure_topics(specs)


def example_records(examples_dir: Path, catalog: SchemaCatalog) -> list[InputRecord]:
    """The JSON example records of ``schemas/examples``, converted for Avro."""
    records: list[InputRecord] = []
    for subject in _KEYS:
        path = examples_dir / f"{subject}.json"
        schema = catalog.latest(subject).schema
        for raw in json.loads(path.read_text(encoding="utf-8")):
            value = record_from_json(schema, raw)
            records.append(InputRecord(subject, str(value[_KEYS[subject]]), value))
    return records


def _register(registry_url: str, subject: str, schema: Any) -> int:
    body = json.dumps({"schema": json.dumps(schema)}).encode()
    request = urllib.request.Request(  # noqa: S310 -- a URL the operator gave, http(s) only
        f"{registry_url.rstrip('/')}/subjects/{subject}/versions",
        data=body,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        schema_id: int = json.loads(response.read())["id"]
    return schema_id


# Bulk publishing: fill large batches instead of sending records one by one.
_PRODUCER_TUNING = {"linger.ms": 50, "batch.num.messages": 10_000, "batch.size": 1_000_000}


def publish(
    settings: Settings,
    records: Iterable[InputRecord],
    framing: Framing = "single-object",
    catalog: SchemaCatalog | None = None,
) -> int:
    """Encode and produce ``records``; returns how many were published.

    Records are queued without waiting for each (librdkafka batches them) and flushed once at
    the end. Confluent framing registers each writer schema under ``<topic>-value`` first
    (needs ``schema_registry.url``).
    """
    catalog = catalog or SchemaCatalog()
    encoders: dict[Subject, tuple[str, Callable[[dict[str, Any]], bytes]]] = {}
    producer = Producer(settings.kafka, extra=_PRODUCER_TUNING)
    count = 0
    try:
        for record in records:
            target = encoders.get(record.subject)
            if target is None:
                target = encoders[record.subject] = encoder(
                    settings, record.subject, framing, catalog
                )
            topic, encode = target
            producer.produce(topic, record.key.encode(), encode(record.value))
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def encoder(
    settings: Settings, subject: Subject, framing: Framing, catalog: SchemaCatalog
) -> tuple[str, Callable[[dict[str, Any]], bytes]]:
    """The topic of ``subject`` and an encoder of its values (schema resolved once)."""
    version = catalog.latest(subject)
    topic = topic_of(settings, subject)
    if framing == "single-object":
        return topic, functools.partial(
            encode_single_object, version.schema, fingerprint=version.fingerprint
        )
    url = settings.schema_registry.url
    if url is None:
        raise ValueError("confluent framing needs schema_registry.url")
    raw = json.loads((catalog.root / subject / f"v{version.version}.avsc").read_text())
    schema_id = _register(url, f"{topic}-value", raw)
    return topic, lambda value: encode_confluent(schema_id, version.schema, value)


def publish_sample_traffic(
    settings: Settings,
    merchants: Sequence[str],
    orders_per_merchant: int,
    now: datetime,
    framing: Framing = "single-object",
    workers: int = 2,
) -> int:
    """Generate and publish ``sample_traffic`` in ``workers`` processes; returns the count.

    Generating and Avro-encoding cost far more CPU than producing, so each worker builds and
    publishes the traffic of its own share of the merchants (with its own seed: the output is
    deterministic for a worker count). A merchant's records stay in order: one worker, one
    producer.
    """
    shares = [list(merchants[i::workers]) for i in range(workers) if merchants[i::workers]]
    if len(shares) <= 1:
        return publish(settings, sample_traffic(merchants, orders_per_merchant, now), framing)
    context = multiprocessing.get_context("spawn")  # no fork of a process with Kafka threads
    with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
        futures = [
            pool.submit(_publish_share, settings, share, orders_per_merchant, now, framing, seed)
            for seed, share in enumerate(shares, start=7)
        ]
        return sum(future.result() for future in futures)


def _publish_share(
    settings: Settings,
    merchants: list[str],
    orders_per_merchant: int,
    now: datetime,
    framing: Framing,
    seed: int,
) -> int:
    return publish(settings, sample_traffic(merchants, orders_per_merchant, now, seed), framing)
