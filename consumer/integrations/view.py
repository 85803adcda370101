"""What the integrations table serves, and how one record changes it (no I/O).

A record that cannot be used never stops the table. It is logged (merchant, offset, reason;
never key material), counted in ``TableStats`` and listed in ``problems``; the merchant keeps
its last good settings, except that an undecryptable record may still *narrow* them: its
``enabled`` / ``order_tracking_enabled`` / ``marketing_enabled`` can switch a feature off,
never on. So a missing KEK cannot stop a "disable" from taking effect, and cannot send data
with an old key for a merchant who was turned off.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from consumer.decode import DecodeError
from consumer.integrations.codec import IntegrationCodec, IntegrationRecord
from consumer.integrations.crypto import Keyring
from consumer.integrations.errors import DecryptError, IntegrationRecordError, IntegrationsError
from consumer.kafka import ConsumedMessage
from consumer.merchant import MerchantSettings

__all__ = ["TableStats", "TableView", "merchant_id_of"]

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class TableStats:
    """Counters since the table was created (the metrics layer exports them)."""

    records: int = 0
    """Records read, tombstones included."""
    tombstones: int = 0
    undecodable: int = 0
    """Not an integration record (bad Avro, wrong key, missing fields)."""
    undecryptable: int = 0
    """Decoded, but the API key did not decrypt (unknown or wrong KEK, tampering)."""
    failed: int = 0
    """Applying the record raised an unexpected exception (a bug meeting odd data)."""
    restarts: int = 0
    """Times the reader was restarted after it died."""


@dataclass(slots=True)
class TableView:
    """What the table serves, built by one reader; a restart builds a new one and swaps it in."""

    settings: dict[str, MerchantSettings] = field(default_factory=dict)
    records: dict[str, IntegrationRecord] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def apply(
        self,
        message: ConsumedMessage,
        merchant_id: str,
        codec: IntegrationCodec,
        keyring: Keyring,
        stats: TableStats,
    ) -> None:
        """Apply one record of ``merchant_id`` (see ``merchant_id_of``); bad ones are counted
        in ``stats``, logged and listed in ``problems``, never raised."""
        stats.records += 1
        if not merchant_id:
            self._skip(
                message, None, IntegrationRecordError("record key is not a merchant id"), stats
            )
            return
        if message.value is None:
            stats.tombstones += 1
            self.records.pop(merchant_id, None)
            self.problems.pop(merchant_id, None)
            self.settings.pop(merchant_id, None)
            return
        try:
            record = codec.decode(message.value)
        except (DecodeError, IntegrationRecordError) as exc:
            self._skip(message, merchant_id, exc, stats)
            return
        if record.merchant_id != merchant_id:
            mismatch = IntegrationRecordError("merchant_id differs from the record key")
            self._skip(message, merchant_id, mismatch, stats)
            return
        self.records[merchant_id] = record
        try:
            settings = record.to_settings(keyring)
        except DecryptError as exc:
            self._skip(message, merchant_id, exc, stats)
            self._narrow(merchant_id, record)
            return
        self.problems.pop(merchant_id, None)
        self.settings[merchant_id] = settings

    def _skip(
        self,
        message: ConsumedMessage,
        merchant_id: str | None,
        error: DecodeError | IntegrationsError,
        stats: TableStats,
    ) -> None:
        if isinstance(error, DecryptError):
            stats.undecryptable += 1
        else:
            stats.undecodable += 1
        if merchant_id is not None:
            self.problems[merchant_id] = error.reason
        # Our error messages name merchant, key id and cause only: safe to log verbatim.
        _log.error(
            "integration record skipped merchant=%s partition=%d offset=%d reason=%s error=%s",
            merchant_id,
            message.partition,
            message.offset,
            error.reason,
            error,
        )

    def _narrow(self, merchant_id: str, record: IntegrationRecord) -> None:
        """An undecryptable record may switch features off, never on."""
        previous = self.settings.get(merchant_id)
        if previous is None:
            return
        narrowed = dataclasses.replace(
            previous,
            enabled=previous.enabled and record.enabled,
            order_tracking_enabled=previous.order_tracking_enabled
            and record.order_tracking_enabled,
            marketing_enabled=previous.marketing_enabled and record.marketing_enabled,
        )
        if narrowed != previous:
            self.settings[merchant_id] = narrowed


def merchant_id_of(message: ConsumedMessage) -> str:
    """The record key as a merchant id ("" if it is not one)."""
    try:
        return (message.key or b"").decode("utf-8")
    except UnicodeDecodeError:
        return ""
