"""Each client role's configuration: settings first, then defaults, extras, pinned values."""

from __future__ import annotations

import pytest

from consumer.kafka.config import build_config
from consumer.settings import KafkaSettings


def test_extra_overrides_defaults_but_not_pinned() -> None:
    conf = build_config(
        KafkaSettings(bootstrap_servers="b:1"),
        defaults={"linger.ms": 5},
        pinned={"enable.idempotence": True},
        extra={"linger.ms": 50},
    )

    assert conf["bootstrap.servers"] == "b:1"
    assert conf["linger.ms"] == 50
    assert conf["enable.idempotence"] is True


def test_extra_changing_pinned_property_is_refused() -> None:
    with pytest.raises(ValueError, match=r"isolation\.level is fixed"):
        build_config(
            KafkaSettings(),
            defaults={},
            pinned={"isolation.level": "read_committed"},
            extra={"isolation.level": "read_uncommitted"},
        )


def test_extra_repeating_pinned_value_is_accepted() -> None:
    conf = build_config(
        KafkaSettings(),
        defaults={},
        pinned={"enable.auto.commit": False},
        extra={"enable.auto.commit": "false"},
    )

    assert conf["enable.auto.commit"] is False


def test_consumer_refuses_auto_commit() -> None:
    from consumer.kafka import KafkaConsumer

    with pytest.raises(ValueError, match=r"enable\.auto\.commit"):
        KafkaConsumer(KafkaSettings(), "g", extra={"enable.auto.commit": True})
