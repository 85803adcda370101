"""Sandbox over HTTP: schema errors, limits, and unique_id semantics within and across requests."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from consumer.klaviyo import MAX_EVENTS_PER_REQUEST, MAX_STRING_BYTES
from consumer.sandbox import Sandbox
from tests.unit.klaviyo import bodies

from .helpers import ACCOUNT, BULK, RATE_HEADERS, Client

EVENTS = "/data/attributes/events-bulk-create/data"


async def test_validation_schema_error_is_400_with_pointer(
    client: Client, sandbox: Sandbox
) -> None:
    body = bodies.bulk(
        bodies.entry([bodies.event()]),
        bodies.entry([bodies.event(unique_id="x", value="twelve")], email="b@example.com"),
    )
    reply = await client.post(BULK, body)
    assert reply.status == 400
    [error] = reply.errors()
    assert error["code"] == "invalid"
    assert error["source"]["pointer"] == f"{EVENTS}/1/attributes/events/data/0/attributes/value"
    assert {"id", "title", "detail", "status"} <= set(error)
    assert all(h in reply.headers for h in RATE_HEADERS)
    assert sandbox.events(ACCOUNT) == []  # one bad event fails the whole request


async def test_validation_invalid_json_is_400(client: Client) -> None:
    reply = await client.post(BULK, None, raw=b'{"data": ')
    assert reply.status == 400
    assert reply.pointers() == ["/data"]


async def test_validation_1000_events_accepted_1001_rejected(
    client: Client, sandbox: Sandbox
) -> None:
    assert (await client.post(BULK, bodies.bulk_of(MAX_EVENTS_PER_REQUEST))).status == 202
    assert sandbox.unique_event_count(ACCOUNT) == MAX_EVENTS_PER_REQUEST
    reply = await client.post(BULK, bodies.bulk_of(MAX_EVENTS_PER_REQUEST + 1, prefix="more"))
    assert reply.status == 400
    assert reply.pointers() == [EVENTS]
    assert sandbox.unique_event_count(ACCOUNT) == MAX_EVENTS_PER_REQUEST


async def test_validation_payload_over_5_mb_is_400(client: Client) -> None:
    filler = "x" * 90_000
    events = [bodies.event(unique_id=f"e{i}", properties={"blob": filler}) for i in range(60)]
    reply = await client.post(BULK, bodies.bulk(bodies.entry(events)))
    assert reply.status == 400
    assert reply.pointers() == ["/data"]
    assert "5000000" in reply.errors()[0]["detail"]


async def test_validation_body_past_the_server_limit_is_still_a_json_400(client: Client) -> None:
    reply = await client.post(BULK, None, raw=b"[" + b" " * 21_000_000 + b"]")
    assert reply.status == 400
    assert reply.pointers() == ["/data"]


async def test_validation_string_over_100_kb_is_400_pointing_at_it(client: Client) -> None:
    body = bodies.bulk(
        bodies.entry([bodies.event(properties={"note": "x" * (MAX_STRING_BYTES + 1)})])
    )
    reply = await client.post(BULK, body)
    assert reply.status == 400
    assert reply.pointers() == [f"{EVENTS}/0/attributes/events/data/0/attributes/properties/note"]


async def test_validation_repeated_unique_id_in_one_request_fails_it_all(
    client: Client, sandbox: Sandbox
) -> None:
    body = bodies.bulk(
        bodies.entry([bodies.event(unique_id="a"), bodies.event(unique_id="b")]),
        bodies.entry([bodies.event(unique_id="c"), bodies.event(unique_id="a")]),
    )
    reply = await client.post(BULK, body)
    assert reply.status == 400
    assert reply.pointers() == [f"{EVENTS}/1/attributes/events/data/1/attributes/unique_id"]
    assert sandbox.unique_event_count(ACCOUNT) == 0


async def test_validation_repeated_unique_id_across_requests_is_counted_once(
    client: Client, sandbox: Sandbox
) -> None:
    first = bodies.bulk(bodies.entry([bodies.event(unique_id="a"), bodies.event(unique_id="b")]))
    resend = bodies.bulk(bodies.entry([bodies.event(unique_id="b"), bodies.event(unique_id="c")]))
    assert (await client.post(BULK, first)).status == 202
    assert (await client.post(BULK, first)).status == 202
    assert (await client.post(BULK, resend)).status == 202
    assert sandbox.unique_event_count(ACCOUNT) == 3
    assert [e.unique_id for e in sandbox.events(ACCOUNT)] == ["a", "b", "c"]
    assert sandbox.duplicate_count(ACCOUNT) == 3
    assert sandbox.stats.duplicate_events == 3


async def test_validation_same_unique_id_other_account_is_not_a_duplicate(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.add_account("merchant-2", "pk_test_merchant_two_0001")
    body = bodies.bulk(bodies.entry([bodies.event(unique_id="a")]))
    assert (await client.post(BULK, body)).status == 202
    assert (await client.post(BULK, body, key="pk_test_merchant_two_0001")).status == 202
    assert sandbox.unique_event_count(ACCOUNT) == sandbox.unique_event_count("merchant-2") == 1


async def test_validation_unknown_attribute_is_rejected_like_klaviyo(client: Client) -> None:
    body = bodies.bulk(bodies.entry([bodies.event(list_id="abc")]))
    reply = await client.post(BULK, orjson.loads(orjson.dumps(body)))
    assert reply.status == 400
    assert reply.pointers() == [f"{EVENTS}/0/attributes/events/data/0/attributes/list_id"]


async def test_validation_wait_for_events_waits_for_a_later_request(
    client: Client, sandbox: Sandbox
) -> None:
    waiter = asyncio.create_task(sandbox.wait_for_events(ACCOUNT, 2, timeout=5))
    await client.post(BULK, bodies.bulk(bodies.entry([bodies.event(unique_id="1")])))
    assert not waiter.done()
    await client.post(BULK, bodies.bulk(bodies.entry([bodies.event(unique_id="2")])))
    events = await waiter
    assert [e.unique_id for e in events] == ["1", "2"]


async def test_validation_wait_for_events_times_out_with_progress(sandbox: Sandbox) -> None:
    with pytest.raises(TimeoutError, match="0 of 1 events"):
        await sandbox.wait_for_events(ACCOUNT, 1, timeout=0.05)
