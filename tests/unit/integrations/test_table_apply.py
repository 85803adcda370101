"""How the table applies records (fed directly, no broker): updates, tombstones, bad records."""

from __future__ import annotations

import logging
import os

import pytest
from pydantic import SecretStr

from consumer.integrations import (
    IntegrationCodec,
    IntegrationRecord,
    IntegrationsTable,
    Keyring,
    MerchantSettings,
)
from consumer.kafka import ConsumedMessage
from consumer.settings import KafkaSettings
from tests.unit.integrations.conftest import PLAINTEXT_KEY

CODEC = IntegrationCodec()


def message(key: bytes | None, value: bytes | None, offset: int = 0) -> ConsumedMessage:
    return ConsumedMessage("integrations", 0, offset, key, value, (), -1)


@pytest.fixture
def table(keyring: Keyring) -> IntegrationsTable:
    return IntegrationsTable(KafkaSettings(), "integrations", keyring)


def test_table_applies_record_and_tombstone(
    table: IntegrationsTable, record: IntegrationRecord, settings: MerchantSettings
) -> None:
    seen: list[tuple[str, MerchantSettings | None]] = []
    table.add_listener(lambda m, s: seen.append((m, s)))
    table._apply_batch([message(b"m1", CODEC.encode(record))])
    assert table.get("m1") == settings
    assert table.merchant_ids() == ["m1"]
    table._apply_batch([message(b"m1", None, 1)])
    assert table.get("m1") is None
    assert table.record("m1") is None
    assert seen == [("m1", settings), ("m1", None)]
    assert table.stats.records == 2
    assert table.stats.tombstones == 1


def test_table_later_record_replaces_earlier(
    table: IntegrationsTable, record: IntegrationRecord
) -> None:
    off = record.replace(order_tracking_enabled=False)
    table._apply_batch([message(b"m1", CODEC.encode(record)), message(b"m1", CODEC.encode(off), 1)])
    current = table.get("m1")
    assert current is not None
    assert current.order_tracking_enabled is False


def test_table_undecodable_record_is_counted_logged_and_keeps_previous(
    table: IntegrationsTable, record: IntegrationRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    table._apply_batch([message(b"m1", CODEC.encode(record)), message(b"m1", b"garbage", 1)])
    assert table.get("m1") is not None
    assert table.stats.undecodable == 1
    assert table.problems() == {"m1": "unknown_magic_byte"}
    assert "offset=1" in caplog.text


def test_table_record_under_another_key_is_rejected(
    table: IntegrationsTable, record: IntegrationRecord
) -> None:
    table._apply_batch([message(b"m2", CODEC.encode(record))])
    assert table.get("m2") is None
    assert table.get("m1") is None
    assert table.problems() == {"m2": "invalid_record"}


def test_table_record_without_key_is_counted(
    table: IntegrationsTable, record: IntegrationRecord
) -> None:
    table._apply_batch([message(None, CODEC.encode(record)), message(b"\xff", b"x", 1)])
    assert table.stats.undecodable == 2
    assert table.problems() == {}


def test_table_undecryptable_record_narrows_but_never_widens(
    table: IntegrationsTable, record: IntegrationRecord, caplog: pytest.LogCaptureFixture
) -> None:
    """A record under an unknown KEK can switch features off, never on, and keeps the key."""
    caplog.set_level(logging.DEBUG)
    stranger = Keyring({"k9": os.urandom(32)})
    good = record.replace(marketing_enabled=False)
    foreign_key = stranger.encrypt(SecretStr(PLAINTEXT_KEY), merchant_id="m1")
    bad = record.replace(api_key=foreign_key, order_tracking_enabled=False, marketing_enabled=True)
    table._apply_batch([message(b"m1", CODEC.encode(good)), message(b"m1", CODEC.encode(bad), 1)])
    current = table.get("m1")
    assert current is not None
    assert current.order_tracking_enabled is False
    assert current.marketing_enabled is False
    assert current.api_key.get_secret_value() == PLAINTEXT_KEY
    assert table.stats.undecryptable == 1
    assert table.problems() == {"m1": "unknown_key_id"}
    assert table.record("m1") == bad
    assert PLAINTEXT_KEY not in caplog.text


def test_table_undecryptable_first_record_leaves_merchant_absent(
    table: IntegrationsTable, record: IntegrationRecord
) -> None:
    stranger = Keyring({"k9": os.urandom(32)})
    bad = record.replace(api_key=stranger.encrypt(SecretStr(PLAINTEXT_KEY), merchant_id="m1"))
    table._apply_batch([message(b"m1", CODEC.encode(bad))])
    assert table.get("m1") is None
    assert table.record("m1") == bad


def test_table_failing_listener_does_not_stop_the_table(
    table: IntegrationsTable, record: IntegrationRecord
) -> None:
    def broken(merchant_id: str, settings: MerchantSettings | None) -> None:
        raise RuntimeError("listener bug")

    table.add_listener(broken)
    table._apply_batch([message(b"m1", CODEC.encode(record))])
    assert table.get("m1") is not None


def test_table_is_not_ready_before_load(table: IntegrationsTable) -> None:
    assert not table.ready


class ExplodingCodec(IntegrationCodec):
    """Decodes like the real codec, but a bug meets the merchant "odd"."""

    def decode(self, payload: bytes) -> IntegrationRecord:
        record = super().decode(payload)
        if record.merchant_id == "odd":
            raise ZeroDivisionError("a bug meeting odd data")
        return record


def test_table_unexpected_error_on_one_record_is_logged_and_the_rest_applied(
    keyring: Keyring,
    record: IntegrationRecord,
    settings: MerchantSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = IntegrationsTable(KafkaSettings(), "integrations", keyring, codec=ExplodingCodec())
    odd = record.replace(merchant_id="odd")
    with caplog.at_level(logging.ERROR):
        table._apply_batch(
            [message(b"odd", CODEC.encode(odd)), message(b"m1", CODEC.encode(record), 1)]
        )
    assert table.get("m1") == settings
    assert table.get("odd") is None
    assert table.problems() == {"odd": "unexpected_error"}
    assert table.stats.failed == 1
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
