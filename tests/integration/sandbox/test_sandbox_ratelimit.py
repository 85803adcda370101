"""Sandbox over HTTP: per-account burst and steady windows, 429 and RateLimit-* headers."""

from __future__ import annotations

import aiohttp

from consumer.klaviyo import RateLimit
from consumer.sandbox import Sandbox
from tests.unit.klaviyo import bodies

from .helpers import ACCOUNT, BULK, EVENTS, KEY, RATE_HEADERS, Client, ManualClock, Reply

BODY = bodies.bulk(bodies.entry([bodies.event()]))


async def burst(client: Client, count: int, **kwargs: str) -> list[Reply]:
    return [await client.post(BULK, BODY, **kwargs) for _ in range(count)]


async def test_ratelimit_success_describes_the_steady_window(client: Client) -> None:
    replies = await burst(client, 3)
    assert [r.headers["RateLimit-Remaining"] for r in replies] == ["149", "148", "147"]
    assert {r.headers["RateLimit-Limit"] for r in replies} == {"150"}
    assert {r.headers["RateLimit-Reset"] for r in replies} == {"60"}


async def test_ratelimit_burst_exceeded_is_429_with_retry_after_only(
    client: Client, clock: ManualClock
) -> None:
    replies = await burst(client, 11)
    assert [r.status for r in replies] == [202] * 10 + [429]
    throttled = replies[-1]
    assert throttled.headers["Retry-After"] == "1"
    assert not any(h in throttled.headers for h in RATE_HEADERS)
    [error] = throttled.errors()
    assert error["code"] == "throttled"
    assert error["detail"] == "Request was throttled. Expected available in 1 second."
    clock.advance(1.0)
    assert (await client.post(BULK, BODY)).status == 202


async def test_ratelimit_refused_requests_do_not_use_budget(
    client: Client, clock: ManualClock
) -> None:
    await burst(client, 10)
    assert {r.status for r in await burst(client, 5)} == {429}
    clock.advance(1.0)
    after = await client.post(BULK, BODY)
    assert after.headers["RateLimit-Remaining"] == "139"


async def test_ratelimit_steady_exceeded_waits_for_the_minute(
    client: Client, clock: ManualClock
) -> None:
    for _ in range(15):
        assert {r.status for r in await burst(client, 10)} == {202}
        clock.advance(1.0)
    throttled = await client.post(BULK, BODY)
    assert throttled.status == 429
    assert throttled.headers["Retry-After"] == "45"  # window 1200-1260, now 1215
    clock.advance(45.0)
    reply = await client.post(BULK, BODY)
    assert (reply.status, reply.headers["RateLimit-Remaining"]) == (202, "149")


async def test_ratelimit_keys_of_one_account_share_its_budget(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.add_key(ACCOUNT, "pk_test_merchant_one_0002")
    await burst(client, 5)
    await burst(client, 5, key="pk_test_merchant_one_0002")
    assert (await client.post(BULK, BODY)).status == 429
    assert (await client.post(BULK, BODY, key="pk_test_merchant_one_0002")).status == 429


async def test_ratelimit_other_accounts_and_operations_are_independent(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.add_account("merchant-2", "pk_test_merchant_two_0001")
    await burst(client, 10)
    assert (await client.post(BULK, BODY)).status == 429
    assert (await client.post(BULK, BODY, key="pk_test_merchant_two_0001")).status == 202
    reply = await client.post(EVENTS, bodies.single(), key=KEY)
    assert (reply.status, reply.headers["RateLimit-Limit"]) == (202, "3500")


async def test_ratelimit_is_configurable_per_sandbox(client: Client, sandbox: Sandbox) -> None:
    sandbox.set_rate_limit("bulk_create_events", RateLimit(2, 3))
    replies = await burst(client, 3)
    assert [r.status for r in replies] == [202, 202, 429]
    assert replies[0].headers["RateLimit-Limit"] == "3"
    assert sandbox.stats.throttled == 1
    assert sandbox.stats.count(429, account_id=ACCOUNT, operation_id="bulk_create_events") == 1


async def test_ratelimit_constructor_overrides_the_spec_default(clock: ManualClock) -> None:
    sandbox = Sandbox(clock=clock, rate_limits={"create_event": RateLimit(1, 1)})
    assert sandbox.state.limiter.limit("create_event") == RateLimit(1, 1)
    assert sandbox.state.limiter.limit("bulk_create_events") == RateLimit(10, 150)


async def test_ratelimit_lifted_serves_every_request_and_keeps_the_headers(
    clock: ManualClock,
) -> None:
    async with (
        Sandbox.run(clock=clock, enforce_rate_limits=False) as sandbox,
        aiohttp.ClientSession() as session,
    ):
        sandbox.add_account(ACCOUNT, KEY)
        replies = await burst(Client(session, sandbox), 200)  # 20x the burst limit, one second
        assert {r.status for r in replies} == {202}
        assert {r.headers["RateLimit-Remaining"] for r in replies} == {"150"}
        assert sandbox.stats.throttled == 0
