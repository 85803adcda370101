"""Sandbox over HTTP: every fault kind, armed from Python and from the admin API."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from consumer.sandbox import Sandbox
from tests.unit.klaviyo import bodies

from .helpers import ACCOUNT, BULK, EVENTS, KEY, RATE_HEADERS, Client

BODY = bodies.bulk(bodies.entry([bodies.event()]))


async def test_fault_fail_next_fails_n_requests_then_recovers(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.faults(ACCOUNT).fail_next(2, status=503)
    replies = [await client.post(BULK, BODY) for _ in range(3)]
    assert [r.status for r in replies] == [503, 503, 202]
    [error] = replies[0].errors()
    assert error["status"] == 503
    assert replies[0].headers["Content-Type"].startswith("application/vnd.api+json")
    assert sandbox.unique_event_count(ACCOUNT) == 1


async def test_fault_fail_ratio_is_repeatable_with_a_seed(client: Client, sandbox: Sandbox) -> None:
    async def pattern() -> list[int]:
        statuses = []
        for i in range(30):
            statuses.append((await client.post(EVENTS, bodies.single(unique_id=str(i)))).status)
        return statuses

    sandbox.faults(ACCOUNT).fail_ratio(0.5, status=500, seed=42)
    first = await pattern()
    sandbox.faults(ACCOUNT).fail_ratio(0.5, status=500, seed=42)
    second = await pattern()
    assert first == second
    assert set(first) == {202, 500}


async def test_fault_latency_delays_the_answer(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(ACCOUNT).add_latency(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await client.post(BULK, BODY)
    assert reply.status == 202
    assert loop.time() - started >= 0.2


async def test_fault_connection_reset_gives_no_response(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(ACCOUNT).reset_connections(1)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await client.post(BULK, BODY)
    assert (await client.post(BULK, BODY)).status == 202
    assert sandbox.stats.connection_resets == 1
    assert sandbox.unique_event_count(ACCOUNT) == 1


async def test_fault_edge_challenge_is_html_403(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(ACCOUNT).edge_challenge(1)
    reply = await client.post(BULK, BODY)
    assert reply.status == 403
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["cf-mitigated"] == "challenge"
    assert reply.text.lstrip().lower().startswith("<!doctype html>")
    assert (await client.post(BULK, BODY)).status == 202


async def test_fault_forced_throttle_has_the_given_retry_after(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.faults(ACCOUNT).throttle(retry_after=30, count=2)
    replies = [await client.post(BULK, BODY) for _ in range(3)]
    assert [r.status for r in replies] == [429, 429, 202]
    assert replies[0].headers["Retry-After"] == "30"
    assert not any(h in replies[0].headers for h in RATE_HEADERS)
    assert replies[0].errors()[0]["code"] == "throttled"


async def test_fault_until_cleared_then_clear(client: Client, sandbox: Sandbox) -> None:
    faults = sandbox.faults(ACCOUNT)
    faults.fail_next(None, status=502)
    assert {(await client.post(BULK, BODY)).status for _ in range(3)} == {502}
    faults.clear()
    assert (await client.post(BULK, BODY)).status == 202


async def test_fault_only_hits_its_account(client: Client, sandbox: Sandbox) -> None:
    sandbox.add_account("merchant-2", "pk_test_merchant_two_0001")
    sandbox.faults("merchant-2").fail_next(None)
    assert (await client.post(BULK, BODY)).status == 202
    assert (await client.post(BULK, BODY, key="pk_test_merchant_two_0001")).status == 503


async def test_fault_admin_api_arms_shows_and_clears(client: Client) -> None:
    armed = await client.admin(
        "POST",
        f"/sandbox/accounts/{ACCOUNT}/faults",
        {"fail_next": {"count": 1, "status": 504}, "throttle": {"retry_after": 7, "count": 1}},
    )
    assert armed.status == 200
    assert armed.json() == {
        "fail": {"count": 1, "status": 504},
        "throttle": {"count": 1, "retry_after": 7},
    }
    # Precedence: the edge-side throttle answers before the 5xx behind it.
    assert (await client.post(BULK, BODY)).headers["Retry-After"] == "7"
    assert (await client.post(BULK, BODY)).status == 504
    for spec in ({"reset": {"count": 1}}, {"edge_challenge": {"count": 1}}):
        assert (
            await client.admin("POST", f"/sandbox/accounts/{ACCOUNT}/faults", spec)
        ).status == 200
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await client.post(BULK, BODY)
    assert (await client.post(BULK, BODY)).headers["cf-mitigated"] == "challenge"
    await client.admin("POST", f"/sandbox/accounts/{ACCOUNT}/faults", {"latency_seconds": 0.01})
    assert (await client.admin("GET", f"/sandbox/accounts/{ACCOUNT}/faults")).json() == {
        "latency_seconds": 0.01
    }
    assert (await client.admin("DELETE", f"/sandbox/accounts/{ACCOUNT}/faults")).status == 204
    assert (await client.admin("GET", f"/sandbox/accounts/{ACCOUNT}/faults")).json() == {}


async def test_fault_admin_api_rejects_bad_specs(client: Client) -> None:
    path = f"/sandbox/accounts/{ACCOUNT}/faults"
    specs: list[dict[str, Any]] = [
        {"meteor": {}},
        {"fail_next": {"status": 404}},
        {"fail_ratio": {"ratio": 2}},
        {"throttle": {"count": 1}},
        {"reset": {"count": "many"}},
    ]
    for spec in specs:
        reply = await client.admin("POST", path, spec)
        assert reply.status == 400, spec
        assert "error" in reply.json()


async def test_fault_revoke_key_through_admin_api_gives_401(client: Client) -> None:
    reply = await client.admin("POST", "/sandbox/keys/revoke", {"key": KEY})
    assert reply.status == 200
    assert KEY not in reply.text
    assert (await client.post(BULK, BODY)).status == 401
