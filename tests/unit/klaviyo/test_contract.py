"""The vendored contract: operations, constants and schema validation with pointers."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from consumer.klaviyo import (
    BASE_URL,
    BULK_CREATE_EVENTS,
    BULK_SUBSCRIBE_PROFILES,
    CREATE_EVENT,
    GET_ACCOUNTS,
    REVISION,
    SPEC_SHA256,
    ContractError,
    RateLimit,
    Rule,
    find_operation,
    operation,
    validate_request,
    validate_response,
)
from tests.unit.klaviyo import bodies

ENTRY = "/data/attributes/events-bulk-create/data/0/attributes"
EVENT = f"{ENTRY}/events/data/0/attributes"


def pointers(operation_id: str, body: object, **kwargs: Any) -> list[str]:
    return [v.pointer for v in validate_request(operation_id, body, **kwargs)]


def test_constants_come_from_the_vendored_spec() -> None:
    assert REVISION == "2026-07-15"
    assert BASE_URL == "https://a.klaviyo.com"
    assert SPEC_SHA256 == "deb88f1dfad82fd530433555d3180fdc29633143d21e7347a9726cbea3fae2a9"


@pytest.mark.parametrize(
    ("operation_id", "method", "path", "scopes", "limit", "success"),
    [
        (BULK_CREATE_EVENTS, "POST", "/api/event-bulk-create-jobs", ("events:write",),
         RateLimit(10, 150), 202),
        (BULK_SUBSCRIBE_PROFILES, "POST", "/api/profile-subscription-bulk-create-jobs",
         ("lists:write", "profiles:write", "subscriptions:write"), RateLimit(75, 750), 202),
        (CREATE_EVENT, "POST", "/api/events", ("events:write",), RateLimit(350, 3500), 202),
        (GET_ACCOUNTS, "GET", "/api/accounts", ("accounts:read",), RateLimit(1, 15), 200),
    ],
)  # fmt: skip
def test_operation_matches_the_api_notes_table(
    operation_id: str,
    method: str,
    path: str,
    scopes: tuple[str, ...],
    limit: RateLimit,
    success: int,
) -> None:
    op = operation(operation_id)
    assert (op.method, op.path, op.scopes, op.rate_limit, op.success_status) == (
        method,
        path,
        scopes,
        limit,
        success,
    )
    assert find_operation(method.lower(), path + "/") is op


def test_operation_unknown_raises_contract_error() -> None:
    with pytest.raises(ContractError):
        operation("delete_everything")
    assert find_operation("DELETE", "/api/events") is None


@pytest.mark.parametrize(
    ("operation_id", "body"),
    [
        (BULK_CREATE_EVENTS, bodies.bulk(bodies.entry([bodies.event()]))),
        (BULK_CREATE_EVENTS, bodies.full_bulk()),
        (CREATE_EVENT, bodies.single()),
        (BULK_SUBSCRIBE_PROFILES, bodies.subscribe()),
        (BULK_SUBSCRIBE_PROFILES, bodies.subscribe(list_id=None, custom_source="Tracking page")),
    ],
)
def test_validate_request_valid_body_has_no_violations(operation_id: str, body: object) -> None:
    assert validate_request(operation_id, body) == []


def test_validate_request_minimal_event_without_optional_fields_passes() -> None:
    minimal = bodies.bulk(bodies.entry([bodies.event(unique_id=None, time=None)]))
    assert validate_request(BULK_CREATE_EVENTS, minimal) == []


def test_validate_request_missing_required_field_points_at_it() -> None:
    body = bodies.bulk(bodies.entry([bodies.event()]))
    del body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]["data"][
        0
    ]["attributes"]["metric"]
    assert pointers(BULK_CREATE_EVENTS, body) == [f"{EVENT}/metric"]


def test_validate_request_missing_type_and_wrong_enum_point_at_type() -> None:
    body = bodies.bulk(bodies.entry([bodies.event()]))
    body["data"]["type"] = "event-bulk-create-jobs"
    del body["data"]["attributes"]["events-bulk-create"]["data"][0]["type"]
    assert pointers(BULK_CREATE_EVENTS, body) == [
        "/data/attributes/events-bulk-create/data/0/type",
        "/data/type",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("value", "12.50"), ("properties", ["a"]), ("unique_id", 7), ("backfill", "yes")],
)
def test_validate_request_wrong_type_points_at_field(field: str, value: object) -> None:
    event = bodies.event()
    event["attributes"][field] = value
    body = bodies.bulk(bodies.entry([event]))
    violations = validate_request(BULK_CREATE_EVENTS, body)
    assert [v.pointer for v in violations] == [f"{EVENT}/{field}"]
    assert violations[0].rule == Rule.SCHEMA


@pytest.mark.parametrize("field", ["time", "value", "value_currency", "unique_id", "backfill"])
def test_validate_request_nullable_event_field_accepts_null(field: str) -> None:
    event = bodies.event()
    event["attributes"][field] = None
    body = bodies.bulk(bodies.entry([event]))
    assert validate_request(BULK_CREATE_EVENTS, body) == []


def test_validate_request_nullable_ref_accepts_null_but_not_other_types() -> None:
    body = bodies.bulk(bodies.entry([bodies.event()]))
    profile = body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["profile"]
    profile["data"]["attributes"]["location"] = None
    profile["data"]["meta"] = None
    assert validate_request(BULK_CREATE_EVENTS, body) == []
    profile["data"]["attributes"]["location"] = "Berlin"
    violations = validate_request(BULK_CREATE_EVENTS, body)
    assert [v.pointer for v in violations] == [f"{ENTRY}/profile/data/attributes/location"]
    assert "object" in violations[0].message and "null" in violations[0].message


def test_validate_request_non_nullable_field_rejects_null() -> None:
    body = bodies.bulk(bodies.entry([bodies.event(properties=None)]))
    body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]["data"][0][
        "attributes"
    ]["properties"] = None
    assert pointers(BULK_CREATE_EVENTS, body) == [f"{EVENT}/properties"]


def test_validate_request_nullable_enum_accepts_null() -> None:
    push: dict[str, Any] = {
        "marketing": {"consent": "SUBSCRIBED"},
        "tokens": [
            {"token": "abc", "platform": "ios", "vendor": "apns", "enablement_status": None}
        ],
    }
    profile = {
        "type": "profile",
        "attributes": {"email": "a@example.com", "subscriptions": {"push": push}},
    }
    assert validate_request(BULK_SUBSCRIBE_PROFILES, bodies.subscribe(profile)) == []
    push["tokens"][0]["enablement_status"] = "MAYBE"
    assert pointers(BULK_SUBSCRIBE_PROFILES, bodies.subscribe(profile)) == [
        "/data/attributes/profiles/data/0/attributes/subscriptions/push/tokens/0/enablement_status"
    ]


def test_validate_request_time_must_be_a_date_time_with_offset() -> None:
    for bad in ("2026-01-02", "2026-01-02T03:04:05", "yesterday"):
        body = bodies.bulk(bodies.entry([bodies.event(time=bad)]))
        assert pointers(BULK_CREATE_EVENTS, body) == [f"{EVENT}/time"], bad
    body = bodies.bulk(bodies.entry([bodies.event(time="2026-01-02T03:04:05Z")]))
    assert validate_request(BULK_CREATE_EVENTS, body) == []


def test_validate_request_unknown_attribute_rejected_unless_not_strict() -> None:
    body = bodies.bulk(bodies.entry([bodies.event(value_curency="EUR")]))
    assert pointers(BULK_CREATE_EVENTS, body) == [f"{EVENT}/value_curency"]
    assert validate_request(BULK_CREATE_EVENTS, body, strict=False) == []


def test_validate_request_free_form_properties_stay_open() -> None:
    body = bodies.bulk(bodies.entry([bodies.event(properties={"anything": {"nested": [1]}})]))
    assert validate_request(BULK_CREATE_EVENTS, body) == []


def test_validate_request_subscription_list_id_attribute_is_not_valid() -> None:
    """The old revisions' ``list_id`` attribute moved to ``relationships.list``."""
    body = bodies.subscribe(list_id=None)
    body["data"]["attributes"]["list_id"] = "Y6nRLr"
    assert pointers(BULK_SUBSCRIBE_PROFILES, body) == ["/data/attributes/list_id"]


def test_validate_request_accepts_raw_bytes_and_reports_bad_json() -> None:
    raw = orjson.dumps(bodies.single())
    assert validate_request(CREATE_EVENT, raw) == []
    assert validate_request(CREATE_EVENT, raw.decode()) == []
    [violation] = validate_request(CREATE_EVENT, b"{not json")
    assert (violation.pointer, violation.rule) == ("/data", Rule.INVALID_JSON)


def test_validate_request_unserialisable_value_is_a_violation() -> None:
    [violation] = validate_request(CREATE_EVENT, {"data": object()})
    assert violation.rule == Rule.INVALID_JSON


def test_validate_request_does_not_modify_the_body() -> None:
    body = bodies.full_bulk()
    before = copy.deepcopy(body)
    validate_request(BULK_CREATE_EVENTS, body)
    assert body == before


def test_validate_request_operation_without_body_raises() -> None:
    with pytest.raises(ContractError):
        validate_request(GET_ACCOUNTS, {})


def test_validate_response_accounts_document() -> None:
    account: dict[str, Any] = {
        "type": "account",
        "id": "AbC123",
        "attributes": {
            "test_account": False,
            "contact_information": {
                "default_sender_name": "Shop",
                "default_sender_email": "hi@shop.example",
                "website_url": None,
                "organization_name": "Shop",
                "street_address": {"address1": None, "city": "Boston"},
            },
            "industry": None,
            "timezone": "US/Eastern",
            "preferred_currency": "USD",
            "public_api_key": "AbC123",
            "locale": "en-US",
        },
        "links": {"self": "https://a.klaviyo.com/api/accounts/AbC123/"},
    }
    assert validate_response(GET_ACCOUNTS, {"data": [account]}) == []
    del account["attributes"]["timezone"]
    assert [v.pointer for v in validate_response(GET_ACCOUNTS, {"data": [account]})] == [
        "/data/0/attributes/timezone"
    ]


def test_validate_request_violations_are_in_document_order() -> None:
    events = [bodies.event(unique_id=f"u{i}") for i in range(12)]
    for index in (2, 10):
        events[index]["attributes"]["value"] = "bad"
    got = pointers(BULK_CREATE_EVENTS, bodies.bulk(bodies.entry(events)))
    assert got == [
        f"{ENTRY}/events/data/2/attributes/value",
        f"{ENTRY}/events/data/10/attributes/value",
    ]
