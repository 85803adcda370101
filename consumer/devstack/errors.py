"""Errors of the local development stack (the Kafka broker the tests and demos run)."""

from consumer.errors import ConsumerError

__all__ = ["BrokerFetchError", "BrokerStartError", "DevstackError"]


class DevstackError(ConsumerError):
    """Base class of the errors raised by ``consumer.devstack``."""


class BrokerFetchError(DevstackError):
    """The broker's jars could not be obtained (no Maven, no network, an unknown version)."""


class BrokerStartError(DevstackError):
    """The broker did not come up; the message ends with the tail of its log."""
