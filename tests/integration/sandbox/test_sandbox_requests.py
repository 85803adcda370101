"""Sandbox over HTTP: authentication, scopes, revision, content type, routing, accounts."""

from __future__ import annotations

import gzip

import aiohttp
import orjson

from consumer.klaviyo import GET_ACCOUNTS, validate_response
from consumer.sandbox import Sandbox
from tests.unit.klaviyo import bodies

from .helpers import (
    ACCOUNT,
    ACCOUNTS,
    BULK,
    EVENTS,
    KEY,
    RATE_HEADERS,
    SUBSCRIBE,
    Client,
)

BODY = bodies.bulk(bodies.entry([bodies.event()]))


async def test_request_valid_bulk_gets_202_empty_and_is_stored(
    client: Client, sandbox: Sandbox
) -> None:
    reply = await client.post(BULK, BODY)
    assert (reply.status, reply.text) == (202, "")
    [event] = sandbox.events(ACCOUNT)
    assert (event.metric, event.unique_id, event.key.profile) == (
        "Return Created",
        "ret-1",
        "email:shopper@example.com",
    )
    assert event.properties == {"return_id": "ret-1"}


async def test_request_without_authorization_is_401_not_authenticated(client: Client) -> None:
    reply = await client.post(BULK, BODY, key=None)
    assert reply.status == 401
    [error] = reply.errors()
    assert error["code"] == "not_authenticated"
    assert "Klaviyo-API-Key" in error["detail"]
    assert not any(h in reply.headers for h in RATE_HEADERS)


async def test_request_bearer_scheme_is_401(client: Client) -> None:
    headers = client.headers(Authorization=f"Bearer {KEY}")
    reply = await client.post(BULK, BODY, headers=headers)
    assert (reply.status, reply.errors()[0]["code"]) == (401, "not_authenticated")


async def test_request_unknown_key_is_401(client: Client) -> None:
    reply = await client.post(BULK, BODY, key="pk_never_seen_before_0000")
    assert (reply.status, reply.errors()[0]["code"]) == (401, "not_authenticated")


async def test_request_revoked_key_is_401_other_key_still_works(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.add_key(ACCOUNT, "pk_test_merchant_one_0002")
    assert (await client.post(BULK, BODY)).status == 202
    sandbox.revoke_key(KEY)
    reply = await client.post(BULK, BODY)
    assert (reply.status, reply.errors()[0]["code"]) == (401, "not_authenticated")
    assert (await client.post(BULK, BODY, key="pk_test_merchant_one_0002")).status == 202


async def test_request_key_without_scope_is_403_permission_denied(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.add_account("reader", "pk_reader_only_000001", scopes={"accounts:read"})
    reply = await client.post(BULK, BODY, key="pk_reader_only_000001")
    assert reply.status == 403
    [error] = reply.errors()
    assert error["code"] == "permission_denied"
    assert "events:write" in error["detail"]
    assert (await client.get(ACCOUNTS, key="pk_reader_only_000001")).status == 200


async def test_request_subscribe_needs_all_three_scopes(client: Client, sandbox: Sandbox) -> None:
    sandbox.add_account("m2", "pk_partial_scopes_0001", scopes={"lists:write", "profiles:write"})
    reply = await client.post(SUBSCRIBE, bodies.subscribe(), key="pk_partial_scopes_0001")
    assert reply.status == 403
    assert "subscriptions:write" in reply.errors()[0]["detail"]


async def test_request_missing_or_invalid_revision_is_400_on_the_parameter(
    client: Client,
) -> None:
    for revision in (None, "latest", "2026-02-30", "2025-01-15"):
        reply = await client.post(BULK, BODY, headers=client.headers(revision=revision))
        assert reply.status == 400, revision
        [error] = reply.errors()
        assert error["source"] == {"parameter": "revision"}
        assert error["code"] == "invalid"


async def test_request_any_revision_mode_accepts_well_formed_ones() -> None:
    async with Sandbox.run(revisions=None) as sandbox:
        sandbox.add_account(ACCOUNT, KEY)
        async with aiohttp.ClientSession() as session:
            client = Client(session, sandbox)
            ok = await client.post(BULK, BODY, headers=client.headers(revision="2026-10-15"))
            bad = await client.post(BULK, BODY, headers=client.headers(revision="soon"))
    assert (ok.status, bad.status) == (202, 400)


async def test_request_wrong_content_type_is_415_json_is_accepted(client: Client) -> None:
    raw = orjson.dumps(BODY)
    reply = await client.post(
        BULK, None, raw=raw, headers=client.headers(Content_Type="text/plain")
    )
    assert (reply.status, reply.errors()[0]["code"]) == (415, "unsupported_media_type")
    assert all(h in reply.headers for h in RATE_HEADERS)  # counted: it was authenticated
    json_type = client.headers(Content_Type="application/json; charset=utf-8")
    assert (await client.post(BULK, None, raw=raw, headers=json_type)).status == 202


async def test_request_gzip_body_is_415(client: Client) -> None:
    headers = client.headers(Content_Encoding="gzip")
    reply = await client.post(BULK, None, raw=gzip.compress(orjson.dumps(BODY)), headers=headers)
    assert reply.status == 415


async def test_request_unknown_path_404_wrong_method_405(client: Client) -> None:
    assert (await client.get("/api/lists")).status == 404
    reply = await client.get(BULK)
    assert (reply.status, reply.errors()[0]["code"]) == (405, "method_not_allowed")


async def test_request_single_event_endpoint_keeps_first_of_a_unique_id(
    client: Client, sandbox: Sandbox
) -> None:
    """Create Event: "only the first processed event will be recorded"."""
    first = await client.post(EVENTS, bodies.single(unique_id="u-1", value=1.0))
    again = await client.post(EVENTS, bodies.single(unique_id="u-1", value=2.0))
    assert (first.status, again.status) == (202, 202)
    [event] = sandbox.events(ACCOUNT)
    assert event.value == 1.0
    assert sandbox.duplicate_count(ACCOUNT) == 1


async def test_request_subscriptions_are_stored_with_their_list(
    client: Client, sandbox: Sandbox
) -> None:
    body = bodies.subscribe(bodies.sms_profile("+15005550006"), custom_source="Tracking page")
    assert (await client.post(SUBSCRIBE, body)).status == 202
    [subscription] = await sandbox.wait_for_subscriptions(ACCOUNT, 1, timeout=5)
    assert (subscription.list_id, subscription.phone_number, subscription.custom_source) == (
        "Y6nRLr",
        "+15005550006",
        "Tracking page",
    )
    assert subscription.channels["sms"]["marketing"]["consent"] == "SUBSCRIBED"


async def test_request_get_accounts_matches_the_response_schema(client: Client) -> None:
    reply = await client.get(ACCOUNTS)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/vnd.api+json")
    assert validate_response(GET_ACCOUNTS, reply.json()) == []
    [account] = reply.json()["data"]
    assert account["type"] == "account"
    assert account["id"] == account["attributes"]["public_api_key"]


async def test_request_get_accounts_sparse_fieldset(client: Client) -> None:
    reply = await client.get(ACCOUNTS + "?fields[account]=timezone,preferred_currency")
    assert set(reply.json()["data"][0]["attributes"]) == {"timezone", "preferred_currency"}
    client.sandbox.state.limiter.clear()  # accounts allow one request per second
    bad = await client.get(ACCOUNTS + "?fields[account]=password")
    assert bad.status == 400
    assert bad.errors()[0]["source"] == {"parameter": "fields[account]"}
