"""Customer Account Created, Product Added to Wishlist and marketing consent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.derive import (
    MARKETING_FORM_SOURCE,
    TRACKING_PAGE_SOURCE,
    DeadLetterCode,
    SkipReason,
    derive_storefront_event,
)
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import Channel, Profile
from tests.unit.derive.records import (
    CONFIG,
    MERCHANT,
    NOW,
    at,
    customer,
    events,
    merchant,
    signup,
    storefront_record,
    subscriptions,
    wishlist,
)

WISHLIST = "Product Added to Wishlist"
ACCOUNT = "Customer Account Created"


def test_customer_account_created_profile_gets_names() -> None:
    result = derive_storefront_event(storefront_record("ACCOUNT_CREATED"), MERCHANT, NOW, CONFIG)
    (event,) = events(result.operations, ACCOUNT)
    assert event.profile == Profile(
        email="jane.doe@example.com",
        phone_number="+14155550100",
        external_id="cust_42",
        first_name="Jane",
        last_name="Doe",
    )
    assert event.time == at("2026-11-27T20:15:00Z")
    assert event.unique_id == "account-created:evt_1"
    assert dict(event.properties) == {}
    assert event.value is None


WISHLIST_PROPERTIES: dict[str, Any] = {
    "ProductName": "Rain Jacket",
    "SKU": "JACKET-GRN-L",
    "VariantName": "Green / L",
    "ProductId": "prod_77",
    "Price": 129.0,
    "ProductUrl": "https://shop.example.com/products/rain-jacket",
    "ImageUrl": "https://cdn.example.com/rain-jacket.jpg",
}


@pytest.mark.parametrize(("name", "expected"), list(WISHLIST_PROPERTIES.items()))
def test_product_added_to_wishlist_property_has_seed_value(name: str, expected: Any) -> None:
    record = storefront_record("WISHLIST_ADD", wishlist=wishlist())
    (event,) = events(derive_storefront_event(record, MERCHANT, NOW, CONFIG).operations, WISHLIST)
    assert event.properties[name] == expected


def test_product_added_to_wishlist_value_is_price_in_item_currency() -> None:
    record = storefront_record("WISHLIST_ADD", wishlist=wishlist(currency="EUR"))
    (event,) = events(derive_storefront_event(record, MERCHANT, NOW, CONFIG).operations, WISHLIST)
    assert dict(event.properties) == WISHLIST_PROPERTIES
    assert event.value == Decimal("129.00")
    assert event.value_currency == "EUR"
    assert event.unique_id == "wishlist-add:evt_1"


def test_product_added_to_wishlist_v1_record_omits_unknown_properties() -> None:
    item = wishlist(price=None, currency=None, sku=None)
    del item["product_url"], item["image_url"]
    record = storefront_record("WISHLIST_ADD", wishlist=item)
    (event,) = events(derive_storefront_event(record, MERCHANT, NOW, CONFIG).operations, WISHLIST)
    assert set(event.properties) == {"ProductName", "VariantName", "ProductId"}
    assert event.value is None
    assert event.value_currency is None


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (storefront_record("WISHLIST_ADD"), DeadLetterCode.MISSING_FIELD),
        (
            storefront_record("WISHLIST_ADD", wishlist=wishlist(price=Decimal("-5"))),
            DeadLetterCode.INVALID_VALUE,
        ),
        (storefront_record("SHARE"), DeadLetterCode.INVALID_VALUE),
        (storefront_record("ACCOUNT_CREATED", occurred_at=None), DeadLetterCode.MISSING_FIELD),
        (storefront_record("MARKETING_SIGNUP"), DeadLetterCode.MISSING_FIELD),
    ],
)
def test_storefront_contract_breach_is_dead_lettered(
    record: dict[str, Any], code: DeadLetterCode
) -> None:
    result = derive_storefront_event(record, MERCHANT, NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == code
    assert result.operations == ()


def test_storefront_unknown_event_type_is_counted_skip() -> None:
    result = derive_storefront_event(storefront_record("UNKNOWN"), MERCHANT, NOW, CONFIG)
    assert result.skip_reasons == (SkipReason.UNKNOWN_EVENT_TYPE,)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (None, SkipReason.MERCHANT_NOT_INTEGRATED),
        (merchant(enabled=False), SkipReason.INTEGRATION_DISABLED),
    ],
)
def test_storefront_unserved_merchant_is_counted_skip(
    settings: MerchantSettings | None, reason: SkipReason
) -> None:
    record = storefront_record("ACCOUNT_CREATED")
    assert derive_storefront_event(record, settings, NOW, CONFIG).skip_reasons == (reason,)


# --- consent ---------------------------------------------------------------------------------


def test_signup_tracking_page_sms_with_consent_subscribes_to_sms_list() -> None:
    record = storefront_record("MARKETING_SIGNUP", signup=signup(phone="(415) 555-0199"))
    result = derive_storefront_event(record, merchant(marketing_enabled=False), NOW, CONFIG)
    (sub,) = subscriptions(result.operations)
    assert sub.channel is Channel.SMS
    assert sub.list_id == "SMS_LIST"
    assert sub.profile.phone_number == "+14155550199"
    assert sub.custom_source == TRACKING_PAGE_SOURCE == "Order tracking page"
    assert sub.consented_at == at("2026-11-27T20:15:00Z")
    assert sub.unique_id == "signup:evt_1:sms"
    assert sub.historical_import is False
    assert sub.merchant_id == "merchant-acme"


@pytest.mark.parametrize(
    ("channel", "list_id", "identifier"),
    [("EMAIL", "EMAIL_LIST", "email"), ("SMS", "SMS_LIST", "phone_number")],
)
def test_signup_marketing_with_consent_subscribes_channel_list(
    channel: str, list_id: str, identifier: str
) -> None:
    form = signup(channel=channel, source="MARKETING", email="Fan@Example.com ")
    record = storefront_record("MARKETING_SIGNUP", signup=form)
    (sub,) = subscriptions(derive_storefront_event(record, MERCHANT, NOW, CONFIG).operations)
    assert sub.channel.value == channel.lower()
    assert sub.list_id == list_id
    assert sub.custom_source == MARKETING_FORM_SOURCE
    assert getattr(sub.profile, identifier) is not None
    assert sub.profile.email == "fan@example.com"


@given(
    consent=st.sampled_from([False, None, "true", 1]),
    channel=st.sampled_from(["EMAIL", "SMS"]),
    source=st.sampled_from(["TRACKING_PAGE", "MARKETING"]),
    phone=st.sampled_from([None, "+14155550100"]),
)
def test_signup_without_consent_never_subscribes(
    consent: object, channel: str, source: str, phone: str | None
) -> None:
    form = signup(marketing_consent=consent, channel=channel, source=source, phone=phone)
    record = storefront_record("MARKETING_SIGNUP", signup=form)
    result = derive_storefront_event(record, MERCHANT, NOW, CONFIG)
    assert subscriptions(result.operations) == []
    assert result.skip_reasons == (SkipReason.NO_CONSENT,)


def test_signup_marketing_when_marketing_disabled_is_counted_skip() -> None:
    record = storefront_record("MARKETING_SIGNUP", signup=signup(source="MARKETING"))
    result = derive_storefront_event(record, merchant(marketing_enabled=False), NOW, CONFIG)
    assert result.operations == ()
    assert result.skip_reasons == (SkipReason.MARKETING_DISABLED,)


@pytest.mark.parametrize(
    ("form", "settings"),
    [
        (signup(), merchant(sms_list_id=None)),
        (signup(channel="EMAIL", source="MARKETING"), merchant(email_list_id=" ")),
    ],
)
def test_signup_without_list_id_is_counted_skip_with_reason(
    form: dict[str, Any], settings: MerchantSettings
) -> None:
    record = storefront_record("MARKETING_SIGNUP", signup=form)
    result = derive_storefront_event(record, settings, NOW, CONFIG)
    assert result.operations == ()
    assert result.skip_reasons == (SkipReason.LIST_NOT_CONFIGURED,)


@pytest.mark.parametrize(
    ("form", "person", "code"),
    [
        (signup(phone="555-01"), customer(phone=None), DeadLetterCode.INVALID_PHONE),
        (signup(phone=None), customer(phone=None), DeadLetterCode.NO_IDENTIFIER),
        (
            signup(channel="EMAIL", source="MARKETING", email="not-an-email"),
            customer(email=None),
            DeadLetterCode.INVALID_EMAIL,
        ),
        (
            signup(channel="EMAIL", source="MARKETING", email=None),
            customer(email=None),
            DeadLetterCode.NO_IDENTIFIER,
        ),
        (signup(channel="EMAIL"), customer(), DeadLetterCode.INVALID_VALUE),
    ],
)
def test_signup_unusable_channel_identifier_is_dead_lettered(
    form: dict[str, Any], person: dict[str, Any], code: DeadLetterCode
) -> None:
    record = storefront_record("MARKETING_SIGNUP", signup=form, customer=person)
    result = derive_storefront_event(record, MERCHANT, NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == code
    assert result.operations == ()


def test_signup_old_replay_is_historical_import() -> None:
    occurred = NOW - CONFIG.backfill_after - timedelta(minutes=1)
    record = storefront_record("MARKETING_SIGNUP", signup=signup(), occurred_at=occurred)
    (sub,) = subscriptions(derive_storefront_event(record, MERCHANT, NOW, CONFIG).operations)
    assert sub.historical_import is True
    assert sub.consented_at == occurred
