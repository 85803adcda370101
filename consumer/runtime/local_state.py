"""The local state store: snapshot files of the tracking state, so a restart reads only the tail.

On a clean stop (after the final commit) each owned partition's committed state is written
with the changelog offset it reflects: the changelog partition's end after our last committed
transaction (we are its only writer while we own the input partition). On assignment the
restore loads a snapshot that is still valid and reads the changelog from its offset on.

Valid means: a whole file of this format with a matching checksum, for this topic (same topic
id: not a recreated topic of the same name) and partition, an offset within the changelog
partition's watermarks (not truncated or recreated), and written less than half the changelog's
``delete.retention.ms`` ago. Compaction may drop a tombstone once that retention has passed;
replaying from an older snapshot would then miss the deletion and resurrect the order. Half,
not all of it: the restore takes time, and the clock of the host that wrote the file may differ
from ours. Where the retention or the topic id cannot be read (e.g. no DescribeConfigs ACL)
no snapshot is trusted. An invalid snapshot is logged with its reason, deleted, and the
partition restored from the beginning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from consumer.errors import ConfigError
from consumer.kafka import KafkaAdmin, KafkaConsumer, KafkaError, TopicPartition
from consumer.observability import Metrics
from consumer.setting_sources import setting_name
from consumer.settings import KafkaSettings
from consumer.state.arena import Arena
from consumer.state.snapshot import InvalidSnapshot, SnapshotReader, snapshot_path, write_snapshot
from consumer.state.store import StateStore

__all__ = ["ChangelogFacts", "LocalState", "check_state_dir"]

log = logging.getLogger(__name__)

_SETTING = ("derive", "local_state_dir")


def check_state_dir(directory: Path) -> None:
    """Create ``directory`` if needed and check it is writable.

    Raises:
        ConfigError: it cannot be created or written (naming ``derive.local_state_dir``).
    """
    probe = directory / ".write-check"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{setting_name(*_SETTING)}: cannot write to {str(directory)!r}: "
            f"{exc.strerror or type(exc).__name__}"
        ) from None


@dataclass(frozen=True, slots=True)
class ChangelogFacts:
    """What judging a snapshot needs to know of the changelog topic (read once per restore)."""

    topic_id: str | None
    tombstone_retention_s: float | None  # delete.retention.ms

    @classmethod
    def read(cls, settings: KafkaSettings, topic: str) -> ChangelogFacts:
        admin = KafkaAdmin(settings)
        try:
            topic_id: str | None = admin.topic_id(topic)
            retention = admin.topic_config(topic).get("delete.retention.ms")
        except KafkaError as exc:
            log.warning("changelog topic not described", extra={"topic": topic, "error": str(exc)})
            return cls(None, None)
        return cls(topic_id, None if retention is None else int(retention) / 1000)


class LocalState:
    """The snapshot directory of one derive stage.

    Raises (from the constructor):
        ConfigError: the directory cannot be created or written.
    """

    def __init__(
        self, directory: Path, settings: KafkaSettings, topic: str, metrics: Metrics
    ) -> None:
        check_state_dir(directory)
        self._directory = directory
        self._settings = settings
        self._topic = topic
        self._metrics = metrics

    def has(self, partition: int) -> bool:
        """Whether a snapshot file exists for ``partition`` (valid or not)."""
        return snapshot_path(self._directory, self._topic, partition).exists()

    def save(self, store: StateStore[object], consumer: KafkaConsumer) -> None:
        """Write a snapshot of every partition ``store`` owns (call after the last commit);
        a failure costs only a full restore next time, so it is logged, not raised."""
        if not store.owned():
            return
        facts = ChangelogFacts.read(self._settings, self._topic)
        for partition in store.owned():
            started = time.monotonic()
            path = snapshot_path(self._directory, self._topic, partition)
            try:
                tp = TopicPartition(self._topic, partition)
                _, offset = consumer.get_watermark_offsets(tp)
                contents = store.partition(partition).dump()
                size = write_snapshot(
                    path, self._topic, facts.topic_id, partition, offset, contents
                )
            except (KafkaError, OSError) as exc:
                self._metrics.state_snapshots.labels("write_failed").inc()
                log.warning(
                    "state snapshot not written",
                    extra={"partition": partition, "path": str(path), "error": str(exc)},
                )
                continue
            self._metrics.state_snapshots.labels("written").inc()
            log.info(
                "state snapshot written",
                extra={
                    "partition": partition,
                    "offset": offset,
                    "orders": len(store.partition(partition)),
                    "bytes": size,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )

    def load(
        self,
        partition: int,
        watermarks: tuple[int, int],
        facts: ChangelogFacts,
        now: float | None = None,
    ) -> tuple[Arena, int] | None:
        """The committed state of a valid snapshot of ``partition`` and the changelog offset
        to replay from; None if there is none, or it is invalid (then it is deleted)."""
        path = snapshot_path(self._directory, self._topic, partition)
        started = time.monotonic()
        try:
            reader = SnapshotReader(path)
        except FileNotFoundError:
            return None
        except (InvalidSnapshot, OSError) as exc:
            self._reject(path, partition, str(exc))
            return None
        try:
            problem = self._problem(
                reader, partition, watermarks, facts, time.time() if now is None else now
            )
            if problem is not None:
                reader.close()
                self._reject(path, partition, problem)
                return None
            arena = reader.load()
        except (InvalidSnapshot, OSError) as exc:
            self._reject(path, partition, str(exc))
            return None
        self._metrics.state_snapshots.labels("loaded").inc()
        log.info(
            "state snapshot loaded",
            extra={
                "partition": partition,
                "offset": reader.header.offset,
                "orders": len(arena),
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return arena, reader.header.offset

    def _problem(
        self,
        reader: SnapshotReader,
        partition: int,
        watermarks: tuple[int, int],
        facts: ChangelogFacts,
        now: float,
    ) -> str | None:
        header = reader.header
        low, high = watermarks
        if (header.topic, header.partition) != (self._topic, partition):
            return f"snapshot of {header.topic}[{header.partition}]"
        if facts.topic_id is None or facts.tombstone_retention_s is None:
            return "the changelog topic could not be described"
        if header.topic_id != facts.topic_id:
            return f"changelog topic id {header.topic_id}, now {facts.topic_id} (recreated)"
        if not low <= header.offset <= high:
            return f"offset {header.offset} outside the changelog's {low} to {high}"
        limit = facts.tombstone_retention_s / 2
        age = now - header.written_at
        if abs(age) > limit:
            return f"written {age:.0f} s ago; trusted for {limit:.0f} s (delete.retention.ms / 2)"
        return None

    def _reject(self, path: Path, partition: int, reason: str) -> None:
        self._metrics.state_snapshots.labels("rejected").inc()
        log.warning(
            "state snapshot ignored, restoring from the beginning",
            extra={"partition": partition, "path": str(path), "reason": reason},
        )
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("state snapshot not deleted", extra={"path": str(path), "error": str(exc)})
