"""The embedded local stack: a Kafka broker, the Klaviyo sandbox, merchants, settings.

``make run`` uses it to show the service working end to end; the end-to-end tests use the same
pieces (with their own broker fixture), so what the demo shows is what the tests prove.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from consumer.integrations.audit import AuditAction, audit_change
from consumer.integrations.codec import IntegrationRecord
from consumer.integrations.crypto import Keyring, generate_kek
from consumer.integrations.publish import IntegrationPublisher, ensure_integration_topics
from consumer.merchant import MerchantSettings
from consumer.sandbox import Sandbox
from consumer.settings import Settings

__all__ = ["DemoMerchant", "demo_merchants", "local_settings", "merchant_settings", "onboard"]


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    """A merchant of the local stack and how its integration is configured."""

    merchant_id: str
    api_key: str | None
    """None = the merchant has no integration (its traffic is counted as skipped)."""
    order_tracking: bool = True
    marketing: bool = True


def _demo_key(merchant_id: str) -> str:
    """A stable, random-looking private key (random enough that no fragment of it appears in
    ordinary output, which the secret-leak tests rely on)."""
    digest = base64.b64encode(hashlib.sha256(merchant_id.encode()).digest()).decode()
    return "pk_" + "".join(c for c in digest if c.isalnum())[:34]


def demo_merchants() -> list[DemoMerchant]:
    """Four merchants: two fully integrated, one without tracking/marketing, one without any."""
    return [
        DemoMerchant("merchant-1", _demo_key("merchant-1")),
        DemoMerchant("merchant-2", _demo_key("merchant-2")),
        DemoMerchant("merchant-3", _demo_key("merchant-3"), False, False),
        DemoMerchant("merchant-4", None),
    ]


def merchant_settings(merchant: DemoMerchant) -> MerchantSettings:
    """The integration a demo merchant gets (it must have a key)."""
    if merchant.api_key is None:
        raise ValueError(f"{merchant.merchant_id} has no integration")
    return MerchantSettings(
        merchant_id=merchant.merchant_id,
        api_key=SecretStr(merchant.api_key),
        order_tracking_enabled=merchant.order_tracking,
        marketing_enabled=merchant.marketing,
        email_list_id=f"{merchant.merchant_id}-email-list",
        sms_list_id=f"{merchant.merchant_id}-sms-list",
        tracking_page_url_template="https://track.example.com/{order_name}?t={tracking_number}",
    )


def local_settings(
    bootstrap_servers: str, klaviyo_url: str, kek: str | None = None, **sections: Any
) -> Settings:
    """Settings for a local run: broker, sandbox, a generated key-encryption key."""
    return Settings(
        kafka={"bootstrap_servers": bootstrap_servers, **sections.pop("kafka", {})},
        klaviyo={"base_url": klaviyo_url, **sections.pop("klaviyo", {})},
        integrations={"key_encryption_keys": {"local-1": kek or generate_kek()}},
        **sections,
    )


def onboard(settings: Settings, sandbox: Sandbox, merchants: Sequence[DemoMerchant]) -> None:
    """Create each merchant's Klaviyo account in the sandbox and publish its integration."""
    ensure_integration_topics(settings.kafka, settings.topics)
    keyring = Keyring.from_settings(settings.integrations)
    now = datetime.now(UTC)
    changes = []
    for merchant in merchants:
        if merchant.api_key is None:
            continue
        sandbox.add_account(merchant.merchant_id, merchant.api_key)
        wanted = merchant_settings(merchant)
        sandbox.add_lists(
            merchant.merchant_id, *(i for i in (wanted.email_list_id, wanted.sms_list_id) if i)
        )
        record = IntegrationRecord.from_settings(
            wanted, keyring, updated_by="devstack", updated_at=now
        )
        changes.append((record, audit_change(AuditAction.SET, None, record, key_change=None)))
    with IntegrationPublisher(settings.kafka, settings.topics) as publisher:
        publisher.publish(changes)
