"""``preview --merchant``: a merchant's real settings from the integrations topic."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from consumer.integrations import IntegrationRecord, Keyring, generate_kek
from consumer.integrations.codec import IntegrationCodec
from consumer.merchant import MerchantSettings
from consumer.paths import schemas_dir
from tests.integration.cli.test_preview_topic import run_preview
from tests.integration.conftest import TopicFactory

KEY = "pk_previewMustNeverShowThis0001"
EXAMPLES = schemas_dir() / "examples"
NOW = "2026-11-20T00:00:00Z"


def event_metrics(report: dict[str, Any]) -> list[str]:
    """Metric names of every event in the report's requests."""
    names = []
    for requests in report["requests"].values():
        for request in requests:
            attributes = request["body"]["data"]["attributes"]
            for entry in attributes.get("events-bulk-create", {}).get("data", []):
                for event in entry["attributes"]["events"]["data"]:
                    names.append(event["attributes"]["metric"]["data"]["attributes"]["name"])
    return names


@pytest.fixture
def integrations_topic(
    monkeypatch: pytest.MonkeyPatch,
    bootstrap_servers: str,
    topic_factory: TopicFactory,
    produce: Callable[..., None],
) -> str:
    """An integrations topic where merchant-acme has order tracking off (and KEKs are unset)."""
    topic = topic_factory(partitions=2, prefix="integrations")
    keyring = Keyring({"k1": base64.b64decode(generate_kek())})
    codec = IntegrationCodec()
    now = datetime.now(UTC).replace(microsecond=0)

    def value(**fields: Any) -> bytes:
        settings = MerchantSettings(merchant_id="merchant-acme", api_key=SecretStr(KEY), **fields)
        record = IntegrationRecord.from_settings(
            settings, keyring, updated_by="ops", updated_at=now
        )
        return codec.encode(record)

    produce(
        topic,
        [
            (b"merchant-acme", value(order_tracking_enabled=True)),  # superseded below
            (b"merchant-bolt", b"not an integration record"),
            (b"merchant-acme", value(order_tracking_enabled=False, marketing_enabled=False)),
        ],
    )
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", bootstrap_servers)
    monkeypatch.setenv("KLAVIYO_CONSUMER_TOPICS__INTEGRATIONS", topic)
    monkeypatch.delenv("KLAVIYO_CONSUMER_INTEGRATIONS__KEY_ENCRYPTION_KEYS", raising=False)
    return topic


def test_preview_merchant_with_tracking_off_shows_no_tracking_and_says_why(
    capsys: pytest.CaptureFixture[str], integrations_topic: str
) -> None:
    orders, returns = str(EXAMPLES / "orders.json"), str(EXAMPLES / "returns.json")
    code, report = run_preview(capsys, orders, returns, "--merchant", "merchant-acme", "--now", NOW)
    assert code == 0
    metrics = event_metrics(report)
    assert "Order Tracking Update" not in metrics
    assert "Return Created" in metrics  # returns do not need the tracking product
    assert {s["reason"] for s in report["skips"]} >= {"order_tracking_disabled"}
    settings = report["settings"]
    assert settings["merchant"] == "merchant-acme"
    assert integrations_topic in settings["source"]
    assert settings["values"]["order_tracking_enabled"] is False
    assert report["counts"]["other_merchants_left_out"] == 1  # merchant-bolt's return
    assert list(report["requests"]) == ["merchant-acme"]
    assert KEY not in capsys.readouterr().out + str(report)


def test_preview_without_merchant_says_settings_were_assumed(
    capsys: pytest.CaptureFixture[str], integrations_topic: str
) -> None:
    code, report = run_preview(capsys, str(EXAMPLES / "orders.json"), "--now", NOW)
    assert code == 0
    assert "Order Tracking Update" in event_metrics(report)
    assert report["settings"]["source"].startswith("assumed")
    assert report["settings"]["values"]["order_tracking_enabled"] is True


def test_preview_merchant_without_integration_is_skipped_as_the_service_would(
    capsys: pytest.CaptureFixture[str], integrations_topic: str
) -> None:
    """merchant-bolt's only record on the topic does not decode: it has no integration."""
    returns = str(EXAMPLES / "returns.json")
    code, report = run_preview(capsys, returns, "--merchant", "merchant-bolt", "--now", NOW)
    assert code == 0
    assert report["requests"] == {}
    assert [s["reason"] for s in report["skips"]] == ["merchant_not_integrated"]
    assert "no integration" in report["settings"]["source"]
