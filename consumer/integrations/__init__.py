"""Merchant integrations: settings per merchant, encrypted API keys, the live table."""

from consumer.integrations.merchant import MerchantSettings

__all__ = ["MerchantSettings"]
