"""The sink against the sandbox's rate windows: no 429 in steady state, Retry-After honoured."""

from __future__ import annotations

import time

import aiohttp
import orjson

from consumer.klaviyo import BULK_CREATE_EVENTS, REVISION, RateLimit
from consumer.sandbox import Sandbox
from tests.integration.deliver.conftest import SentRequest, SinkFactory
from tests.unit.deliver import factories
from tests.unit.klaviyo import bodies

MERCHANT = factories.MERCHANT
KEY = "pk_test_merchant_a_0001"
OTHER_KEY = "pk_test_merchant_a_0002"  # a second integration on the same Klaviyo account


def _most_in_any_second(sent: list[SentRequest]) -> int:
    times = sorted(r.sent_at for r in sent)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_sink_at_10_per_s_and_150_per_min_gets_no_429(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """Small batches as fast as allowed: the sink paces itself to the burst window."""
    sandbox.add_account(MERCHANT, KEY)
    harness = sink_factory({MERCHANT: factories.merchant(key=KEY)}, batch_max_events=4)
    harness.submit([factories.event(n) for n in range(100)])
    await harness.outcomes.wait_count(100, within=10)
    assert len(harness.outcomes.accepted) == 100
    sent = harness.client.sent
    assert len(sent) == 25
    assert sandbox.stats.count(429) == 0
    assert _most_in_any_second(sent) <= 10
    harness.client.assert_contract()


async def _spend(sandbox: Sandbox, key: str, requests: int) -> None:
    """Use ``requests`` of the account's budget from another client (as a second app would)."""
    headers = {
        "Authorization": f"Klaviyo-API-Key {key}",
        "revision": REVISION,
        "Content-Type": "application/vnd.api+json",
    }
    async with aiohttp.ClientSession() as session:
        for n in range(requests):
            body = bodies.bulk(bodies.entry([bodies.event(unique_id=f"other-{n}")]))
            url = sandbox.url + "/api/event-bulk-create-jobs"
            async with session.post(url, data=orjson.dumps(body), headers=headers) as reply:
                assert reply.status == 202, await reply.text()


async def test_sink_honours_ratelimit_remaining_of_shared_window(sink_factory: SinkFactory) -> None:
    """Another app spent most of the minute: the sink stops at Remaining 0 until the reset.

    The sandbox's clock is shifted so its minute window ends 2.5 s into the test; a second key
    of the same account spends 10 of the 15 requests allowed per minute.
    """
    window_end = time.monotonic() + 2.5
    offset = (-window_end) % 60.0  # sandbox clock = real clock + offset, aligned to minutes

    def clock() -> float:
        return time.monotonic() + offset

    limits = {BULK_CREATE_EVENTS: RateLimit(burst_per_second=100, steady_per_minute=15)}
    async with Sandbox.run(host="127.0.0.1", port=0, clock=clock, rate_limits=limits) as sandbox:
        sandbox.add_account(MERCHANT, KEY)
        sandbox.add_key(MERCHANT, OTHER_KEY)
        await _spend(sandbox, OTHER_KEY, 10)
        harness = sink_factory(
            {MERCHANT: factories.merchant(key=KEY)}, on=sandbox, batch_max_events=5
        )
        harness.submit([factories.event(n) for n in range(100)])
        await harness.outcomes.wait_count(100, within=10)
        assert len(harness.outcomes.accepted) == 100
        assert sandbox.stats.count(429) == 0
        sent = harness.client.sent
        before = [r for r in sent if r.sent_at < window_end]
        after = [r for r in sent if r.sent_at >= window_end]
        assert (len(before), len(after)) == (5, 15)
        harness.client.assert_contract()
        await harness.sink.close(time.monotonic() + 1)


async def test_sink_after_429_retry_after_3_sends_nothing_for_3_s(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """An injected 429 with ``Retry-After: 3``: the merchant's next request waits 3 s."""
    sandbox.add_account(MERCHANT, KEY)
    sandbox.faults(MERCHANT).throttle(retry_after=3, count=1)
    harness = sink_factory({MERCHANT: factories.merchant(key=KEY)})
    harness.submit([factories.event(n) for n in range(50)])
    await harness.outcomes.wait_count(50, within=10)
    assert len(harness.outcomes.accepted) == 50
    first, *rest = harness.client.sent
    assert first.status == 429
    assert rest, "nothing was sent after the 429"
    assert min(r.sent_at for r in rest) - first.answered_at >= 3.0
    assert sandbox.stats.count(429) == 1
    assert sandbox.unique_event_count(MERCHANT) == 50
    harness.client.assert_contract()
