"""librdkafka configuration of each client role, built in one place.

Each role starts from ``KafkaSettings.to_librdkafka()`` (connection and security), adds its
defaults, then the caller's extra properties. Properties the facade's guarantees rest on are
*pinned*: overriding one raises ``ValueError`` instead of silently weakening a guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import confluent_kafka

from consumer.settings import KafkaSettings

__all__ = ["ConfigValue", "build_config"]

ConfigValue = str | int | float | bool
"""A librdkafka property value."""

_LIBRDKAFKA_LOGGER = logging.getLogger("consumer.kafka.librdkafka")


def build_config(
    settings: KafkaSettings,
    *,
    defaults: Mapping[str, ConfigValue],
    pinned: Mapping[str, ConfigValue],
    extra: Mapping[str, ConfigValue] | None,
    error_cb: Callable[[confluent_kafka.KafkaError], None] | None = None,
) -> dict[str, Any]:
    """The full configuration dict for one client.

    Args:
        settings: Connection settings shared by every client.
        defaults: Role defaults; ``extra`` may override them.
        pinned: Role properties that ``extra`` must not change.
        extra: Caller's properties (tests shorten timeouts with these).
        error_cb: Receives librdkafka's global errors (default: logged).

    Raises:
        ValueError: ``extra`` changes a pinned property.
    """
    extra = dict(extra or {})
    for key, value in extra.items():
        if key in pinned and str(pinned[key]).lower() != str(value).lower():
            raise ValueError(f"{key} is fixed to {pinned[key]!r} by this client role")
    conf: dict[str, Any] = dict(settings.to_librdkafka())
    conf.update(defaults)
    conf.update(extra)
    conf.update(pinned)
    conf["logger"] = _LIBRDKAFKA_LOGGER
    conf["error_cb"] = error_cb or log_client_error
    return conf


def log_client_error(error: confluent_kafka.KafkaError) -> None:
    """Default ``error_cb``: librdkafka recovers from most of these on its own, so log them."""
    level = logging.ERROR if error.fatal() else logging.WARNING
    _LIBRDKAFKA_LOGGER.log(level, "kafka client error name=%s reason=%s", error.name(), error.str())
