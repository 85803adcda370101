"""Audit records: who changed which merchant integration, when, and what changed.

Every change the CLI makes (set, disable, rotate) is published to the audit topic in the same
Kafka transaction as the integration record, so one never exists without the other. The
record shows non-secret fields as old → new; for the API key it says only *that* it changed
and under which key-encryption key, never the key nor anything derived from it.

Encoding: compact JSON with a format version ``"v"`` (the audit topic is read by people and
log shippers more than by this service), key = merchant id.
"""

from __future__ import annotations

import enum
import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from consumer.integrations.codec import SETTINGS_FIELDS, IntegrationRecord
from consumer.integrations.errors import IntegrationRecordError

__all__ = [
    "AUDIT_FORMAT_VERSION",
    "AuditAction",
    "AuditRecord",
    "FieldChange",
    "KeyChange",
    "audit_change",
    "decode_audit",
    "encode_audit",
    "resolve_operator",
]

AUDIT_FORMAT_VERSION: Final = 1


class AuditAction(enum.StrEnum):
    """What the operator did."""

    SET = "set"
    DISABLE = "disable"
    ROTATE = "rotate"


class KeyChange(enum.StrEnum):
    """What happened to the API key (the only thing said about it)."""

    ADDED = "added"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REENCRYPTED = "re-encrypted"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One non-secret field, before and after."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change to one merchant's integration."""

    merchant_id: str
    action: AuditAction
    operator: str
    at: datetime
    changes: tuple[FieldChange, ...]
    api_key: KeyChange | None
    """None when the key was not touched at all."""
    kek_id: str
    """The KEK the stored key is now wrapped with."""
    previous_kek_id: str | None = None


def resolve_operator(flag: str | None) -> str:
    """The operator's name: ``--operator``, else ``$USER``, else the login name."""
    if flag and flag.strip():
        return flag.strip()
    user = os.environ.get("USER", "").strip()
    if user:
        return user
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (e.g. an arbitrary uid in a container)
        return "unknown"


def audit_change(
    action: AuditAction,
    before: IntegrationRecord | None,
    after: IntegrationRecord,
    *,
    key_change: KeyChange | None,
) -> AuditRecord:
    """The audit record of replacing ``before`` (None = new merchant) with ``after``.

    ``key_change`` is decided by the caller, who alone has seen both plaintexts; passing
    None with a different envelope is treated as ``CHANGED`` so a key swap is never silent.
    """
    old_values = before.settings_values() if before else {}
    changes = tuple(
        FieldChange(name, old_values.get(name), new)
        for name, new in after.settings_values().items()
        if before is None or old_values[name] != new
    )
    if key_change is None and (before is None or before.api_key != after.api_key):
        key_change = KeyChange.ADDED if before is None else KeyChange.CHANGED
    return AuditRecord(
        merchant_id=after.merchant_id,
        action=action,
        operator=after.updated_by,
        at=after.updated_at,
        changes=changes,
        api_key=key_change,
        kek_id=after.api_key.kek_id,
        previous_kek_id=before.api_key.kek_id if before else None,
    )


def encode_audit(record: AuditRecord) -> bytes:
    """The JSON value published to the audit topic."""
    changes: list[dict[str, Any]] = [
        {"field": c.field, "old": c.old, "new": c.new} for c in record.changes
    ]
    if record.api_key is not None:
        changes.append(
            {
                "field": "api_key",
                "change": record.api_key.value,
                "kek_id": record.kek_id,
                "previous_kek_id": record.previous_kek_id,
            }
        )
    return orjson.dumps(
        {
            "v": AUDIT_FORMAT_VERSION,
            "merchant_id": record.merchant_id,
            "action": record.action.value,
            "operator": record.operator,
            "at": record.at.isoformat(),
            "kek_id": record.kek_id,
            "changes": changes,
        }
    )


def decode_audit(payload: bytes) -> AuditRecord:
    """Read back an audit value (for history views and tests).

    Raises:
        IntegrationRecordError: not an audit record of a known format version.
    """
    try:
        doc = orjson.loads(payload)
        if doc.get("v") != AUDIT_FORMAT_VERSION:
            raise IntegrationRecordError(f"unknown audit format version {doc.get('v')!r}")
        key_entries = [c for c in doc["changes"] if c["field"] == "api_key"]
        fields = [c for c in doc["changes"] if c["field"] in SETTINGS_FIELDS]
        key_entry = key_entries[0] if key_entries else None
        return AuditRecord(
            merchant_id=doc["merchant_id"],
            action=AuditAction(doc["action"]),
            operator=doc["operator"],
            at=datetime.fromisoformat(doc["at"]),
            changes=tuple(FieldChange(c["field"], c["old"], c["new"]) for c in fields),
            api_key=KeyChange(key_entry["change"]) if key_entry else None,
            kek_id=doc["kek_id"],
            previous_kek_id=key_entry["previous_kek_id"] if key_entry else None,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrationRecordError(f"invalid audit record: {type(exc).__name__}") from None
