"""Audit records: field diffs, key changes, never a secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from consumer.integrations import (
    AuditAction,
    IntegrationRecord,
    KeyChange,
    Keyring,
    audit_change,
    decode_audit,
    encode_audit,
    resolve_operator,
)
from consumer.integrations.audit import FieldChange
from tests.unit.integrations.conftest import PLAINTEXT_KEY


def test_audit_new_merchant_lists_every_field_and_key_added(record: IntegrationRecord) -> None:
    audit = audit_change(AuditAction.SET, None, record, key_change=None)
    assert audit.api_key is KeyChange.ADDED
    assert audit.kek_id == "k1"
    assert FieldChange("order_tracking_enabled", None, True) in audit.changes
    assert len(audit.changes) == 9
    assert audit.operator == "alice"


def test_audit_disable_shows_only_enabled(record: IntegrationRecord) -> None:
    after = record.replace(enabled=False, updated_by="bob", updated_at=record.updated_at)
    audit = audit_change(AuditAction.DISABLE, record, after, key_change=None)
    assert audit.changes == (FieldChange("enabled", True, False),)
    assert audit.api_key is None
    assert audit.operator == "bob"


def test_audit_new_envelope_without_key_change_is_reported_changed(
    record: IntegrationRecord, keyring: Keyring
) -> None:
    """A key swap is never silent, even if the caller forgot to say so."""
    other = keyring.encrypt(SecretStr("pk_someOtherKey12345"), merchant_id="m1")
    audit = audit_change(AuditAction.SET, record, record.replace(api_key=other), key_change=None)
    assert audit.api_key is KeyChange.CHANGED


def test_audit_encoding_has_no_secret_and_round_trips(
    record: IntegrationRecord, keyring: Keyring
) -> None:
    after = record.replace(
        api_key=keyring.reencrypt(record.api_key, merchant_id="m1"),
        updated_at=record.updated_at + timedelta(seconds=1),
    )
    audit = audit_change(AuditAction.ROTATE, record, after, key_change=KeyChange.REENCRYPTED)
    payload = encode_audit(audit)
    assert PLAINTEXT_KEY.encode() not in payload
    assert after.api_key.ciphertext not in payload
    assert b'"change":"re-encrypted"' in payload
    assert decode_audit(payload) == audit


def test_resolve_operator_prefers_flag_then_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "carol")
    assert resolve_operator(" dave ") == "dave"
    assert resolve_operator(None) == "carol"
