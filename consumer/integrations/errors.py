"""Errors of the merchant integrations package.

No message built here ever contains an API key or a key-encryption key: messages name the
merchant, the key id and what went wrong, nothing more.
"""

from __future__ import annotations

from consumer.errors import ConsumerError

__all__ = [
    "ApiKeyFormatError",
    "DecryptError",
    "IntegrationRecordError",
    "IntegrationsError",
    "UnknownKeyError",
]


class IntegrationsError(ConsumerError):
    """Root of the integrations package's errors."""

    reason = "integrations_error"


class DecryptError(IntegrationsError):
    """An encrypted API key cannot be decrypted (tampered, wrong merchant, wrong key)."""

    reason = "undecryptable"


class UnknownKeyError(DecryptError):
    """The key-encryption key that wrapped the secret is not configured here."""

    reason = "unknown_key_id"


class IntegrationRecordError(IntegrationsError):
    """A record on the integrations topic is not a valid integration (after Avro decoding)."""

    reason = "invalid_record"


class ApiKeyFormatError(IntegrationsError):
    """The text given as an API key is not a Klaviyo private key (``pk_`` + alphanumerics)."""

    reason = "invalid_api_key_format"
