"""The arena behind committed state: a byte map that packs its records and rebuilds itself."""

from __future__ import annotations

import random
import sys

from pytest import MonkeyPatch

from consumer.state import arena as arena_module
from consumer.state.arena import Arena


def test_arena_matches_a_dict_through_overwrites_deletes_and_rebuilds() -> None:
    arena, expected = Arena(), {}
    rng = random.Random(11)
    for _ in range(200_000):  # ~9 MiB of garbage: compactions and table growths
        key = f"ord-{rng.randrange(3_000)}".encode()
        if rng.random() < 0.25:
            arena.put(key, None)
            expected.pop(key, None)
        else:
            value = rng.randbytes(rng.randrange(0, 120))
            arena.put(key, value)
            expected[key] = value
    assert len(arena) == len(expected)
    assert all(arena.get(key) == value for key, value in expected.items())
    assert arena.get(b"ord-absent") is None and b"ord-absent" not in arena
    assert arena.value_bytes == sum(map(len, expected.values()))
    keys = arena.keys()
    assert sorted(keys.between(0, len(keys))) == sorted(expected)


def test_arena_key_snapshot_reads_the_keys_of_its_moment_after_a_compaction() -> None:
    arena = Arena()
    for n in range(1_000):
        arena.put(f"old-{n}".encode(), b"x" * 100)
    snapshot = arena.keys()
    for n in range(20_000):  # overwrites until the arena compacts into a new buffer
        arena.put(f"old-{n % 1_000}".encode(), b"y" * 100)
    arena.put(b"new", b"z")
    assert sorted(snapshot.between(0, len(snapshot))) == sorted(
        f"old-{n}".encode() for n in range(1_000)
    )
    assert arena.get(b"old-7") == b"y" * 100 and arena.get(b"new") == b"z"


def test_arena_keeps_memory_near_its_live_records() -> None:
    arena = Arena()
    for n in range(50_000):
        arena.put(b"hot", bytes(200))  # one key rewritten: garbage is dropped as it grows
        arena.put(f"k{n % 100}".encode(), bytes(200))
    assert len(arena) == 101
    assert sys.getsizeof(arena) < 8 << 20  # garbage is compacted away: not the 21 MB written


def test_arena_tells_apart_keys_whose_hash_tags_are_equal(monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr(arena_module, "_TAG", 1)  # 1-bit tags: five keys must share them
    arena = Arena()
    keys = [b"a", b"bb", b"ccc", b"dd", b"e"]
    for key in keys:
        arena.put(key, key * 2)
    arena.put(b"bb", None)
    assert [arena.get(key) for key in keys] == [b"aa", None, b"cccccc", b"dddd", b"ee"]
