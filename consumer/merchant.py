"""A merchant's Klaviyo integration as the rest of the service sees it (key decrypted).

The non-secret settings are declared once, in ``MerchantOptions``; both this view and the
record on the integrations topic (``integrations.codec.IntegrationRecord``) extend it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

__all__ = ["MerchantOptions", "MerchantSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MerchantOptions:
    """The non-secret per-merchant settings, in the integrations schema's order."""

    enabled: bool = True
    order_tracking_enabled: bool = False
    marketing_enabled: bool = False
    email_list_id: str | None = None
    sms_list_id: str | None = None
    tracking_page_url_template: str | None = None
    default_currency: str = "USD"
    default_country: str = "US"
    stall_threshold_hours: int | None = None

    @staticmethod
    def names() -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(MerchantOptions))

    @staticmethod
    def defaults() -> dict[str, Any]:
        """Each option's default (a new merchant's settings)."""
        return {f.name: f.default for f in dataclasses.fields(MerchantOptions)}

    def options(self) -> dict[str, Any]:
        """This object's options as a dict."""
        return {name: getattr(self, name) for name in MerchantOptions.names()}


@dataclass(frozen=True, slots=True, kw_only=True)
class MerchantSettings(MerchantOptions):
    """Per-merchant settings from the klaviyo-integrations topic.

    ``api_key`` is a ``SecretStr`` so no repr, log line or exception text can show it.
    """

    merchant_id: str
    api_key: SecretStr = field(repr=False)
