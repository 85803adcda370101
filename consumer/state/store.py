"""Per-partition state with a transaction overlay, backed by a compacted changelog topic.

Layers (as in Kafka Streams and Quix): the *committed* map holds what the last committed
transaction wrote; writes of the open transaction go to an *overlay*. ``commit`` folds the
overlay in; ``abort`` drops it, which is how an aborted Kafka transaction rewinds state.
Each changed key is written to the changelog once per checkpoint (the newest value wins), into
the changelog partition with the same number as the input partition it belongs to.

Committed values are kept *encoded*, exactly the bytes on the changelog, and decoded on
access: memory per key is its compact changelog value, and a restore stores the changelog's
bytes as they are, without decoding them. The overlay holds decoded values (what the open
transaction works on) and caches each one's encoding once it is written to the changelog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["PartitionStore", "StateStore"]

S = TypeVar("S")


class PartitionStore(Generic[S]):
    """The state of one input partition."""

    def __init__(self, decode: Callable[[bytes], S], encode: Callable[[S], bytes]) -> None:
        self._decode = decode
        self._encode = encode
        self._committed: dict[str, bytes] = {}
        self._overlay: dict[str, S | None] = {}  # None = deleted in this transaction
        self._encoded: dict[str, bytes | None] = {}  # overlay values as written to the changelog
        self._bytes = 0

    def get(self, key: str) -> S | None:
        """The value of ``key`` as the open transaction sees it (committed values are decoded
        here, so a corrupt one raises what ``decode`` raises)."""
        if key in self._overlay:
            return self._overlay[key]
        data = self._committed.get(key)
        return None if data is None else self._decode(data)

    def put(self, key: str, value: S | None) -> None:
        """Set (or, with ``None``, delete) ``key`` in the open transaction."""
        self._overlay[key] = value
        self._encoded.pop(key, None)

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

    def commit(self) -> None:
        """Fold the open transaction's writes into the committed state."""
        for key in self._overlay:
            self.restore(key, self._encoding(key))
        self.abort()

    def abort(self) -> None:
        """Forget the open transaction's writes."""
        self._overlay.clear()
        self._encoded.clear()

    def restore(self, key: str, data: bytes | None) -> None:
        """Apply one changelog record (outside any transaction); ``None`` is a tombstone."""
        old = self._committed.pop(key, None) if data is None else self._committed.get(key)
        if data is not None:
            self._committed[key] = data
            self._bytes += len(data)
        if old is not None:
            self._bytes -= len(old)

    def keys(self) -> list[str]:
        """Every live key, as the open transaction sees them."""
        live = [key for key in self._committed if key not in self._overlay]
        live += [key for key, value in self._overlay.items() if value is not None]
        return live

    def items(self) -> Iterator[tuple[str, S]]:
        """Every live key and value (decoded), as the open transaction sees them."""
        for key in self.keys():
            value = self.get(key)
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        """Live keys of the committed state."""
        return len(self._committed)

    @property
    def committed_bytes(self) -> int:
        """Size of the committed values, encoded."""
        return self._bytes


class StateStore(Generic[S]):
    """The partitions of one state (e.g. order tracking) that this process owns."""

    def __init__(self, decode: Callable[[bytes], S], encode: Callable[[S], bytes]) -> None:
        self._decode = decode
        self._encode = encode
        self._partitions: dict[int, PartitionStore[S]] = {}

    def partition(self, number: int) -> PartitionStore[S]:
        """The store of an owned partition."""
        return self._partitions[number]

    def owned(self) -> list[int]:
        """Partition numbers this process holds state for."""
        return sorted(self._partitions)

    def empty(self) -> PartitionStore[S]:
        """A new empty partition store, not owned yet (restore into it, then ``install``)."""
        return PartitionStore(self._decode, self._encode)

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
