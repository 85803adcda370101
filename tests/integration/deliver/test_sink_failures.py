"""The sink against the sandbox when things go wrong: bad events, keys, scopes, outages."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from consumer.deliver import DeadLettered, Parked
from consumer.klaviyo import BULK_CREATE_EVENTS, RateLimit, validate_request
from consumer.sandbox import Sandbox
from tests.integration.deliver.conftest import SinkFactory
from tests.unit.deliver import factories

A, B = "merchant-a", "merchant-b"
KEY_A, KEY_B = "pk_test_merchant_a_0001", "pk_test_merchant_b_0001"


async def test_sink_one_bad_event_in_1000_dead_letters_it_with_klaviyo_detail(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """One event Klaviyo rejects by pointer: 999 accepted, 1 dead-lettered with the detail."""
    sandbox.add_account(A, KEY_A)
    harness = sink_factory({A: factories.merchant(A, KEY_A)})
    operations = [factories.event(n, merchant=A) for n in range(1000)]
    operations[417] = factories.event(417, merchant=A, metric="M" * 200)  # name too long
    harness.submit(operations)
    await harness.outcomes.wait_count(1000, within=15)
    harness.outcomes.assert_once_each(1000)
    assert len(harness.outcomes.accepted) == 999
    [rejected] = harness.outcomes.dead_lettered
    assert rejected.token == ("p0", 417)
    assert rejected.reason == "klaviyo_rejected"
    assert "less than 128" in rejected.detail
    assert sandbox.unique_event_count(A) == 999
    first, second = harness.client.sent
    assert (first.status, second.status) == (400, 202)
    violations = validate_request(first.operation_id, first.body, now=datetime.now(UTC))
    assert [v.rule for v in violations] == ["metric_name"]
    harness.client.assert_contract(skip=1)


async def test_sink_revoked_key_parks_merchant_others_keep_flowing(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """A's key is revoked: A's operations are parked; all of B's events arrive meanwhile."""
    sandbox.add_account(A, KEY_A)
    sandbox.add_account(B, KEY_B)
    sandbox.revoke_key(KEY_A)
    harness = sink_factory({A: factories.merchant(A, KEY_A), B: factories.merchant(B, KEY_B)})
    ops_a = [factories.event(n, merchant=A) for n in range(1500)]
    ops_b = [factories.event(n, merchant=B) for n in range(3000)]
    harness.submit([op for pair in zip(ops_a, ops_b[:1500], strict=True) for op in pair])
    harness.submit(ops_b[1500:])
    await harness.outcomes.wait_count(4500, within=15)
    # New operations of the parked merchant are parked at once, without a request.
    requests_before = len(harness.client.sent)
    harness.submit([factories.event(n, merchant=A) for n in range(1500, 1600)])
    await harness.outcomes.wait_count(4600, within=1)
    assert len(harness.client.sent) == requests_before
    harness.outcomes.assert_once_each(4600)
    parked = harness.outcomes.parked
    assert len(parked) == 1600
    assert {p.operation.merchant_id for p in parked} == {A}
    assert {p.reason for p in parked} == {"unauthorized"}
    assert sandbox.unique_event_count(B) == 3000
    assert sandbox.unique_event_count(A) == 0
    assert sandbox.stats.count(401, account_id=A) == 1
    harness.client.assert_contract()


async def test_sink_5xx_bursts_and_resets_deliver_every_event_exactly_once(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """Injected 5xx (30 % of requests, and bursts) and connection resets: each event once."""
    sandbox.add_account(A, KEY_A)
    # Many small requests, fast: the limits are not what this test is about.
    sandbox.set_rate_limit(BULK_CREATE_EVENTS, RateLimit(100, 6_000))
    faults = sandbox.faults(A)
    faults.fail_ratio(0.3, status=503, seed=7)
    harness = sink_factory(
        {A: factories.merchant(A, KEY_A)},
        batch_max_events=100,
        events_burst_per_second=100,
        events_steady_per_minute=6_000,
    )
    harness.submit([factories.event(n, merchant=A) for n in range(1000)])
    await harness.outcomes.wait_count(300, within=15)
    faults.fail_next(4, status=500)
    faults.reset_connections(3)
    harness.submit([factories.event(n, merchant=A) for n in range(1000, 3000)])
    await harness.outcomes.wait_count(3000, within=20)
    harness.outcomes.assert_once_each(3000)
    assert len(harness.outcomes.accepted) == 3000, harness.outcomes.summary()
    assert sandbox.unique_event_count(A) == 3000
    assert sandbox.duplicate_count(A) == 0
    stats = sandbox.stats
    assert stats.connection_resets == 3
    assert stats.count(500) == 4
    assert stats.count(503) > 0
    assert harness.sink.stats.retries >= 7
    harness.client.assert_contract()


async def test_sink_key_without_subscription_scopes_parks_only_subscriptions(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """A key with events:write only: subscriptions parked (missing_scope), events flow."""
    sandbox.add_account(A, KEY_A, scopes={"events:write"})
    harness = sink_factory({A: factories.merchant(A, KEY_A)})
    events = [factories.event(n, merchant=A) for n in range(500)]
    subscriptions = [factories.subscription(n, merchant=A) for n in range(50)]
    harness.submit([*events[:250], *subscriptions, *events[250:]])
    await harness.outcomes.wait_count(550, within=10)
    # Later events still flow; later subscriptions are parked at once.
    harness.submit([factories.event(n, merchant=A) for n in range(500, 700)])
    harness.submit([factories.subscription(n, merchant=A) for n in range(50, 60)])
    await harness.outcomes.wait_count(760, within=10)
    harness.outcomes.assert_once_each(760)
    parked = harness.outcomes.parked
    assert len(parked) == 60
    assert all(isinstance(p, Parked) and p.reason == "missing_scope" for p in parked)
    assert "subscriptions:write" in parked[0].detail
    assert len(harness.outcomes.accepted) == 700
    assert not harness.outcomes.of(DeadLettered)
    assert sandbox.unique_event_count(A) == 700
    assert sandbox.stats.count(403, account_id=A) == 1
    harness.client.assert_contract()


async def test_sink_subscriptions_are_accepted_per_list(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """Email and SMS sign-ups for two lists: one request per list, all stored."""
    sandbox.add_account(A, KEY_A)
    harness = sink_factory({A: factories.merchant(A, KEY_A)})
    from consumer.outbox.operations import Channel

    ops = [factories.subscription(n, merchant=A, list_id="EMAILS") for n in range(30)]
    ops += [
        factories.subscription(n, merchant=A, channel=Channel.SMS, list_id="PHONES")
        for n in range(20)
    ]
    harness.submit(ops)
    await harness.outcomes.wait_count(50, within=5)
    assert len(harness.outcomes.accepted) == 50
    stored = await sandbox.wait_for_subscriptions(A, 50, timeout=1)
    assert {s.list_id for s in stored} == {"EMAILS", "PHONES"}
    assert len(harness.client.sent) == 2
    harness.client.assert_contract()
    await harness.sink.close(time.monotonic() + 1)
