"""Marketing consent: sign-ups that become Klaviyo list subscriptions.

Two flows of the product spec, and nothing else:

- source TRACKING_PAGE (the SMS updates form on the order tracking page), channel SMS, consent
  box ticked → SMS subscription to the merchant's ``sms_list_id``, custom source
  "Order tracking page". The contract defines this form as SMS only, so an EMAIL sign-up from
  it is an impossible value (dead-lettered).
- source MARKETING (the marketing product's forms), channel EMAIL or SMS, consent box ticked →
  subscription to ``email_list_id`` / ``sms_list_id``, custom source "Marketing sign-up form",
  only when the merchant has the marketing product enabled (else ``marketing_disabled``).

Consent is never inferred: ``marketing_consent`` must be literally true; false, null or absent
is the counted skip ``no_consent`` (a phone number alone is not consent). A missing list id is
the skip ``list_not_configured``. The form's ``email``/``phone`` override the customer's; the
channel's identifier must be usable (valid e-mail for EMAIL, E.164 phone for SMS) or the record
is dead-lettered (``invalid_email``/``invalid_phone``, or ``no_identifier`` when absent).

``consented_at`` is the sign-up time. A sign-up older than ``backfill_after`` is a replay and
is sent as a historical import (Klaviyo then records the given consent time and does not
re-run double opt-in or "added to list" flows), mirroring ``backfill`` on events.
unique_id: ``signup:{event_id}:{channel}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from consumer.derive import fields
from consumer.derive.config import DeriveConfig
from consumer.derive.errors import InvalidRecord
from consumer.derive.events import is_backfill
from consumer.derive.gating import Feature, gate
from consumer.derive.limits import checked
from consumer.derive.outcome import DeadLetterCode, Derivation, SkipReason
from consumer.derive.profiles import profile_from_customer
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import Channel, Profile, SubscriptionOperation

__all__ = ["MARKETING_FORM_SOURCE", "TRACKING_PAGE_SOURCE", "SignupSource", "derive_signup"]

TRACKING_PAGE_SOURCE = "Order tracking page"
MARKETING_FORM_SOURCE = "Marketing sign-up form"


class SignupSource(Enum):
    """Where the customer signed up (the contract's ``SignupSource``)."""

    TRACKING_PAGE = "TRACKING_PAGE"
    MARKETING = "MARKETING"


_CHANNELS = {"EMAIL": Channel.EMAIL, "SMS": Channel.SMS}
_SOURCES = {source.value: source for source in SignupSource}


def _list_id(merchant: MerchantSettings, channel: Channel) -> str | None:
    list_id = merchant.sms_list_id if channel is Channel.SMS else merchant.email_list_id
    return list_id.strip() if list_id and list_id.strip() else None


def _channel_profile(
    record: Mapping[str, Any], signup: Mapping[str, Any], channel: Channel, country: str
) -> Profile:
    email = fields.optional_text(signup, "email", "signup")
    phone = fields.optional_text(signup, "phone", "signup")
    customer = fields.child(record, "customer")
    profile = profile_from_customer(customer, country, email=email, phone=phone)
    if channel is Channel.SMS and profile.phone_number is None:
        given = phone or fields.optional_text(customer, "phone", "customer")
        if given is not None:
            raise InvalidRecord(DeadLetterCode.INVALID_PHONE, "SMS sign-up phone is not E.164-able")
        raise InvalidRecord(DeadLetterCode.NO_IDENTIFIER, "SMS sign-up without a phone number")
    if channel is Channel.EMAIL and profile.email is None:
        given = email or fields.optional_text(customer, "email", "customer")
        if given is not None:
            raise InvalidRecord(DeadLetterCode.INVALID_EMAIL, "email sign-up address is invalid")
        raise InvalidRecord(DeadLetterCode.NO_IDENTIFIER, "email sign-up without an address")
    return profile


def derive_signup(
    record: Mapping[str, Any],
    merchant: MerchantSettings,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    """The subscription for one MARKETING_SIGNUP storefront event of a served merchant.

    Raises:
        InvalidRecord: the sign-up breaks the contract (the caller dead-letters it).
    """
    event_id = fields.text(record, "event_id")
    signup = fields.child(record, "signup")
    if signup.get("marketing_consent") is not True:
        return Derivation.skipped(SkipReason.NO_CONSENT, event_id)
    channel = fields.symbol(signup, "channel", _CHANNELS, "signup")
    source = fields.symbol(signup, "source", _SOURCES, "signup")
    if source is SignupSource.TRACKING_PAGE and channel is not Channel.SMS:
        raise InvalidRecord.invalid("signup/channel", "must be SMS for TRACKING_PAGE sign-ups")
    if source is SignupSource.MARKETING:
        served = gate(merchant, Feature.MARKETING)
        if isinstance(served, SkipReason):
            return Derivation.skipped(served, event_id)
    list_id = _list_id(merchant, channel)
    if list_id is None:
        return Derivation.skipped(SkipReason.LIST_NOT_CONFIGURED, f"{channel.value} list")

    occurred_at = fields.moment(record, "occurred_at")
    subscription = SubscriptionOperation(
        merchant_id=fields.text(record, "merchant_id"),
        channel=channel,
        list_id=list_id,
        profile=_channel_profile(record, signup, channel, merchant.default_country),
        custom_source=(
            TRACKING_PAGE_SOURCE if source is SignupSource.TRACKING_PAGE else MARKETING_FORM_SOURCE
        ),
        consented_at=occurred_at,
        unique_id=f"signup:{event_id}:{channel.value}",
        historical_import=is_backfill(occurred_at, now, config),
    )
    return checked([subscription], now)
