"""Envelope encryption of merchants' API keys (AES-256-GCM) and the keyring of KEKs.

Format of one ``EncryptedSecret`` (the Avro record of the same name):

- A fresh random 32-byte *data key* encrypts the API key: ``ciphertext`` =
  AES-256-GCM(data key, ``nonce``, API key UTF-8, associated data = merchant id UTF-8), tag
  included. Binding the merchant id means a record copied under another merchant does not
  decrypt, so one merchant's key can never be used for another.
- A *key-encryption key* (KEK) named ``kek_id`` wraps the data key: ``wrapped_data_key`` =
  12-byte nonce + AES-256-GCM(KEK, that nonce, data key, associated data = ``kek_id``).
  Binding the id means a relabelled record fails instead of being tried under another key.

KEKs come from settings (id → base64 of 32 bytes) or from a directory of key files; new
writes use the primary KEK, and records wrapped by any other configured KEK stay readable,
which is what makes rotation possible without downtime: add the new KEK everywhere, make it
primary, run ``integrations rotate``, then remove the old KEK.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from consumer.errors import ConfigError
from consumer.integrations.errors import DecryptError, UnknownKeyError
from consumer.settings import ENV_PREFIX, IntegrationsSettings

__all__ = ["EncryptedSecret", "Keyring", "generate_kek"]

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + _TAG_BYTES
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEYS_SETTING = f"{ENV_PREFIX}INTEGRATIONS__KEY_ENCRYPTION_KEYS"
_DIR_SETTING = f"{ENV_PREFIX}INTEGRATIONS__KEY_ENCRYPTION_KEYS_DIR"
_PRIMARY_SETTING = f"{ENV_PREFIX}INTEGRATIONS__PRIMARY_KEY_ID"


@dataclass(frozen=True, slots=True)
class EncryptedSecret:
    """One envelope-encrypted secret; safe to store and to print (no plaintext inside)."""

    kek_id: str
    wrapped_data_key: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def generate_kek() -> str:
    """A new random KEK, base64-encoded as the settings and key files expect it."""
    return base64.b64encode(AESGCM.generate_key(bit_length=KEY_BYTES * 8)).decode("ascii")


def _natural(key_id: str) -> tuple[tuple[int, int | str], ...]:
    # "greatest id" must put k10 after k9, or the default primary would silently go back in
    # time once ids reach two digits.
    parts = re.split(r"(\d+)", key_id)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def _parse_kek(text: str, where: str) -> bytes:
    """Base64 text → 32 key bytes; the error names the setting, never the value."""
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{where}: must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _check_key_id(key_id: str, where: str) -> None:
    if not _KEY_ID.match(key_id):
        raise ConfigError(f"{where}: key id {key_id!r} must be 1-64 of A-Z a-z 0-9 . _ -")


def _keys_from_dir(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        raise ConfigError(f"{_DIR_SETTING}: {str(directory)!r} is not a directory")
    keys: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        # Kubernetes secret volumes hold "..data" and "..2024_…" entries next to the key
        # files (symlinks into them); hidden names are never key ids.
        if path.name.startswith(".") or not path.is_file():
            continue
        where = f"{_DIR_SETTING}: file {path.name!r}"
        _check_key_id(path.name, where)
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read ({type(exc).__name__})") from None
        keys[path.name] = _parse_kek(text, where)
    return keys


class Keyring:
    """The configured KEKs; encrypts under the primary one, decrypts under any of them.

    Args:
        keys: KEK id → 32 raw key bytes.
        primary_key_id: The KEK for new writes; default = the greatest id (natural order,
            so ``k10`` > ``k9``).

    Raises:
        ConfigError: no keys, a key of the wrong size, or an unknown primary id.
    """

    def __init__(self, keys: Mapping[str, bytes], primary_key_id: str | None = None) -> None:
        if not keys:
            raise ConfigError(
                f"{_KEYS_SETTING}: no key-encryption key configured (set it or {_DIR_SETTING})"
            )
        for key_id, raw in keys.items():
            _check_key_id(key_id, _KEYS_SETTING)
            if len(raw) != KEY_BYTES:
                raise ConfigError(f"{_KEYS_SETTING}[{key_id}]: must be {KEY_BYTES} bytes")
        if primary_key_id is not None and primary_key_id not in keys:
            raise ConfigError(
                f"{_PRIMARY_SETTING}: {primary_key_id!r} is not among the configured key ids "
                f"{sorted(keys)}"
            )
        self._aead = {key_id: AESGCM(raw) for key_id, raw in keys.items()}
        self.primary_key_id: str = primary_key_id or max(keys, key=_natural)
        """The KEK id new writes are wrapped with."""

    @classmethod
    def from_settings(cls, settings: IntegrationsSettings) -> Keyring:
        """Keys from ``key_encryption_keys`` and ``key_encryption_keys_dir`` (both may be used).

        Raises:
            ConfigError: naming the setting (and key id) that is wrong; never the key.
        """
        keys: dict[str, bytes] = {}
        for key_id, secret in settings.key_encryption_keys.items():
            where = f"{_KEYS_SETTING}[{key_id}]"
            _check_key_id(key_id, where)
            keys[key_id] = _parse_kek(secret.get_secret_value(), where)
        if settings.key_encryption_keys_dir is not None:
            for key_id, raw in _keys_from_dir(settings.key_encryption_keys_dir).items():
                if key_id in keys and keys[key_id] != raw:
                    raise ConfigError(
                        f"{_DIR_SETTING}: key {key_id!r} differs from the one in {_KEYS_SETTING}"
                    )
                keys[key_id] = raw
        return cls(keys, settings.primary_key_id)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured KEK ids, in natural order."""
        return tuple(sorted(self._aead, key=_natural))

    def __repr__(self) -> str:
        return f"Keyring(key_ids={list(self.key_ids)}, primary={self.primary_key_id!r})"

    def encrypt(self, plaintext: SecretStr, *, merchant_id: str) -> EncryptedSecret:
        """Encrypt a secret for ``merchant_id`` under a fresh data key and the primary KEK."""
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(
            nonce, plaintext.get_secret_value().encode("utf-8"), merchant_id.encode("utf-8")
        )
        wrap_nonce = os.urandom(NONCE_BYTES)
        kek_id = self.primary_key_id
        wrapped = wrap_nonce + self._aead[kek_id].encrypt(
            wrap_nonce, data_key, kek_id.encode("utf-8")
        )
        return EncryptedSecret(kek_id, wrapped, nonce, ciphertext)

    def decrypt(self, secret: EncryptedSecret, *, merchant_id: str) -> SecretStr:
        """The plaintext of ``secret``, which must have been encrypted for ``merchant_id``.

        Raises:
            UnknownKeyError: its KEK is not configured here.
            DecryptError: malformed, tampered, or encrypted for another merchant.
        """
        kek = self._aead.get(secret.kek_id)
        if kek is None:
            raise UnknownKeyError(
                f"api_key of merchant {merchant_id!r}: key-encryption key {secret.kek_id!r} "
                f"is not configured (configured: {list(self.key_ids)})"
            )
        if (
            len(secret.wrapped_data_key) != _WRAPPED_BYTES
            or len(secret.nonce) != NONCE_BYTES
            or len(secret.ciphertext) < _TAG_BYTES
        ):
            raise DecryptError(f"api_key of merchant {merchant_id!r}: malformed envelope")
        wrap_nonce = secret.wrapped_data_key[:NONCE_BYTES]
        try:
            data_key = kek.decrypt(
                wrap_nonce, secret.wrapped_data_key[NONCE_BYTES:], secret.kek_id.encode("utf-8")
            )
        except InvalidTag:
            raise DecryptError(
                f"api_key of merchant {merchant_id!r}: data key does not authenticate under "
                f"key-encryption key {secret.kek_id!r} (wrong key or tampered)"
            ) from None
        try:
            plaintext = AESGCM(data_key).decrypt(
                secret.nonce, secret.ciphertext, merchant_id.encode("utf-8")
            )
        except InvalidTag:
            raise DecryptError(
                f"api_key of merchant {merchant_id!r}: ciphertext does not authenticate "
                "(tampered, or written for another merchant)"
            ) from None
        try:
            return SecretStr(plaintext.decode("utf-8"))
        except UnicodeDecodeError:
            raise DecryptError(f"api_key of merchant {merchant_id!r}: not UTF-8") from None

    def needs_rotation(self, secret: EncryptedSecret) -> bool:
        """True when ``secret`` is wrapped by a KEK other than the primary one."""
        return secret.kek_id != self.primary_key_id

    def reencrypt(self, secret: EncryptedSecret, *, merchant_id: str) -> EncryptedSecret:
        """Decrypt ``secret`` and encrypt it again under a fresh data key and the primary KEK.

        A fresh data key (rather than re-wrapping the old one) leaves the new record with
        nothing in common with the old one, so a retired KEK opens only records written
        before the rotation.

        Raises:
            DecryptError: as ``decrypt``.
        """
        return self.encrypt(self.decrypt(secret, merchant_id=merchant_id), merchant_id=merchant_id)
