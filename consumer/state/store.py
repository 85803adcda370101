"""Per-partition state with a transaction overlay, backed by a compacted changelog topic.

Layers (as in Kafka Streams and Quix): the *committed* map holds what the last committed
transaction wrote; writes of the open transaction go to an *overlay*. ``commit`` folds the
overlay in; ``abort`` drops it, which is how an aborted Kafka transaction rewinds state.
Each changed key is written to the changelog once per checkpoint (the newest value wins), into
the changelog partition with the same number as the input partition it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["PartitionStore", "StateStore"]

S = TypeVar("S")


class PartitionStore(Generic[S]):
    """The state of one input partition."""

    def __init__(self) -> None:
        self._committed: dict[str, S] = {}
        self._overlay: dict[str, S | None] = {}  # None = deleted in this transaction

    def get(self, key: str) -> S | None:
        """The value of ``key`` as the open transaction sees it."""
        if key in self._overlay:
            return self._overlay[key]
        return self._committed.get(key)

    def put(self, key: str, value: S | None) -> None:
        """Set (or, with ``None``, delete) ``key`` in the open transaction."""
        self._overlay[key] = value

    def dirty(self) -> Iterator[tuple[str, S | None]]:
        """Keys written in the open transaction, with their new values (``None`` = deleted)."""
        yield from self._overlay.items()

    def commit(self) -> None:
        """Fold the open transaction's writes into the committed state."""
        for key, value in self.dirty():
            if value is None:
                self._committed.pop(key, None)
            else:
                self._committed[key] = value
        self._overlay.clear()

    def abort(self) -> None:
        """Forget the open transaction's writes."""
        self._overlay.clear()

    def restore(self, key: str, value: S | None) -> None:
        """Apply one changelog record (outside any transaction)."""
        if value is None:
            self._committed.pop(key, None)
        else:
            self._committed[key] = value

    def items(self) -> Iterator[tuple[str, S]]:
        """Every live key and value, as the open transaction sees them."""
        for key in self._committed.keys() | self._overlay.keys():
            value = self.get(key)
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        return sum(1 for _ in self.items())


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

    def restore(self, number: int, records: Iterable[tuple[bytes | None, bytes | None]]) -> int:
        """Rebuild partition ``number`` from its changelog records; returns how many were read."""
        store: PartitionStore[S] = PartitionStore()
        count = 0
        for key, value in records:
            if key is not None:
                store.restore(key.decode(), None if value is None else self._decode(value))
                count += 1
        self._partitions[number] = store
        return count

    def drop(self, numbers: Iterable[int]) -> None:
        """Forget partitions that were revoked or lost."""
        for number in numbers:
            self._partitions.pop(number, None)

    def changelog_records(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        """``(partition, key, value)`` for every key written in the open transaction."""
        for number, store in self._partitions.items():
            for key, value in store.dirty():
                yield number, key.encode(), None if value is None else self._encode(value)

    def commit(self) -> None:
        """The transaction committed: make its writes the committed state."""
        for store in self._partitions.values():
            store.commit()

    def abort(self) -> None:
        """The transaction aborted: rewind every partition to its committed state."""
        for store in self._partitions.values():
            store.abort()
