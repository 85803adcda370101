"""How a backfill shows its progress: a bar on a terminal, JSON lines otherwise."""

from __future__ import annotations

import time
from typing import IO, Any

import orjson

from consumer.backfill.checkpoint import Progress

__all__ = ["ProgressReporter"]

_BAR = 30


class ProgressReporter:
    """Reports each chunk to ``stream``: a redrawn bar if it is a terminal (records read /
    total, events derived, ETA), else one JSON object per line, for logs and scripts."""

    def __init__(self, stream: IO[str], merchant_id: str, *, dry_run: bool = False) -> None:
        self._stream = stream
        self._merchant_id = merchant_id
        self._dry_run = dry_run
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._first_read: int | None = None

    def __call__(self, progress: Progress, committed: bool) -> None:
        line = self.line(progress, committed)
        if self._tty:
            self._stream.write("\r" + self._bar(line) + ("\n" if progress.done else ""))
        else:
            self._stream.write(orjson.dumps(line).decode() + "\n")
        self._stream.flush()

    def line(self, progress: Progress, committed: bool) -> dict[str, Any]:
        """One progress report as data."""
        read, total = progress.read, progress.total
        if self._first_read is None:
            self._first_read = read  # a resumed run's rate counts this run's work only
        elapsed = time.monotonic() - self._started
        done_now = read - self._first_read
        eta = None
        if done_now > 0 and not progress.done:
            eta = round(elapsed / done_now * (total - read), 1)
        return {
            "backfill": self._merchant_id,
            "read": read,
            "total": total,
            "kept": progress.kept,
            "events": progress.events,
            "dead_letters": progress.dead_letters,
            "committed": committed,
            "dry_run": self._dry_run,
            "done": progress.done,
            "eta_seconds": eta,
        }

    @staticmethod
    def _bar(line: dict[str, Any]) -> str:
        total = max(line["total"], 1)
        filled = round(_BAR * line["read"] / total)
        eta = line["eta_seconds"]
        eta_text = "done" if line["done"] else ("ETA ?" if eta is None else f"ETA {eta:.0f}s")
        return (
            f"[{'#' * filled}{'.' * (_BAR - filled)}] {line['read']:,}/{line['total']:,} records"
            f" · {line['events']:,} events · {eta_text}   "
        )
