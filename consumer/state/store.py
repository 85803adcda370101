"""Per-partition state with a transaction overlay, backed by a compacted changelog topic.

Layers (as in Kafka Streams and Quix): the *committed* state holds what the last committed
transaction wrote; writes of the open transaction go to an *overlay*. ``commit`` folds the
overlay in; ``abort`` drops it, which is how an aborted Kafka transaction rewinds state.
Each changed key is written to the changelog once per checkpoint (the newest value wins), into
the changelog partition with the same number as the input partition it belongs to.

Committed values are kept *encoded*, exactly the bytes on the changelog, packed in an
``Arena`` (no Python object per entry), and decoded on access; a restore stores the
changelog's bytes as they are, without decoding them. A small LRU cache keeps the most recently
used committed values decoded, so a busy order is not decoded for each of its records; it only
ever holds committed values (the overlay is read first), so an abort leaves it right. The
overlay holds decoded values (what the open transaction works on) with their encoding, made
once per write (the caller may pass the bytes it already made, e.g. for a size check).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from consumer.state.arena import Arena, ArenaLayout, KeySnapshot

__all__ = ["DECODED_CACHE_SIZE", "PartitionKeys", "PartitionStore", "StateStore"]

S = TypeVar("S")

DECODED_CACHE_SIZE = 2_000
"""Committed values kept decoded per partition (a fixed memory base: ~2.2 KB per order)."""


class PartitionKeys:
    """The live keys of a partition at one moment, read a slice at a time (for scans)."""

    def __init__(self, committed: KeySnapshot, uncommitted: list[str]) -> None:
        self._committed = committed
        self._uncommitted = uncommitted

    def __len__(self) -> int:
        return len(self._committed) + len(self._uncommitted)

    def between(self, start: int, end: int) -> list[str]:
        """The keys at positions ``start`` to ``end`` (exclusive)."""
        split = len(self._committed)
        keys = [key.decode() for key in self._committed.between(start, min(end, split))]
        return keys + self._uncommitted[max(0, start - split) : max(0, end - split)]


class PartitionStore(Generic[S]):
    """The state of one input partition."""

    def __init__(
        self,
        decode: Callable[[bytes], S],
        encode: Callable[[S], bytes],
        cache_size: int = DECODED_CACHE_SIZE,
    ) -> None:
        self._decode = decode
        self._encode = encode
        self._committed = Arena()
        self._cache: OrderedDict[str, S] = OrderedDict()  # committed values, decoded
        self._cache_size = cache_size
        self._overlay: dict[str, S | None] = {}  # None = deleted in this transaction
        self._encoded: dict[str, bytes | None] = {}  # overlay values as written to the changelog

    def get(self, key: str) -> S | None:
        """The value of ``key`` as the open transaction sees it (committed values are decoded
        here unless cached, so a corrupt one raises what ``decode`` raises)."""
        if key in self._overlay:
            return self._overlay[key]
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
            return value
        value = self.peek(key)
        if value is not None:
            self._remember(key, value)
        return value

    def peek(self, key: str) -> S | None:
        """Like ``get``, but leaves the cache alone (a scan over every key would flush it)."""
        if key in self._overlay:
            return self._overlay[key]
        value = self._cache.get(key)
        if value is not None:
            return value
        data = self._committed.get(key.encode())
        return None if data is None else self._decode(data)

    def encoded(self, key: str) -> bytes | None:
        """The value of ``key`` as the changelog carries it, not decoded (so one that does not
        decode can still be dead-lettered)."""
        if key in self._overlay:
            return self._encoding(key)
        return self._committed.get(key.encode())

    def put(self, key: str, value: S | None, encoded: bytes | None = None) -> None:
        """Set (or, with ``None``, delete) ``key`` in the open transaction; ``encoded``, if
        given, is ``value`` already encoded (it is what the changelog gets)."""
        self._overlay[key] = value
        if encoded is None:
            self._encoded.pop(key, None)
        else:
            self._encoded[key] = encoded

    def dirty(self) -> Iterator[tuple[str, S | None]]:
        """Keys written in the open transaction, with their new values (``None`` = deleted)."""
        yield from self._overlay.items()

    def changes(self) -> Iterator[tuple[str, bytes | None]]:
        """Keys written in the open transaction, encoded as the changelog carries them."""
        for key in self._overlay:
            yield key, self._encoding(key)

    def _encoding(self, key: str) -> bytes | None:
        if key not in self._encoded:
            value = self._overlay[key]
            self._encoded[key] = None if value is None else self._encode(value)
        return self._encoded[key]

    def _remember(self, key: str, value: S) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def commit(self) -> None:
        """Fold the open transaction's writes into the committed state."""
        for key, value in self._overlay.items():
            self._committed.put(key.encode(), self._encoding(key))
            if value is None:
                self._cache.pop(key, None)
            else:
                self._remember(key, value)  # just written: likely read again soon
        self.abort()

    def abort(self) -> None:
        """Forget the open transaction's writes (the cache holds committed values only)."""
        self._overlay.clear()
        self._encoded.clear()

    def restore(self, key: bytes, data: bytes | None) -> None:
        """Apply one changelog record (outside any transaction); ``None`` is a tombstone."""
        if self._cache:
            self._cache.pop(key.decode(), None)
        self._committed.put(key, data)

    def dump(self) -> tuple[ArenaLayout, Iterator[memoryview]]:
        """The committed state's raw contents (``Arena.dump``; the open transaction is not
        in it), for a snapshot file."""
        return self._committed.dump()

    def load(self, committed: Arena) -> None:
        """Make ``committed`` the committed state (of a new store, before restoring onto it)."""
        self._committed = committed
        self._cache.clear()

    def keys(self) -> PartitionKeys:
        """The live keys as the open transaction sees them, to be read later: a snapshot
        (8 bytes per committed key); keys deleted meanwhile read as None from ``get``."""
        fresh = [
            key
            for key, value in self._overlay.items()
            if value is not None and key.encode() not in self._committed
        ]
        return PartitionKeys(self._committed.keys(), fresh)

    def items(self) -> Iterator[tuple[str, S]]:
        """Every live key and value (decoded), as the open transaction sees them."""
        keys = self.keys()
        for key in keys.between(0, len(keys)):
            value = self.peek(key)
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        """Live keys of the committed state."""
        return len(self._committed)

    @property
    def committed_bytes(self) -> int:
        """Size of the committed values, encoded."""
        return self._committed.value_bytes


class StateStore(Generic[S]):
    """The partitions of one state (e.g. order tracking) that this process owns."""

    def __init__(
        self,
        decode: Callable[[bytes], S],
        encode: Callable[[S], bytes],
        cache_size: int = DECODED_CACHE_SIZE,
    ) -> None:
        self._decode = decode
        self._encode = encode
        self._cache_size = cache_size
        self._partitions: dict[int, PartitionStore[S]] = {}

    def partition(self, number: int) -> PartitionStore[S]:
        """The store of an owned partition."""
        return self._partitions[number]

    def owned(self) -> list[int]:
        """Partition numbers this process holds state for."""
        return sorted(self._partitions)

    def empty(self) -> PartitionStore[S]:
        """A new empty partition store, not owned yet (restore into it, then ``install``)."""
        return PartitionStore(self._decode, self._encode, self._cache_size)

    def install(self, number: int, store: PartitionStore[S]) -> None:
        """Own ``store`` as partition ``number`` (replacing any store it had)."""
        self._partitions[number] = store

    def drop(self, numbers: Iterable[int]) -> None:
        """Forget partitions that were revoked or lost."""
        for number in numbers:
            self._partitions.pop(number, None)

    def changelog_records(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        """``(partition, key, value)`` for every key written in the open transaction."""
        for number, store in self._partitions.items():
            for key, value in store.changes():
                yield number, key.encode(), value

    def commit(self) -> None:
        """The transaction committed: make its writes the committed state."""
        for store in self._partitions.values():
            store.commit()

    def abort(self) -> None:
        """The transaction aborted: rewind every partition to its committed state."""
        for store in self._partitions.values():
            store.abort()
