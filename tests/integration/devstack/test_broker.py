"""The session broker survives restarts, clean and crashed, with its data."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consumer.devstack import KafkaBroker
from consumer.settings import KafkaSettings
from tests.helpers.kafka import drain


@pytest.mark.slow
@pytest.mark.parametrize("crash", [False, True], ids=["clean", "crash"])
def test_restart_keeps_ports_and_committed_records(
    kafka_broker: KafkaBroker | None,
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    produce: Callable[..., None],
    crash: bool,
) -> None:
    if kafka_broker is None:
        pytest.skip("an external broker cannot be restarted from here")
    topic = topic_factory(partitions=2)
    produce(topic, [(b"k", b"before")], transactional=True)
    old_pid, address = kafka_broker.pid, kafka_broker.bootstrap_servers

    kafka_broker.restart(crash=crash)

    assert kafka_broker.bootstrap_servers == address
    assert kafka_broker.pid != old_pid
    produce(topic, [(b"k", b"after")], transactional=True)
    assert [m.value for m in drain(kafka_settings, topic)] == [b"before", b"after"]
