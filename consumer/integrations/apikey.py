"""Klaviyo private API keys as operators hand them over: format check and fingerprint.

Nothing here returns or prints characters of a key: the fingerprint is a short hash, so an
operator can tell two keys apart (or match one against Klaviyo's UI) without seeing either.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import SecretStr

from consumer.integrations.errors import ApiKeyFormatError

__all__ = ["api_key_fingerprint", "parse_api_key"]

_FORMAT = re.compile(r"pk_[A-Za-z0-9]{8,200}")
# Domain-separates our fingerprints from any other SHA-256 of the same key.
_FINGERPRINT_CONTEXT = b"klaviyo-consumer/api-key-fingerprint/v1\x00"
_FINGERPRINT_HEX = 12


def parse_api_key(text: str) -> SecretStr:
    """A private key read from a file or stdin, surrounding whitespace removed.

    Raises:
        ApiKeyFormatError: not ``pk_`` followed by 8-200 letters and digits. The message
            gives only the length and what is wrong, never the text.
    """
    candidate = text.strip()
    if not _FORMAT.fullmatch(candidate):
        problem = (
            "does not start with 'pk_'"
            if not candidate.startswith("pk_")
            else "must be 'pk_' followed by 8-200 letters and digits"
        )
        raise ApiKeyFormatError(f"API key {problem} (got {len(candidate)} characters)")
    return SecretStr(candidate)


def api_key_fingerprint(api_key: SecretStr) -> str:
    """``sha256:`` + 12 hex digits of a domain-separated SHA-256 of the key.

    Private keys are long random strings, so 48 bits of a hash reveal nothing usable about
    them while still telling keys apart at a glance.
    """
    digest = hashlib.sha256(_FINGERPRINT_CONTEXT + api_key.get_secret_value().encode("utf-8"))
    return "sha256:" + digest.hexdigest()[:_FINGERPRINT_HEX]
