"""Snapshot files of one partition's committed state, for a restart that replays only the tail.

A file holds the arena's raw buffers (``Arena.dump``: the chunks and the table, no object per
entry) with the changelog position they reflect::

    magic (8) | format version (u32) | header length (u32) | header (JSON) | buffers | CRC-32 (u32)

The header names the changelog topic and partition, the changelog offset the state reflects
(replay from there), when the file was written, and the arena's layout. The CRC covers
everything before it. Files are written to a temporary name, fsynced, then renamed, so a
reader sees a whole file or none; a file is never changed once written.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from consumer.state.arena import Arena, ArenaLayout

__all__ = [
    "SNAPSHOT_VERSION",
    "InvalidSnapshot",
    "SnapshotHeader",
    "SnapshotReader",
    "snapshot_path",
    "write_snapshot",
]

SNAPSHOT_VERSION = 1
_MAGIC = b"KCSTATE\n"
_PREFIX = struct.Struct("<8sII")  # magic, version, header length
_CRC = struct.Struct("<I")
_MAX_HEADER = 1 << 24


class InvalidSnapshot(Exception):
    """A snapshot file that must not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class SnapshotHeader:
    """What a snapshot reflects."""

    topic: str
    topic_id: str | None  # the broker's id of the topic when the file was written
    partition: int
    offset: int  # the changelog offset to replay from
    written_at: float  # wall-clock seconds since the epoch
    layout: ArenaLayout


def snapshot_path(directory: Path, topic: str, partition: int) -> Path:
    """Where the snapshot of ``topic``'s ``partition`` lives."""
    return directory / f"{topic}-{partition}.snapshot"


def write_snapshot(
    path: Path,
    topic: str,
    topic_id: str | None,
    partition: int,
    offset: int,
    contents: tuple[ArenaLayout, Iterator[memoryview]],
) -> int:
    """Write an arena's ``contents`` (``Arena.dump``) as the state at changelog ``offset``;
    returns the file's size.

    Raises:
        OSError: the file could not be written (no partial file is left behind).
    """
    layout, buffers = contents
    header = SnapshotHeader(topic, topic_id, partition, offset, time.time(), layout)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("wb") as out:
            size = _write(out, header, buffers)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)
    return size


def _write(out: BinaryIO, header: SnapshotHeader, buffers: Iterator[memoryview]) -> int:
    fields = orjson.dumps(asdict(header))
    crc, size = 0, 0
    prefix = memoryview(_PREFIX.pack(_MAGIC, SNAPSHOT_VERSION, len(fields)))
    for part in (prefix, memoryview(fields), *buffers):
        out.write(part)
        crc = zlib.crc32(part, crc)
        size += len(part)
    out.write(_CRC.pack(crc))
    return size + _CRC.size


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (a crash right after it could otherwise lose it)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SnapshotReader:
    """An open snapshot file: the header first (cheap, to judge it), then ``load``.

    Raises (from the constructor and ``load``):
        InvalidSnapshot: the file is not a whole snapshot of this version.
        OSError: it could not be read.
    """

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._crc = 0
        try:
            self.header = self._read_header()
        except BaseException:
            self._file.close()
            raise

    def _read_header(self) -> SnapshotHeader:
        magic, version, length = _PREFIX.unpack(self._read(_PREFIX.size))
        if magic != _MAGIC:
            raise InvalidSnapshot("not a state snapshot file")
        if version != SNAPSHOT_VERSION:
            raise InvalidSnapshot(f"format version {version}, expected {SNAPSHOT_VERSION}")
        if length > _MAX_HEADER:
            raise InvalidSnapshot(f"header of {length} bytes")
        header = _header(self._read(length))
        layout = header.layout
        body = sum(layout.chunk_sizes[:-1]) + layout.fill + 8 * layout.slots
        expected = _PREFIX.size + length + body + _CRC.size
        actual = os.fstat(self._file.fileno()).st_size
        if actual != expected:
            raise InvalidSnapshot(f"{actual} bytes, its header describes {expected}")
        return header

    def load(self) -> Arena:
        """The arena, after checking the CRC."""
        try:
            arena = Arena.load(self.header.layout, self._fill)
            (stored,) = _CRC.unpack(self._file.read(_CRC.size))
            if stored != self._crc:
                raise InvalidSnapshot("checksum mismatch")
            return arena
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise InvalidSnapshot("truncated")
        self._crc = zlib.crc32(data, self._crc)
        return data

    def _fill(self, buffer: memoryview) -> None:
        if self._file.readinto(buffer) != len(buffer):
            raise InvalidSnapshot("truncated")
        self._crc = zlib.crc32(buffer, self._crc)


def _header(data: bytes) -> SnapshotHeader:
    try:
        fields = orjson.loads(data)
        shape = fields["layout"]
        layout = ArenaLayout(**{**shape, "chunk_sizes": tuple(shape["chunk_sizes"])})
        layout.check()
        topic_id = fields["topic_id"]
        header = SnapshotHeader(
            str(fields["topic"]),
            None if topic_id is None else str(topic_id),
            int(fields["partition"]),
            int(fields["offset"]),
            float(fields["written_at"]),
            layout,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidSnapshot(f"unreadable header: {exc}") from None
    return header
