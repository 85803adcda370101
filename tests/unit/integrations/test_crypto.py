"""Envelope encryption and the keyring: round trips, tampering, configuration, rotation."""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from consumer.errors import ConfigError
from consumer.integrations import DecryptError, EncryptedSecret, Keyring, UnknownKeyError
from consumer.integrations.crypto import generate_kek
from consumer.settings import IntegrationsSettings

API_KEY = SecretStr("pk_" + "a1B2c3D4e5" * 4)


def raw_key() -> bytes:
    return os.urandom(32)


def test_keyring_encrypt_then_decrypt_returns_plaintext() -> None:
    keyring = Keyring({"k1": raw_key()})
    secret = keyring.encrypt(API_KEY, merchant_id="m1")
    assert secret.kek_id == "k1"
    assert len(secret.nonce) == 12
    assert len(secret.wrapped_data_key) == 12 + 32 + 16
    assert keyring.decrypt(secret, merchant_id="m1") == API_KEY


def test_keyring_encrypt_twice_gives_different_envelopes() -> None:
    keyring = Keyring({"k1": raw_key()})
    first = keyring.encrypt(API_KEY, merchant_id="m1")
    second = keyring.encrypt(API_KEY, merchant_id="m1")
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_data_key != second.wrapped_data_key


def test_envelope_does_not_contain_plaintext() -> None:
    secret = Keyring({"k1": raw_key()}).encrypt(API_KEY, merchant_id="m1")
    blob = secret.wrapped_data_key + secret.nonce + secret.ciphertext
    assert API_KEY.get_secret_value().encode() not in blob
    assert API_KEY.get_secret_value() not in repr(secret)


def test_decrypt_for_another_merchant_fails() -> None:
    """merchant_id is bound as associated data: a record moved to another merchant fails."""
    keyring = Keyring({"k1": raw_key()})
    secret = keyring.encrypt(API_KEY, merchant_id="m1")
    with pytest.raises(DecryptError, match="m2"):
        keyring.decrypt(secret, merchant_id="m2")


@pytest.mark.parametrize("field", ["wrapped_data_key", "nonce", "ciphertext"])
def test_decrypt_tampered_envelope_fails_without_secret_in_message(field: str) -> None:
    keyring = Keyring({"k1": raw_key()})
    secret = keyring.encrypt(API_KEY, merchant_id="m1")
    value = bytearray(getattr(secret, field))
    value[-1] ^= 0x01
    changes: dict[str, Any] = {field: bytes(value)}
    tampered = dataclasses.replace(secret, **changes)
    with pytest.raises(DecryptError) as caught:
        keyring.decrypt(tampered, merchant_id="m1")
    assert API_KEY.get_secret_value() not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_decrypt_relabelled_kek_id_fails() -> None:
    keyring = Keyring({"k1": raw_key(), "k2": raw_key()}, primary_key_id="k1")
    secret = keyring.encrypt(API_KEY, merchant_id="m1")
    with pytest.raises(DecryptError):
        keyring.decrypt(dataclasses.replace(secret, kek_id="k2"), merchant_id="m1")


def test_decrypt_truncated_envelope_is_malformed() -> None:
    keyring = Keyring({"k1": raw_key()})
    secret = EncryptedSecret("k1", b"short", b"n" * 12, b"c" * 20)
    with pytest.raises(DecryptError, match="malformed"):
        keyring.decrypt(secret, merchant_id="m1")


def test_decrypt_unknown_kek_raises_unknown_key_error() -> None:
    secret = Keyring({"k1": raw_key()}).encrypt(API_KEY, merchant_id="m1")
    with pytest.raises(UnknownKeyError, match="'k1' is not configured") as caught:
        Keyring({"k2": raw_key()}).decrypt(secret, merchant_id="m1")
    assert caught.value.reason == "unknown_key_id"


def test_keyring_primary_defaults_to_greatest_id_in_natural_order() -> None:
    keyring = Keyring({"k9": raw_key(), "k10": raw_key(), "k2": raw_key()})
    assert keyring.primary_key_id == "k10"
    assert keyring.key_ids == ("k2", "k9", "k10")


def test_keyring_explicit_primary_is_used_for_writes() -> None:
    keyring = Keyring({"k1": raw_key(), "k2": raw_key()}, primary_key_id="k1")
    assert keyring.encrypt(API_KEY, merchant_id="m").kek_id == "k1"


def test_keyring_unknown_primary_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PRIMARY_KEY_ID"):
        Keyring({"k1": raw_key()}, primary_key_id="k3")


def test_keyring_without_keys_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="KEY_ENCRYPTION_KEYS"):
        Keyring.from_settings(IntegrationsSettings())


def test_keyring_repr_shows_ids_only() -> None:
    raw = raw_key()
    text = repr(Keyring({"k1": raw}))
    assert "k1" in text
    assert base64.b64encode(raw).decode() not in text


def test_keyring_from_settings_dict() -> None:
    settings = IntegrationsSettings(key_encryption_keys={"k1": SecretStr(generate_kek())})
    keyring = Keyring.from_settings(settings)
    assert keyring.key_ids == ("k1",)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("not base64!!", "not valid base64"), (base64.b64encode(b"x" * 16).decode(), "32 bytes")],
)
def test_keyring_bad_key_names_setting_not_value(value: str, problem: str) -> None:
    settings = IntegrationsSettings(key_encryption_keys={"k1": SecretStr(value)})
    with pytest.raises(ConfigError) as caught:
        Keyring.from_settings(settings)
    message = str(caught.value)
    assert "KLAVIYO_CONSUMER_INTEGRATIONS__KEY_ENCRYPTION_KEYS[k1]" in message
    assert problem in message
    assert value not in message


def test_keyring_bad_key_id_is_a_config_error() -> None:
    settings = IntegrationsSettings(key_encryption_keys={"k 1/x": SecretStr(generate_kek())})
    with pytest.raises(ConfigError, match="key id"):
        Keyring.from_settings(settings)


def test_keyring_from_directory_skips_hidden_entries(tmp_path: Path) -> None:
    """Kubernetes secret volumes hold ``..data`` entries next to the key files."""
    (tmp_path / "k1").write_text(generate_kek() + "\n")
    (tmp_path / "k2").write_text(generate_kek())
    (tmp_path / "..data").mkdir()
    (tmp_path / ".hidden").write_text("garbage")
    keyring = Keyring.from_settings(IntegrationsSettings(key_encryption_keys_dir=tmp_path))
    assert keyring.key_ids == ("k1", "k2")
    assert keyring.primary_key_id == "k2"


def test_keyring_directory_bad_file_names_file(tmp_path: Path) -> None:
    (tmp_path / "k1").write_text("c2hvcnQ=")
    with pytest.raises(ConfigError, match="KEY_ENCRYPTION_KEYS_DIR: file 'k1'"):
        Keyring.from_settings(IntegrationsSettings(key_encryption_keys_dir=tmp_path))


def test_keyring_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    settings = IntegrationsSettings(key_encryption_keys_dir=tmp_path / "nope")
    with pytest.raises(ConfigError, match="not a directory"):
        Keyring.from_settings(settings)


def test_keyring_directory_and_dict_conflict_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "k1").write_text(generate_kek())
    settings = IntegrationsSettings(
        key_encryption_keys={"k1": SecretStr(generate_kek())}, key_encryption_keys_dir=tmp_path
    )
    with pytest.raises(ConfigError, match="differs"):
        Keyring.from_settings(settings)


def test_rotation_old_records_readable_then_reencrypted_then_old_key_removed() -> None:
    k1, k2 = raw_key(), raw_key()
    written = Keyring({"k1": k1}).encrypt(API_KEY, merchant_id="m1")

    both = Keyring({"k1": k1, "k2": k2})
    assert both.primary_key_id == "k2"
    assert both.decrypt(written, merchant_id="m1") == API_KEY
    assert both.needs_rotation(written)

    rotated = both.reencrypt(written, merchant_id="m1")
    assert rotated.kek_id == "k2"
    assert not both.needs_rotation(rotated)

    only_new = Keyring({"k2": k2})
    assert only_new.decrypt(rotated, merchant_id="m1") == API_KEY
    with pytest.raises(UnknownKeyError):
        only_new.decrypt(written, merchant_id="m1")
