"""API key format check and fingerprint."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from consumer.integrations import ApiKeyFormatError, api_key_fingerprint, parse_api_key

KEY = "pk_0123456789abcdefABCDEF0123456789ab"


def test_parse_api_key_strips_whitespace() -> None:
    assert parse_api_key(f"  {KEY}\n").get_secret_value() == KEY


@pytest.mark.parametrize(
    "text",
    ["", "pk_", "pk_short", "sk_0123456789abcdef", KEY + "-x", "pk_0123456789 abcdef", KEY * 10],
)
def test_parse_api_key_rejects_bad_format_without_echoing(text: str) -> None:
    with pytest.raises(ApiKeyFormatError) as caught:
        parse_api_key(text)
    if len(text) > 3:
        assert text.strip() not in str(caught.value)


def test_fingerprint_is_stable_short_and_reveals_no_key_characters() -> None:
    fingerprint = api_key_fingerprint(SecretStr(KEY))
    assert fingerprint == api_key_fingerprint(SecretStr(KEY))
    assert fingerprint.startswith("sha256:")
    assert len(fingerprint) == len("sha256:") + 12
    assert KEY[-4:] not in fingerprint
    assert fingerprint != api_key_fingerprint(SecretStr(KEY[:-1] + "c"))
