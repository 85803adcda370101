"""``publish_sample_traffic``: worker processes publish exactly the sample, each key in order."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from consumer.decode import RecordDecoder, SchemaCatalog
from consumer.devstack.publish import ensure_input_topics, publish_sample_traffic
from consumer.devstack.traffic import sample_traffic
from consumer.settings import KafkaSettings, Settings
from tests.helpers.kafka import drain, unique_name


def test_sample_traffic_from_two_workers_is_complete_and_ordered_per_key(
    kafka_settings: KafkaSettings,
) -> None:
    prefix = unique_name("publish")
    settings = Settings(
        kafka=kafka_settings,
        topics={
            "orders": f"{prefix}-orders",
            "returns": f"{prefix}-returns",
            "storefront_events": f"{prefix}-storefront",
        },
    )
    ensure_input_topics(settings, 3)
    merchants = ["m-1", "m-2", "m-3"]
    now = datetime.now(UTC)
    count = publish_sample_traffic(settings, merchants, 6, now, workers=2)
    # Worker i publishes the sample of merchants[i::2] with seed 7 + i.
    expected = sample_traffic(["m-1", "m-3"], 6, now, seed=7) + sample_traffic(
        ["m-2"], 6, now, seed=8
    )
    assert count == len(expected)
    decoder = RecordDecoder(SchemaCatalog(), "orders", 1_000_000)
    published: dict[str, list[datetime]] = defaultdict(list)
    for message in drain(settings.kafka, settings.topics.orders):
        published[(message.key or b"").decode()].append(decoder.decode(message.value)["updated_at"])
    wanted: dict[str, list[datetime]] = defaultdict(list)
    for record in expected:
        if record.subject == "orders":
            wanted[record.key].append(record.value["updated_at"])
    assert published == wanted  # every order's records, in the order generated
