"""Shared pieces for the integrations unit tests: a keyring and a sample record."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from consumer.integrations import IntegrationRecord, Keyring, MerchantSettings

PLAINTEXT_KEY = "pk_unitTestKey0123456789abcdefXYZ"
NOW = datetime(2026, 7, 20, 12, 30, 15, 123000, tzinfo=UTC)


@pytest.fixture
def keyring() -> Keyring:
    """A keyring with one fresh KEK, ``k1``."""
    return Keyring({"k1": os.urandom(32)})


@pytest.fixture
def settings() -> MerchantSettings:
    """A merchant with every field set away from its default."""
    return MerchantSettings(
        merchant_id="m1",
        api_key=SecretStr(PLAINTEXT_KEY),
        enabled=True,
        order_tracking_enabled=True,
        marketing_enabled=True,
        email_list_id="LIST1",
        sms_list_id="LIST2",
        tracking_page_url_template="https://track.example/{order_name}",
        default_currency="EUR",
        default_country="DE",
        stall_threshold_hours=48,
    )


@pytest.fixture
def record(settings: MerchantSettings, keyring: Keyring) -> IntegrationRecord:
    """``settings`` encrypted under ``keyring``, written by alice at ``NOW``."""
    return IntegrationRecord.from_settings(settings, keyring, updated_by="alice", updated_at=NOW)
