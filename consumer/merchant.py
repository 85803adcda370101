"""A merchant's Klaviyo integration as the rest of the service sees it (key decrypted)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

__all__ = ["MerchantSettings"]


@dataclass(frozen=True, slots=True)
class MerchantSettings:
    """Per-merchant settings from the klaviyo-integrations topic.

    ``api_key`` is a ``SecretStr`` so no repr, log line or exception text can show it.
    """

    merchant_id: str
    api_key: SecretStr = field(repr=False)
    enabled: bool = True
    order_tracking_enabled: bool = False
    marketing_enabled: bool = False
    email_list_id: str | None = None
    sms_list_id: str | None = None
    tracking_page_url_template: str | None = None
    default_currency: str = "USD"
    default_country: str = "US"
    stall_threshold_hours: int | None = None
