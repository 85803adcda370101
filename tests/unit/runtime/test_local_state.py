"""Judging a snapshot: only one that replaying the changelog's tail makes right is used."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from consumer.errors import ConfigError
from consumer.observability import Metrics
from consumer.runtime.local_state import ChangelogFacts, LocalState
from consumer.runtime.service import Service
from consumer.settings import KafkaSettings, Settings
from consumer.state.arena import Arena
from consumer.state.snapshot import snapshot_path, write_snapshot

TOPIC = "tracking-state"
DAY = 86_400.0
FACTS = ChangelogFacts("id-1", DAY)


def local_with_snapshot(tmp_path: Path, topic: str = TOPIC, topic_id: str = "id-1") -> LocalState:
    arena = Arena()
    arena.put(b"order-1", b"state")
    write_snapshot(snapshot_path(tmp_path, TOPIC, 0), topic, topic_id, 0, 40, arena.dump())
    return LocalState(tmp_path, KafkaSettings(), TOPIC, Metrics())


def test_a_valid_snapshot_loads_with_its_offset(tmp_path: Path) -> None:
    loaded = local_with_snapshot(tmp_path).load(0, (10, 40), FACTS)
    assert loaded is not None
    arena, offset = loaded
    assert offset == 40 and arena.get(b"order-1") == b"state"
    assert snapshot_path(tmp_path, TOPIC, 0).exists()  # kept: it stays right (immutable)


@pytest.mark.parametrize(
    ("watermarks", "facts", "age", "reason"),
    [
        ((41, 90), FACTS, 0.0, "offset 40 outside the changelog's 41 to 90"),
        ((0, 39), FACTS, 0.0, "offset 40 outside the changelog's 0 to 39"),
        ((0, 90), ChangelogFacts("id-2", DAY), 0.0, "changelog topic id id-1, now id-2"),
        ((0, 90), ChangelogFacts("id-1", None), 0.0, "could not be described"),
        ((0, 90), FACTS, DAY / 2 + 60, "delete.retention.ms / 2"),
        ((0, 90), FACTS, -DAY / 2 - 60, "delete.retention.ms / 2"),
    ],
)
def test_an_invalid_snapshot_is_refused_with_its_reason_and_deleted(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    watermarks: tuple[int, int],
    facts: ChangelogFacts,
    age: float,
    reason: str,
) -> None:
    local = local_with_snapshot(tmp_path)
    assert local.load(0, watermarks, facts, now=time.time() + age) is None
    (record,) = [r for r in caplog.records if r.getMessage().startswith("state snapshot ignored")]
    assert reason in record.__dict__["reason"]
    assert not snapshot_path(tmp_path, TOPIC, 0).exists()


def test_a_snapshot_of_another_topic_is_refused(tmp_path: Path) -> None:
    local = local_with_snapshot(tmp_path, topic="other")
    assert local.load(0, (0, 90), FACTS) is None


def test_no_snapshot_is_no_snapshot(tmp_path: Path) -> None:
    local = LocalState(tmp_path, KafkaSettings(), TOPIC, Metrics())
    assert not local.has(0) and local.load(0, (0, 90), FACTS) is None


def test_a_directory_that_cannot_be_created_fails_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"derive\.local_state_dir .*DERIVE__LOCAL_STATE_DIR"):
        LocalState(blocker / "state", KafkaSettings(), TOPIC, Metrics())


async def test_the_service_stops_at_start_on_an_unwritable_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    settings = Settings(derive={"local_state_dir": str(blocker / "state")})
    with pytest.raises(ConfigError, match=r"derive\.local_state_dir"):
        await Service(settings, stage="derive").run()  # before any broker is asked for
