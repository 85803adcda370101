"""A compact map from byte keys to byte values: one partition's committed state.

A ``dict[str, bytes]`` costs about 150 bytes per entry beyond the value itself (a str key, a
bytes header, the dict's slot, allocator rounding). Here records (key length, value length,
key, value: no object per record) are appended to fixed 1 MiB chunks, and an open-addressing
table (``array`` of int64, linear probing, at most 2/3 full) finds them: 8 bytes of framing
and 12-24 bytes of table per key. Fixed chunks rather than one growing buffer: growing a
large buffer by reallocation leaves the allocator holes it does not give back (measured: 2.4 x
the state's size in RSS after a restore in a worker thread).

A table slot holds the record's position + 1 in its low 36 bits and the low 27 bits of the
key's hash above them: a probe past another key rarely reads a chunk, and growing the table
re-slots entries without hashing their keys again. The hash is CRC-32, not ``hash()``: it is
the same in every process, so ``dump`` and ``load`` move the chunks and the table as they are
(a buffer each, no object per record) and the table still finds every key.

A replaced or deleted record stays behind as garbage until the chunks are compacted, once
garbage exceeds half the live bytes: memory stays below 1.5 x the live records (plus one
chunk), and each compaction's copy is paid for by the writes that made the garbage. Not
thread-safe.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Arena", "ArenaLayout", "KeySnapshot"]

_HEAD = struct.Struct("<II")  # key length, value length
_HEAD_SIZE = _HEAD.size
_EMPTY = 0
_DELETED = -1
_CHUNK_BITS = 20  # a record's position: chunk number << 20 | offset in the chunk
_CHUNK = 1 << _CHUNK_BITS
_IN_CHUNK = _CHUNK - 1
_POSITION_BITS = 36  # 64 Ki chunks, 64 GiB of records per partition
_POSITION = (1 << _POSITION_BITS) - 1
_TAG = (1 << 27) - 1
_MIN_SLOTS = 8
_MIN_GARBAGE = 4 * _CHUNK  # below this much garbage a compaction is not worth its copy
_hash = zlib.crc32


@dataclass(frozen=True, slots=True)
class ArenaLayout:
    """What ``Arena.load`` needs besides the bytes: the sizes of the buffers ``dump`` yields
    and the counters that go with them."""

    chunk_sizes: tuple[int, ...]  # allocated size of each chunk
    fill: int  # bytes used in the last chunk (only those are dumped)
    slots: int  # table size
    live: int
    used: int
    garbage: int
    value_bytes: int

    def check(self) -> None:
        """Raises ValueError if the layout cannot be an arena's."""
        slots = self.slots
        if slots < _MIN_SLOTS or slots & (slots - 1) or slots > _TAG + 1:
            raise ValueError(f"table of {slots} slots is not a power of two in range")
        if not 0 <= self.live <= self.used <= slots * 2 // 3:
            raise ValueError(f"{self.live} live of {self.used} used slots in {slots}")
        if any(size < _CHUNK for size in self.chunk_sizes):
            raise ValueError("a chunk is smaller than the chunk size")
        last = self.chunk_sizes[-1] if self.chunk_sizes else 0
        if not 0 <= self.fill <= last or min(self.garbage, self.value_bytes) < 0:
            raise ValueError("fill or byte counts out of range")


class _Chunks:
    """Records appended to fixed-size chunks (a record larger than a chunk gets its own)."""

    __slots__ = ("chunks", "fill", "room")

    def __init__(self) -> None:
        self.chunks: list[bytearray] = []
        self.fill = 0  # bytes used in the last chunk
        self.room = 0  # bytes left in it

    def append(self, key: bytes, value: bytes) -> int:
        """Store a record; its position."""
        record = _HEAD.pack(len(key), len(value)) + key + value
        size = len(record)
        if size > self.room:
            self.chunks.append(bytearray(max(_CHUNK, size)))
            self.fill, self.room = 0, max(_CHUNK, size)
        start = self.fill
        self.chunks[-1][start : start + size] = record
        self.fill = start + size
        self.room -= size
        return (len(self.chunks) - 1) << _CHUNK_BITS | start

    def record(self, position: int) -> tuple[bytearray, int, int, int]:
        """``(chunk, offset of the key, key length, value length)`` of a record."""
        chunk = self.chunks[position >> _CHUNK_BITS]
        start = position & _IN_CHUNK
        size, length = _HEAD.unpack_from(chunk, start)
        return chunk, start + _HEAD_SIZE, size, length

    def key(self, position: int) -> bytes:
        chunk, start, size, _ = self.record(position)
        return bytes(chunk[start : start + size])

    def held(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def buffers(self) -> Iterator[memoryview]:
        """The chunks' used bytes (all of each but the last)."""
        for number, chunk in enumerate(self.chunks):
            last = number == len(self.chunks) - 1
            yield memoryview(chunk)[: self.fill] if last else memoryview(chunk)


class KeySnapshot:
    """The keys an arena held when the snapshot was taken (a position each, 8 bytes), read
    later: records are never changed in place, and a compaction copies into new chunks."""

    def __init__(self, records: _Chunks, positions: array[int]) -> None:
        self._records = records
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    def between(self, start: int, end: int) -> list[bytes]:
        """The keys at positions ``start`` to ``end`` (exclusive)."""
        return [self._records.key(position) for position in self._positions[start:end]]


class Arena:
    """Byte keys to byte values, packed into chunks."""

    __slots__ = ("_garbage", "_limit", "_live", "_records", "_slots", "_used", "_value_bytes")

    def __init__(self) -> None:
        self._records = _Chunks()
        self._slots = array("q", bytes(8 * _MIN_SLOTS))
        self._limit = _MIN_SLOTS * 2 // 3  # slots in use (live or deleted) before it grows
        self._live = 0  # keys with a value
        self._used = 0
        self._garbage = 0  # bytes of replaced or deleted records
        self._value_bytes = 0  # bytes of the live values

    def __len__(self) -> int:
        return self._live

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + self._records.held() + self._slots.__sizeof__()

    def __contains__(self, key: bytes) -> bool:
        return self._find(key)[1] >= 0

    @property
    def value_bytes(self) -> int:
        """Total size of the live values."""
        return self._value_bytes

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        position = self._find(key)[1]
        if position < 0:
            return None
        chunk, start, size, length = self._records.record(position)
        return bytes(chunk[start + size : start + size + length])

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set ``key`` to ``value`` (None deletes it)."""
        slot, position, tag = self._find(key)
        slots = self._slots
        if position >= 0:
            _, _, size, length = self._records.record(position)
            self._garbage += _HEAD_SIZE + size + length
            self._value_bytes -= length
            if value is None:
                slots[slot] = _DELETED
                self._live -= 1
        elif value is None:
            return
        else:
            self._live += 1
            if slots[slot] == _EMPTY:
                self._used += 1
        if value is not None:
            slots[slot] = (tag << _POSITION_BITS) | (self._records.append(key, value) + 1)
            self._value_bytes += len(value)
        if self._used > self._limit or self._garbage > _MIN_GARBAGE:
            self._tidy()

    def dump(self) -> tuple[ArenaLayout, Iterator[memoryview]]:
        """The arena's layout and its raw contents (the chunks, then the table), for ``load``.
        The buffers are views: write them out before changing the arena."""
        records = self._records
        layout = ArenaLayout(
            tuple(len(chunk) for chunk in records.chunks),
            records.fill,
            len(self._slots),
            self._live,
            self._used,
            self._garbage,
            self._value_bytes,
        )

        def buffers() -> Iterator[memoryview]:
            yield from records.buffers()
            yield _little_endian(self._slots)

        return layout, buffers()

    @classmethod
    def load(cls, layout: ArenaLayout, fill: Callable[[memoryview], None]) -> Arena:
        """An arena from ``dump``'s output: ``fill`` must fill each buffer it is given
        with the next bytes of what ``dump`` yielded (or raise).

        Raises:
            ValueError: the layout is not an arena's.
        """
        layout.check()
        arena = cls()
        records = arena._records
        for number, size in enumerate(layout.chunk_sizes):
            chunk = bytearray(size)
            last = number == len(layout.chunk_sizes) - 1
            fill(memoryview(chunk)[: layout.fill] if last else memoryview(chunk))
            records.chunks.append(chunk)
        if records.chunks:
            records.fill = layout.fill
            records.room = layout.chunk_sizes[-1] - layout.fill
        slots = array("q", bytes(8 * layout.slots))
        fill(memoryview(slots).cast("B"))
        if sys.byteorder != "little":
            slots.byteswap()
        arena._slots = slots
        arena._limit = layout.slots * 2 // 3
        arena._live, arena._used = layout.live, layout.used
        arena._garbage, arena._value_bytes = layout.garbage, layout.value_bytes
        return arena

    def keys(self) -> KeySnapshot:
        """A snapshot of the live keys (reading it later sees the records of that moment)."""
        positions = array("q", ((entry & _POSITION) - 1 for entry in self._slots if entry > 0))
        return KeySnapshot(self._records, positions)

    def _find(self, key: bytes) -> tuple[int, int, int]:
        """``(slot, record position, tag)`` of ``key``; if absent, position -1 and the slot
        to fill (the first free one on its probe path)."""
        slots, chunks = self._slots, self._records.chunks
        mask = len(slots) - 1
        tag = _hash(key) & _TAG
        slot = tag & mask
        free = -1
        while True:
            entry = slots[slot]
            if entry == _EMPTY:
                return (slot if free < 0 else free), -1, tag
            if entry == _DELETED:
                if free < 0:
                    free = slot
            elif entry >> _POSITION_BITS == tag:
                position = (entry & _POSITION) - 1
                chunk = chunks[position >> _CHUNK_BITS]
                start = position & _IN_CHUNK
                if _HEAD.unpack_from(chunk, start)[0] == len(key) and chunk.startswith(
                    key, start + _HEAD_SIZE
                ):
                    return slot, position, tag
            slot = (slot + 1) & mask

    def _tidy(self) -> None:
        if self._garbage > max(_MIN_GARBAGE, self._value_bytes // 2):
            self._compact()
        if self._used > self._limit:
            self._reslot()

    def _compact(self) -> None:
        """Copy the live records into new chunks (a snapshot keeps reading the old ones)."""
        old, new, slots = self._records, _Chunks(), self._slots
        for slot, entry in enumerate(slots):
            if entry > 0:
                chunk, start, size, length = old.record((entry & _POSITION) - 1)
                key = bytes(chunk[start : start + size])
                value = bytes(chunk[start + size : start + size + length])
                slots[slot] = (entry & ~_POSITION) | (new.append(key, value) + 1)
        self._records = new
        self._garbage = 0

    def _reslot(self) -> None:
        """A table at most half full of live keys, without the deleted ones."""
        capacity = _MIN_SLOTS
        while capacity < 2 * self._live:
            capacity *= 2
        if capacity > _TAG + 1:
            raise OverflowError("more keys in one partition than the arena's table can slot")
        slots = array("q", bytes(8 * capacity))
        mask = capacity - 1
        for entry in self._slots:
            if entry > 0:
                slot = (entry >> _POSITION_BITS) & mask
                while slots[slot] != _EMPTY:
                    slot = (slot + 1) & mask
                slots[slot] = entry
        self._slots = slots
        self._limit = capacity * 2 // 3
        self._used = self._live


def _little_endian(slots: array[int]) -> memoryview:
    """The table's bytes, little-endian whatever the machine (dumps move between hosts)."""
    if sys.byteorder != "little":
        slots = array("q", slots)
        slots.byteswap()
    return memoryview(slots).cast("B")
