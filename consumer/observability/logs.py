"""Structured logs: one JSON object per line, key/values from ``extra=``.

Lines are canonical (one per checkpoint, one per Klaviyo request), never one per record.
Correlation fields (``instance``, ``stage``) bound with ``bind_log_context`` ride along on
every line logged from that asyncio task, the tasks it starts and its ``to_thread`` calls
(they all copy the context). As a second line of defence behind ``SecretStr``, anything
shaped like a Klaviyo private key is scrubbed from every line before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from consumer.settings import LoggingSettings

__all__ = ["JsonFormatter", "bind_log_context", "configure_logging", "scrub"]

_KEY_SHAPE = re.compile(r"pk_[A-Za-z0-9]{6,}")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_CONTEXT: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 -- never mutated


def bind_log_context(**fields: str) -> None:
    """Add correlation fields to every later line of the current context."""
    _CONTEXT.set({**_CONTEXT.get(), **fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Bound correlation fields, then the line's own ``extra`` (which wins)."""
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    return {**_CONTEXT.get(), **extras}


def scrub(text: str) -> str:
    """Replace anything shaped like a Klaviyo private key with ``pk_***``."""
    return _KEY_SHAPE.sub("pk_***", text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return scrub(orjson.dumps(doc, default=str).decode())


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def configure_logging(settings: LoggingSettings) -> None:
    """Send all logs to stderr in the configured format and level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else _ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
