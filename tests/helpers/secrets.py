"""Scan everything a test run produced for secrets: logs, exceptions, CLI output, topic bytes.

Guarantee 5 ("secrets stay secret") is proven by running a real flow with a known key and
then searching every output channel for it. A secret is looked for as itself, in the
encodings a careless serialiser would produce (base64, hex, JSON/repr escapes) and as any
fragment of ``fragment`` characters, so a partially redacted key (``pk_…abcd1234``) is
caught too. Failure messages say where a secret was found, never the secret.

::

    scanner = SecretScanner(api_key)
    scanner.add_logs(caplog.records)
    scanner.add("cli list", result.out)
    scanner.add_messages("integrations topic", drain(kafka_settings, topic))
    scanner.assert_clean()
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Iterable

from consumer.kafka import ConsumedMessage

__all__ = ["SecretScanner", "secret_forms"]

DEFAULT_FRAGMENT = 8
# LogRecord attributes that are bookkeeping, not content.
_LOG_BOOKKEEPING = frozenset(
    {
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
        "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
        "relativeCreated", "thread", "threadName", "processName", "process", "taskName",
    }
)  # fmt: skip


def secret_forms(secret: str, fragment: int = DEFAULT_FRAGMENT) -> set[bytes]:
    """Byte strings whose presence means ``secret`` (or a piece of it) leaked."""
    raw = secret.encode("utf-8")
    forms = {
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        raw.hex().encode(),
        raw.hex().upper().encode(),
        secret.encode("utf-16-le"),
    }
    if fragment and len(secret) > fragment:
        forms |= {raw[i : i + fragment] for i in range(len(raw) - fragment + 1)}
    return forms


class SecretScanner:
    """Collects findings of any of ``secrets`` in whatever is added; ``assert_clean`` at the end.

    Args:
        secrets: The plaintexts that must never appear (at least ``fragment`` characters).
        fragment: Length of the pieces also searched for (0 = whole secrets only).
    """

    def __init__(self, *secrets: str, fragment: int = DEFAULT_FRAGMENT) -> None:
        if not secrets or any(len(s) < fragment for s in secrets):
            raise ValueError(f"give secrets of at least {fragment} characters")
        self.findings: list[str] = []
        self.scanned: dict[str, int] = {}
        self._count = len(secrets)
        self._forms = [(i, secret_forms(s, fragment)) for i, s in enumerate(secrets)]

    def __repr__(self) -> str:
        return f"SecretScanner({self._count} secrets, {len(self.findings)} findings)"

    def add(self, where: str, data: str | bytes | None) -> None:
        """Scan one piece of output, remembered under ``where``."""
        if data is None:
            return
        blob = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else bytes(data)
        self.scanned[where] = self.scanned.get(where, 0) + len(blob)
        for index, forms in self._forms:
            if any(form in blob for form in forms):
                self.findings.append(f"secret #{index} in {where}")

    def add_logs(self, records: Iterable[logging.LogRecord], where: str = "logs") -> None:
        """Scan log records: formatted message, raw args, extras, exception and stack text."""
        for record in records:
            label = f"{where} ({record.name}:{record.lineno})"
            self.add(label, record.getMessage())
            self.add(label, repr(record.args))
            extras = {k: v for k, v in vars(record).items() if k not in _LOG_BOOKKEEPING}
            self.add(label, repr(extras))
            if record.exc_info and record.exc_info[1] is not None:
                self.add_exception(label, record.exc_info[1])
            self.add(label, record.exc_text)
            self.add(label, record.stack_info)

    def add_exception(self, where: str, exc: BaseException) -> None:
        """Scan an exception as a crash dump would show it: traceback, chain, repr, args."""
        self.add(where, "".join(traceback.format_exception(exc)))
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.add(where, repr(current))
            self.add(where, repr(current.args))
            current = current.__cause__ or current.__context__

    def add_messages(self, where: str, messages: Iterable[ConsumedMessage]) -> None:
        """Scan Kafka records byte for byte: key, value and headers."""
        for message in messages:
            label = f"{where} [{message.partition}@{message.offset}]"
            self.add(label, message.key)
            self.add(label, message.value)
            for name, value in message.headers:
                self.add(label, name)
                self.add(label, value)

    def assert_clean(self) -> None:
        """Fail if any secret was found (the message lists where, not what)."""
        assert self.scanned, "nothing was scanned"
        assert not self.findings, "secret leaked: " + "; ".join(sorted(set(self.findings)))
