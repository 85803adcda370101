"""Publish input records (examples, sample traffic) to the input topics, as upstream would."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from consumer.decode import SchemaCatalog, encode_confluent, encode_single_object
from consumer.decode.json_records import record_from_json
from consumer.devstack.traffic import InputRecord, Subject
from consumer.kafka import KafkaAdmin, Producer, TopicSpec
from consumer.settings import Settings

__all__ = ["Framing", "ensure_input_topics", "example_records", "publish", "topic_of"]

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


def publish(
    settings: Settings,
    records: Iterable[InputRecord],
    framing: Framing = "single-object",
    catalog: SchemaCatalog | None = None,
) -> int:
    """Encode and produce ``records``; returns how many were published.

    Confluent framing registers each writer schema under ``<topic>-value`` first (needs
    ``schema_registry.url``).
    """
    catalog = catalog or SchemaCatalog()
    schema_ids: dict[Subject, int] = {}
    producer = Producer(settings.kafka)
    count = 0
    try:
        for record in records:
            version = catalog.latest(record.subject)
            topic = topic_of(settings, record.subject)
            if framing == "confluent":
                if record.subject not in schema_ids:
                    url = settings.schema_registry.url
                    if url is None:
                        raise ValueError("confluent framing needs schema_registry.url")
                    raw = json.loads(
                        (catalog.root / record.subject / f"v{version.version}.avsc").read_text()
                    )
                    schema_ids[record.subject] = _register(url, f"{topic}-value", raw)
                payload = encode_confluent(schema_ids[record.subject], version.schema, record.value)
            else:
                payload = encode_single_object(version.schema, record.value)
            producer.produce(topic, record.key.encode(), payload)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count
