"""KafkaConsumer.consume: EOF events are skipped, and no record is lost around an error."""

from __future__ import annotations

import confluent_kafka
import pytest

from consumer.kafka import KafkaConsumer, RetriableKafkaError
from consumer.settings import KafkaSettings

Codes = confluent_kafka.KafkaError


class _FakeClient:
    """Stands in for confluent's Consumer: hands out one prepared batch per call."""

    def __init__(self, batches: list[list[confluent_kafka.Message]]) -> None:
        self.batches = batches

    def consume(self, num_messages: int, timeout: float) -> list[confluent_kafka.Message]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


def _record(offset: int) -> confluent_kafka.Message:
    return confluent_kafka.Message(
        topic="t", partition=0, offset=offset, value=str(offset).encode(), timestamp=(1, 5)
    )


def _error(code: int, **flags: bool) -> confluent_kafka.Message:
    return confluent_kafka.Message(topic="t", partition=0, error=Codes(code, "boom", **flags))


@pytest.fixture
def consumer() -> KafkaConsumer:
    # Never connects: the real client is closed at once and replaced by a fake.
    real = KafkaConsumer(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "unit")
    real._consumer.close()
    return real


def test_consume_skips_partition_eof(
    consumer: KafkaConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    eof = _error(Codes._PARTITION_EOF)
    monkeypatch.setattr(consumer, "_consumer", _FakeClient([[_record(0), eof, _record(1)]]))

    assert [m.offset for m in consumer.consume(10, 0.1)] == [0, 1]


def test_consume_returns_records_before_error_then_raises_then_continues(
    consumer: KafkaConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = _error(Codes.COORDINATOR_NOT_AVAILABLE, retriable=True)
    batch = [_record(0), _record(1), failing, _record(2)]
    monkeypatch.setattr(consumer, "_consumer", _FakeClient([batch]))

    assert [m.offset for m in consumer.consume(10, 0.1)] == [0, 1]
    with pytest.raises(RetriableKafkaError) as caught:
        consumer.consume(10, 0.1)
    assert caught.value.retriable
    assert [m.offset for m in consumer.consume(10, 0.1)] == [2]


def test_consume_respects_max_messages_over_buffered_records(
    consumer: KafkaConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer, "_consumer", _FakeClient([[_record(0), _record(1), _record(2)]]))

    assert [m.offset for m in consumer.consume(2, 0.1)] == [0, 1]
    assert [m.offset for m in consumer.consume(2, 0.1)] == [2]
