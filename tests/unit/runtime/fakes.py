"""Small in-memory Kafka clients for the runtime's unit tests (no broker).

They record every call in ``calls`` (name and arguments, in order) and raise what a test puts
in ``fail`` (method name → exceptions to raise on its next calls, one per call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.kafka import (
    ConfigValue,
    ConsumedMessage,
    Header,
    KafkaError,
    TopicPartition,
    TopicPartitionOffset,
)


@dataclass
class Produced:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    partition: int | None

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in reversed(self.headers) if k == name), None)


@dataclass
class _Recorder:
    role: str = ""
    journal: list[str] = field(default_factory=list)
    """``role.method`` of every call, shared between the fakes of one ``FakeClients``."""
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fail: dict[str, list[BaseException]] = field(default_factory=dict)

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        self.journal.append(f"{self.role}.{name}")
        pending = self.fail.get(name)
        if pending:
            raise pending.pop(0)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class FakeProducer(_Recorder):
    """Every producer role: ``send`` (background), ``produce``/``flush`` and the transaction
    steps."""

    produced: list[Produced] = field(default_factory=list)
    committed: list[Produced] = field(default_factory=list)
    """Records of committed transactions (or flushed, for the plain producer)."""
    _open: list[Produced] = field(default_factory=list)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        self._call("produce", topic)
        record = Produced(topic, key, value, tuple(headers), partition)
        self.produced.append(record)
        self._open.append(record)

    def init_transactions(self) -> None:
        self._call("init_transactions")

    def begin(self) -> None:
        self._call("begin")

    def send_offsets(self, offsets: Sequence[TopicPartitionOffset], metadata: object) -> None:
        self._call("send_offsets", tuple(offsets), metadata)

    def commit(self) -> None:
        self._call("commit")
        self.committed.extend(self._open)
        self._open.clear()

    def abort(self) -> None:
        self._call("abort")
        self._open.clear()

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Sequence[Header] = ()
    ) -> asyncio.Future[None]:
        """``BackgroundProducer.send``: acknowledged at once, or failed by ``fail["send"]``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._call("send", topic)
        except KafkaError as exc:
            future.set_exception(exc)
            return future
        record = Produced(topic, key, value, tuple(headers), None)
        self.produced.append(record)
        self.committed.append(record)
        future.set_result(None)
        return future

    def flush(self, timeout: float | None = None) -> None:
        self._call("flush")
        self.committed.extend(self._open)
        self._open.clear()

    def close(self) -> None:
        self._call("close")


@dataclass
class FakeConsumer(_Recorder):
    """A group member whose batches a test scripts in ``batches``."""

    batches: list[list[ConsumedMessage]] = field(default_factory=list)
    assigned: list[TopicPartition] = field(default_factory=list)
    commits: list[tuple[TopicPartitionOffset, ...]] = field(default_factory=list)
    seeks: list[TopicPartitionOffset] = field(default_factory=list)

    def subscribe(self, topics: Sequence[str], **callbacks: Any) -> None:
        self._call("subscribe", tuple(topics))

    def consume(self, max_messages: int, timeout: float) -> list[ConsumedMessage]:
        self._call("consume")
        return self.batches.pop(0) if self.batches else []

    def commit(self, offsets: Sequence[TopicPartitionOffset]) -> None:
        self._call("commit", tuple(offsets))
        self.commits.append(tuple(offsets))

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def seek(self, offset: TopicPartitionOffset) -> None:
        self._call("seek", offset)
        self.seeks.append(offset)

    def group_metadata(self) -> str:
        return "generation-1"

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._call("pause", tuple(partitions))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._call("resume", tuple(partitions))

    def close(self) -> None:
        self._call("close")


@dataclass
class FakeClients:
    """``KafkaClients`` handing out one fake consumer and one fake producer."""

    journal: list[str] = field(default_factory=list)
    consumer_: FakeConsumer = field(init=False)
    producer_: FakeProducer = field(init=False)

    def __post_init__(self) -> None:
        self.consumer_ = FakeConsumer(role="consumer", journal=self.journal)
        self.producer_ = FakeProducer(role="producer", journal=self.journal)

    def consumer(
        self,
        group_id: str,
        *,
        group_instance_id: str | None = None,
        on_stats: Callable[[str], None] | None = None,
        extra: Mapping[str, ConfigValue] | None = None,
    ) -> FakeConsumer:
        return self.consumer_

    def producer(self) -> FakeProducer:
        return self.producer_

    def transactional_producer(self, transactional_id: str) -> FakeProducer:
        return self.producer_


def message(
    topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None = b"k"
) -> ConsumedMessage:
    """A consumed record."""
    return ConsumedMessage(topic, partition, offset, key, value, (), 1_700_000_000_000)
