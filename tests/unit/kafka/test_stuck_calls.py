"""A transactional call that librdkafka never returns costs the producer, not the process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from consumer.kafka import FatalKafkaError, TransactionalProducer
from consumer.kafka import producer as producer_module
from consumer.settings import KafkaSettings


class HangingClient:
    """Stands in for confluent_kafka.Producer: ``commit_transaction`` never returns."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = threading.Event()

    def commit_transaction(self, timeout: float) -> None:
        self.release.wait()  # ignores its timeout, as librdkafka#5456 does

    def abort_transaction(self, timeout: float) -> None:
        raise AssertionError("an abandoned producer must not be called again")

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def stuck_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TransactionalProducer, HangingClient]]:
    monkeypatch.setattr(producer_module, "_STUCK_GRACE_SECONDS", 0.1)
    producer = TransactionalProducer(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "t-1")
    real = producer._producer  # swapped for the hanging stand-in
    client = HangingClient()
    monkeypatch.setattr(producer, "_producer", client)
    yield producer, client
    client.release.set()
    real.close()


def test_a_call_that_never_returns_is_fatal_after_timeout_and_grace(
    stuck_producer: tuple[TransactionalProducer, HangingClient],
) -> None:
    producer, client = stuck_producer
    started = time.monotonic()
    with pytest.raises(FatalKafkaError, match="commit_transaction: no answer"):
        producer.commit(timeout=0.1)
    assert 0.2 <= time.monotonic() - started < 5
    with pytest.raises(FatalKafkaError, match="abandoned"):
        producer.abort(timeout=0.1)
    producer.close()  # returns at once, leaving the stuck client alone
    assert not client.closed.is_set()
    client.release.set()  # the call returns at last: its own thread releases the client
    assert client.closed.wait(5), "the abandoned client was never released"
