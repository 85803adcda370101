"""The root of every error this service raises on purpose.

Each package has its own ``errors.py`` with subclasses that carry policy (a dead-letter
``reason``, ``retriable``, ``parks_merchant``), so loops ask the error what to do.
"""

__all__ = ["ConfigError", "ConsumerError"]


class ConsumerError(Exception):
    """Base class of all klaviyo-consumer errors."""


class ConfigError(ConsumerError):
    """A setting is missing or invalid; raised at start, names the setting."""
