"""Merchant integrations: settings per merchant, encrypted API keys, the live table.

- ``crypto``: envelope encryption (AES-256-GCM) and the ``Keyring`` of key-encryption keys.
- ``codec``: ``IntegrationRecord`` ↔ Avro bytes, and ↔ ``MerchantSettings`` via the keyring.
- ``table``: ``IntegrationsTable``, the compacted topic as a live in-memory lookup, its reader
  supervised; ``view``: what it serves and how one record changes that.
- ``verify``: what a key may do in Klaviyo, checked without creating data.
- ``audit`` / ``publish``: every change written with its audit record in one transaction.
"""

from consumer.integrations.apikey import api_key_fingerprint, parse_api_key
from consumer.integrations.audit import (
    AuditAction,
    AuditRecord,
    FieldChange,
    KeyChange,
    audit_change,
    decode_audit,
    encode_audit,
    resolve_operator,
)
from consumer.integrations.codec import (
    SETTINGS_FIELDS,
    SUBJECT,
    IntegrationCodec,
    IntegrationRecord,
)
from consumer.integrations.crypto import EncryptedSecret, Keyring, generate_kek
from consumer.integrations.errors import (
    ApiKeyFormatError,
    DecryptError,
    IntegrationRecordError,
    IntegrationsError,
    UnknownKeyError,
)
from consumer.integrations.publish import (
    IntegrationPublisher,
    ensure_integration_topics,
    integration_topic_specs,
)
from consumer.integrations.table import ChangeListener, IntegrationsTable, ReaderListener
from consumer.integrations.verify import (
    Capability,
    KeyStatus,
    Probe,
    ProbeResult,
    Verification,
    classify_response,
    summarise,
    verify_api_key,
)
from consumer.integrations.view import TableStats
from consumer.merchant import MerchantSettings

__all__ = [
    "SETTINGS_FIELDS",
    "SUBJECT",
    "ApiKeyFormatError",
    "AuditAction",
    "AuditRecord",
    "Capability",
    "ChangeListener",
    "DecryptError",
    "EncryptedSecret",
    "FieldChange",
    "IntegrationCodec",
    "IntegrationPublisher",
    "IntegrationRecord",
    "IntegrationRecordError",
    "IntegrationsError",
    "IntegrationsTable",
    "KeyChange",
    "KeyStatus",
    "Keyring",
    "MerchantSettings",
    "Probe",
    "ProbeResult",
    "ReaderListener",
    "TableStats",
    "UnknownKeyError",
    "Verification",
    "api_key_fingerprint",
    "audit_change",
    "classify_response",
    "decode_audit",
    "encode_audit",
    "ensure_integration_topics",
    "generate_kek",
    "integration_topic_specs",
    "parse_api_key",
    "resolve_operator",
    "summarise",
    "verify_api_key",
]
