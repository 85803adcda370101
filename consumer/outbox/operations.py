"""The Klaviyo operations that derivation produces and delivery sends.

One outbox record carries one operation, keyed by merchant id, so each merchant lives on one
outbox partition. Operations are plain frozen values: derivation builds them, ``codec`` turns
them into bytes for the outbox, delivery turns them into Klaviyo request bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "Channel",
    "EventOperation",
    "Operation",
    "Profile",
    "PropertyValue",
    "SubscriptionOperation",
]

PropertyValue = str | int | float | bool | Decimal | None
"""An event property value; amounts are ``Decimal`` so they keep their exact digits."""


class Channel(StrEnum):
    """A marketing channel a profile can be subscribed on."""

    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class Profile:
    """Who an event is about: normalised identifiers plus optional names.

    At least one of ``email``, ``phone_number`` (E.164) or ``external_id`` is set; derivation
    guarantees it.
    """

    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def identity(self) -> str:
        """The identifier Klaviyo resolves the profile by first (email, phone, external id)."""
        return self.email or self.phone_number or self.external_id or ""


@dataclass(frozen=True, slots=True)
class EventOperation:
    """One Klaviyo event (a metric occurrence) for one profile of one merchant.

    ``unique_id`` is built from stable facts only, so re-deriving or re-sending the same fact
    yields the same id and Klaviyo records it once per (profile, metric, unique_id).
    ``time`` is when it happened (timezone-aware), never when it was processed.
    """

    merchant_id: str
    metric: str
    profile: Profile
    properties: Mapping[str, PropertyValue]
    time: datetime
    unique_id: str
    value: Decimal | None = None
    value_currency: str | None = None
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionOperation:
    """Subscribe one profile to one of the merchant's lists with explicit marketing consent.

    Only built from an explicit opt-in (never inferred); ``consented_at`` is when the customer
    gave it. ``unique_id`` identifies the sign-up fact for deduplication and dead-letter replays.
    """

    merchant_id: str
    channel: Channel
    list_id: str
    profile: Profile
    custom_source: str
    consented_at: datetime
    unique_id: str
    historical_import: bool = field(default=False)


Operation = EventOperation | SubscriptionOperation
