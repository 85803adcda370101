"""The sink against the sandbox over HTTP: batching, limits and the contract."""

from __future__ import annotations

import time

from consumer.sandbox import Sandbox
from tests.integration.deliver.conftest import SinkFactory
from tests.unit.deliver import factories

MERCHANT = factories.MERCHANT
KEY = "pk_test_merchant_a_0001"


async def test_sink_25k_events_in_at_most_26_requests(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """25,000 events for one merchant: ≤ 26 requests, none over 1,000 events or 5 MB."""
    sandbox.add_account(MERCHANT, KEY)
    harness = sink_factory({MERCHANT: factories.merchant(key=KEY)})
    started = time.monotonic()
    harness.submit([factories.event(n) for n in range(25_000)])
    await harness.outcomes.wait_count(25_000, within=60)
    elapsed = time.monotonic() - started
    assert len(harness.outcomes.accepted) == 25_000
    harness.outcomes.assert_once_each(25_000)
    assert sandbox.unique_event_count(MERCHANT) == 25_000
    sent = harness.client.sent
    assert len(sent) <= 26, len(sent)
    assert all(r.status == 202 for r in sent)
    assert max(r.events() for r in sent) <= 1_000
    assert max(len(r.body) for r in sent) <= 5_000_000
    assert sandbox.stats.count(429) == 0
    print(f"25k events: {len(sent)} requests in {elapsed:.2f} s")
    harness.client.assert_contract()
