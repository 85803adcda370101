"""A compact map from byte keys to byte values: one partition's committed state.

A ``dict[str, bytes]`` costs about 150 bytes per entry beyond the value itself (a str key, a
bytes header, the dict's slot, allocator rounding). Here every record sits in one growing
``bytearray`` (key length, value length, key, value: no object per record) and an
open-addressing table (``array`` of int64, linear probing, at most 2/3 full) finds it: 8 bytes
of framing and 12-24 bytes of table per key.

A table slot holds the record's offset + 1 in its low 36 bits and the low 27 bits of the
key's hash above them: a probe past another key rarely reads the buffer, and growing the
table re-slots entries without hashing their keys again.

A replaced or deleted record stays behind as garbage until the buffer is compacted, once
garbage exceeds half the live bytes: memory stays below 1.5 x the live records, and each
compaction's copy is paid for by the writes that made the garbage. Not thread-safe.
"""

from __future__ import annotations

import struct
from array import array

__all__ = ["Arena", "KeySnapshot"]

_HEAD = struct.Struct("<II")  # key length, value length
_HEAD_SIZE = _HEAD.size
_EMPTY = 0
_DELETED = -1
_OFFSET_BITS = 36  # 64 GiB of records per partition
_OFFSET = (1 << _OFFSET_BITS) - 1
_TAG = (1 << 27) - 1
_MIN_SLOTS = 8
_MIN_GARBAGE = 1 << 20  # below this much garbage a compaction is not worth its copy


class KeySnapshot:
    """The keys an arena held when the snapshot was taken (an offset each, 8 bytes), read
    later: records are never changed in place, and a compaction copies into a new buffer."""

    def __init__(self, data: bytearray, offsets: array[int]) -> None:
        self._data = data
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets)

    def between(self, start: int, end: int) -> list[bytes]:
        """The keys at positions ``start`` to ``end`` (exclusive)."""
        data = self._data
        keys = []
        for offset in self._offsets[start:end]:
            size = _HEAD.unpack_from(data, offset)[0]
            keys.append(bytes(data[offset + _HEAD_SIZE : offset + _HEAD_SIZE + size]))
        return keys


class Arena:
    """Byte keys to byte values, packed into one buffer."""

    __slots__ = ("_data", "_garbage", "_limit", "_live", "_slots", "_used", "_value_bytes")

    def __init__(self) -> None:
        self._data = bytearray()
        self._slots = array("q", bytes(8 * _MIN_SLOTS))
        self._limit = _MIN_SLOTS * 2 // 3  # slots in use (live or deleted) before it grows
        self._live = 0  # keys with a value
        self._used = 0
        self._garbage = 0  # bytes of replaced or deleted records
        self._value_bytes = 0  # bytes of the live values

    def __len__(self) -> int:
        return self._live

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + self._data.__sizeof__() + self._slots.__sizeof__()

    def __contains__(self, key: bytes) -> bool:
        return self._find(key)[1] >= 0

    @property
    def value_bytes(self) -> int:
        """Total size of the live values."""
        return self._value_bytes

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        offset = self._find(key)[1]
        if offset < 0:
            return None
        size, length = _HEAD.unpack_from(self._data, offset)
        start = offset + _HEAD_SIZE + size
        return bytes(self._data[start : start + length])

    def put(self, key: bytes, value: bytes | None) -> None:
        """Set ``key`` to ``value`` (None deletes it)."""
        slot, offset, tag = self._find(key)
        slots = self._slots
        if offset >= 0:
            size, length = _HEAD.unpack_from(self._data, offset)
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
            data = self._data
            slots[slot] = (tag << _OFFSET_BITS) | (len(data) + 1)
            data += _HEAD.pack(len(key), len(value))
            data += key
            data += value
            self._value_bytes += len(value)
        if self._used > self._limit or self._garbage > _MIN_GARBAGE:
            self._tidy()

    def keys(self) -> KeySnapshot:
        """A snapshot of the live keys (reading it later sees the records of that moment)."""
        offsets = array("q", ((entry & _OFFSET) - 1 for entry in self._slots if entry > 0))
        return KeySnapshot(self._data, offsets)

    def _find(self, key: bytes) -> tuple[int, int, int]:
        """``(slot, record offset, tag)`` of ``key``; if absent, offset -1 and the slot to
        fill (the first free one on its probe path)."""
        slots, data = self._slots, self._data
        mask = len(slots) - 1
        tag = hash(key) & _TAG
        slot = tag & mask
        free = -1
        while True:
            entry = slots[slot]
            if entry == _EMPTY:
                return (slot if free < 0 else free), -1, tag
            if entry == _DELETED:
                if free < 0:
                    free = slot
            elif entry >> _OFFSET_BITS == tag:
                offset = (entry & _OFFSET) - 1
                if _HEAD.unpack_from(data, offset)[0] == len(key) and data.startswith(
                    key, offset + _HEAD_SIZE
                ):
                    return slot, offset, tag
            slot = (slot + 1) & mask

    def _tidy(self) -> None:
        if self._garbage > max(_MIN_GARBAGE, (len(self._data) - self._garbage) // 2):
            self._compact()
        if self._used > self._limit:
            self._reslot()

    def _compact(self) -> None:
        """Copy the live records into a new buffer (a snapshot keeps reading the old one)."""
        old, data, slots = self._data, bytearray(), self._slots
        for slot, entry in enumerate(slots):
            if entry > 0:
                offset = (entry & _OFFSET) - 1
                size, length = _HEAD.unpack_from(old, offset)
                slots[slot] = (entry & ~_OFFSET) | (len(data) + 1)
                data += old[offset : offset + _HEAD_SIZE + size + length]
        self._data = data
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
                slot = (entry >> _OFFSET_BITS) & mask
                while slots[slot] != _EMPTY:
                    slot = (slot + 1) & mask
                slots[slot] = entry
        self._slots = slots
        self._limit = capacity * 2 // 3
        self._used = self._live
