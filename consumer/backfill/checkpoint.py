"""A backfill run's checkpoint: its plan, how far it got and its private order state.

Everything lives on one compacted topic, keyed by run: ``<run>|progress`` holds the
``Progress`` (JSON) and ``<run>|order|<order_id>`` the run's own tracking state of each
order (the changelog encoding). The runner writes them in the same Kafka transaction as the
outbox records they account for, so after a crash the committed checkpoint and the committed
outbox always agree: the run resumes exactly where its last transaction ended.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from consumer.kafka import KafkaAdmin, TopicPartition, TopicSpec
from consumer.runtime.restore import read_partitions_to_end
from consumer.settings import Settings
from consumer.state.shipments import OrderState, decode_order_state

__all__ = ["Progress", "ensure_checkpoint_topic", "load_checkpoint", "order_key", "progress_key"]


def progress_key(run_id: str) -> bytes:
    """Key of a run's progress record."""
    return f"{run_id}|progress".encode()


def order_key(run_id: str, order_id: str) -> bytes:
    """Key of a run's state record for one order."""
    return f"{run_id}|order|{order_id}".encode()


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def _partition(name: str) -> TopicPartition:
    topic, _, partition = name.rpartition(":")
    return TopicPartition(topic, int(partition))


@dataclass
class Progress:
    """The plan of a run (offset range per input partition) and how far it got.

    ``positions`` are the next offsets to read; a partition is finished when its position
    reached its end. ``derived`` counts operations by ``event:<metric>`` or
    ``subscription:<channel>``.
    """

    ranges: dict[TopicPartition, tuple[int, int]]
    positions: dict[TopicPartition, int]
    kept: int = 0
    other_merchants: int = 0
    undecodable: int = 0
    dead_letters: int = 0
    derived: Counter[str] = field(default_factory=Counter)
    done: bool = False

    @classmethod
    def planned(cls, ranges: dict[TopicPartition, tuple[int, int]]) -> Progress:
        """A run that has read nothing of ``ranges`` yet."""
        return cls(ranges, {tp: start for tp, (start, _) in ranges.items()})

    @property
    def total(self) -> int:
        """Records in the planned ranges (offsets; transaction markers count too)."""
        return sum(end - start for start, end in self.ranges.values())

    @property
    def read(self) -> int:
        """Offsets of the ranges already read."""
        return sum(self.positions[tp] - start for tp, (start, _) in self.ranges.items())

    @property
    def events(self) -> int:
        """Events derived so far."""
        return sum(n for name, n in self.derived.items() if name.startswith("event:"))

    def pending(self) -> list[TopicPartition]:
        """Partitions not read to their end yet."""
        return sorted(tp for tp, (_, end) in self.ranges.items() if self.positions[tp] < end)

    def advance(self, tp: TopicPartition, position: int) -> None:
        """Record that ``tp`` was read up to ``position`` (clamped to its planned end)."""
        end = self.ranges[tp][1]
        self.positions[tp] = max(self.positions[tp], min(position, end))

    def to_json(self) -> dict[str, Any]:
        """The JSON view (also what progress lines and summaries show)."""
        return {
            "ranges": {_name(tp): list(r) for tp, r in sorted(self.ranges.items())},
            "positions": {_name(tp): p for tp, p in sorted(self.positions.items())},
            "kept": self.kept,
            "other_merchants": self.other_merchants,
            "undecodable": self.undecodable,
            "dead_letters": self.dead_letters,
            "derived": dict(sorted(self.derived.items())),
            "done": self.done,
        }

    def encode(self) -> bytes:
        """The checkpoint value."""
        return orjson.dumps(self.to_json())

    @classmethod
    def decode(cls, data: bytes) -> Progress:
        """Parse a checkpoint value written by ``encode``."""
        doc = orjson.loads(data)
        ranges = {_partition(n): (int(r[0]), int(r[1])) for n, r in doc["ranges"].items()}
        return cls(
            ranges=ranges,
            positions={_partition(n): int(p) for n, p in doc["positions"].items()},
            kept=int(doc["kept"]),
            other_merchants=int(doc["other_merchants"]),
            undecodable=int(doc["undecodable"]),
            dead_letters=int(doc["dead_letters"]),
            derived=Counter({str(k): int(v) for k, v in doc["derived"].items()}),
            done=bool(doc["done"]),
        )


def ensure_checkpoint_topic(settings: Settings) -> None:
    """Create the compacted checkpoint topic if it is missing (one partition: runs are few)."""
    topics = settings.topics
    spec = TopicSpec(
        topics.backfill_checkpoints,
        1,
        {"cleanup.policy": "compact"},
        topics.replication_factor,
    )
    KafkaAdmin(settings.kafka).ensure_topics([spec])


def load_checkpoint(
    settings: Settings, run_id: str
) -> tuple[Progress | None, dict[str, OrderState]]:
    """The run's committed progress (None: never started) and its order states."""
    records = read_partitions_to_end(
        settings.kafka,
        settings.topics.backfill_checkpoints,
        [0],
        f"{settings.kafka.group_id}-backfill-restore",
    )[0]
    progress: Progress | None = None
    states: dict[str, OrderState] = {}
    wanted_progress = progress_key(run_id)
    order_prefix = order_key(run_id, "")
    for message in records:
        if message.key == wanted_progress and message.value is not None:
            progress = Progress.decode(message.value)
        elif message.key is not None and message.key.startswith(order_prefix):
            order_id = message.key[len(order_prefix) :].decode()
            if message.value is None:
                states.pop(order_id, None)
            else:
                states[order_id] = decode_order_state(message.value)
    return progress, states
