"""Integration records ↔ Avro single-object bytes ↔ MerchantSettings."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import SecretStr

from consumer.decode import DecodeError
from consumer.decode.framing import SINGLE_OBJECT_MAGIC
from consumer.integrations import (
    DecryptError,
    IntegrationCodec,
    IntegrationRecord,
    Keyring,
    MerchantSettings,
)
from consumer.merchant import MerchantOptions
from consumer.paths import schemas_dir
from tests.unit.integrations.conftest import NOW, PLAINTEXT_KEY

CODEC = IntegrationCodec()


def test_codec_roundtrip_keeps_every_field(record: IntegrationRecord) -> None:
    payload = CODEC.encode(record)
    assert payload.startswith(SINGLE_OBJECT_MAGIC)
    assert CODEC.decode(payload) == record


def test_codec_bytes_do_not_contain_plaintext_key(record: IntegrationRecord) -> None:
    assert PLAINTEXT_KEY.encode() not in CODEC.encode(record)


def test_codec_decoded_timestamp_is_utc_millis(record: IntegrationRecord) -> None:
    decoded = CODEC.decode(CODEC.encode(record))
    assert decoded.updated_at == NOW
    assert decoded.updated_at.utcoffset() is not None


def test_record_to_settings_decrypts(
    record: IntegrationRecord, settings: MerchantSettings, keyring: Keyring
) -> None:
    assert CODEC.decode(CODEC.encode(record)).to_settings(keyring) == settings


def test_record_to_settings_with_wrong_keyring_raises(record: IntegrationRecord) -> None:
    with pytest.raises(DecryptError):
        record.to_settings(Keyring({"k1": os.urandom(32)}))


@pytest.mark.parametrize("payload", [b"", b"\x00\x00", b"garbage", SINGLE_OBJECT_MAGIC + b"x" * 9])
def test_codec_decode_garbage_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(payload)


def test_codec_decode_truncated_record_raises_decode_error(record: IntegrationRecord) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(CODEC.encode(record)[:-5])


def test_default_values_match_merchant_settings_defaults() -> None:
    defaults = IntegrationRecord.default_values()
    merchant = MerchantSettings(merchant_id="m", api_key=SecretStr("x"))
    assert defaults == {name: getattr(merchant, name) for name in defaults}


def test_settings_fields_are_the_schemas_non_secret_fields_with_its_defaults() -> None:
    """``MerchantOptions`` is the one declaration; it must match the Avro contract."""
    schema = json.loads((schemas_dir() / "klaviyo-integrations" / "v1.avsc").read_text())
    identity = {"merchant_id", "api_key", "updated_at", "updated_by"}
    fields = [f for f in schema["fields"] if f["name"] not in identity]
    assert MerchantOptions.names() == tuple(f["name"] for f in fields)
    defaults = MerchantOptions.defaults()
    assert all(defaults[f["name"]] == f["default"] for f in fields if "default" in f)
