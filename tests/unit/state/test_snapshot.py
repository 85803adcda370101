"""Snapshot files: an arena's raw contents round-trip; a damaged file is refused with a reason."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.state.arena import Arena
from consumer.state.snapshot import (
    SNAPSHOT_VERSION,
    InvalidSnapshot,
    SnapshotReader,
    write_snapshot,
)

# Keys from a small alphabet so that writes overwrite and delete keys that exist.
_keys = st.binary(min_size=1, max_size=6).map(lambda b: bytes(x % 40 for x in b))
_ops = st.lists(st.tuples(_keys, st.none() | st.binary(max_size=300)), max_size=400)


def _round_trip(arena: Arena, path: Path) -> Arena:
    write_snapshot(path, "changelog", "id-1", 2, 17, arena.dump())
    reader = SnapshotReader(path)
    assert (reader.header.topic, reader.header.partition, reader.header.offset) == (
        "changelog",
        2,
        17,
    )
    return reader.load()


Ops = list[tuple[bytes, bytes | None]]


def _apply(arena: Arena, expected: dict[bytes, bytes], ops: Ops) -> None:
    for key, value in ops:
        arena.put(key, value)
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value


@settings(max_examples=60, deadline=None)
@given(ops=_ops, more=_ops)
def test_arena_dump_then_load_holds_the_same_entries_and_keeps_working(
    tmp_path_factory: pytest.TempPathFactory, ops: Ops, more: Ops
) -> None:
    arena, expected = Arena(), dict[bytes, bytes]()
    _apply(arena, expected, ops)
    loaded = _round_trip(arena, tmp_path_factory.mktemp("s") / "p.snapshot")
    assert len(loaded) == len(expected) and loaded.value_bytes == arena.value_bytes
    assert {k: loaded.get(k) for k in expected} == expected
    _apply(loaded, expected, more)  # the loaded table goes on finding, replacing, deleting
    touched = {k for k, _ in ops + more}
    assert {k: loaded.get(k) for k in touched} == {k: expected.get(k) for k in touched}


def test_a_large_arena_with_garbage_and_several_chunks_round_trips(tmp_path: Path) -> None:
    arena = Arena()
    for n in range(30_000):
        arena.put(f"order-{n}".encode(), bytes([n % 251]) * 180)
    for n in range(0, 30_000, 3):
        arena.put(f"order-{n}".encode(), None)  # deleted: garbage and deleted slots
    arena.put(b"big", bytes(3 << 20))  # a record larger than a chunk gets its own
    loaded = _round_trip(arena, tmp_path / "p.snapshot")
    assert len(loaded) == len(arena) == 20_001
    assert loaded.get(b"order-1") == bytes([1]) * 180 and loaded.get(b"order-3") is None
    assert loaded.get(b"big") == bytes(3 << 20)
    keys = loaded.keys()
    assert len(keys) == 20_001


def _snapshot(tmp_path: Path) -> Path:
    arena = Arena()
    for n in range(1_000):
        arena.put(f"k{n}".encode(), b"v" * 50)
    path = tmp_path / "p.snapshot"
    write_snapshot(path, "changelog", "id-1", 0, 5, arena.dump())
    return path


def _refused(path: Path) -> str:
    with pytest.raises(InvalidSnapshot) as caught:
        SnapshotReader(path).load()
    return str(caught.value)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    assert "header describes" in _refused(path)
    path.write_bytes(data[:10])
    assert _refused(path) == "truncated"


def test_a_flipped_byte_fails_the_checksum(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    assert _refused(path) == "checksum mismatch"


def test_another_format_version_or_not_a_snapshot_is_refused(tmp_path: Path) -> None:
    path = _snapshot(tmp_path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 8, SNAPSHOT_VERSION + 1)
    path.write_bytes(bytes(data))
    assert _refused(path) == f"format version {SNAPSHOT_VERSION + 1}, expected {SNAPSHOT_VERSION}"
    path.write_bytes(b"x" * 100)
    assert _refused(path) == "not a state snapshot file"


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "p.snapshot"  # its directory does not exist
    with pytest.raises(OSError):
        write_snapshot(missing, "changelog", None, 0, 0, Arena().dump())
    assert not missing.parent.exists()
