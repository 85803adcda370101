"""The sink against events Klaviyo refuses although the contract allows them (a fault)."""

from __future__ import annotations

from consumer.sandbox import EventRejection, Sandbox
from tests.integration.deliver.conftest import SinkFactory
from tests.unit.deliver import factories

A, KEY_A = "merchant-a", "pk_test_merchant_a_0001"
REASON = "Profile is suppressed for this metric."


async def test_sink_one_refused_event_in_1000_is_dead_lettered_with_klaviyos_reason(
    sandbox: Sandbox, sink_factory: SinkFactory
) -> None:
    """Klaviyo refuses one valid event by pointer: 999 accepted, 1 dead-lettered, its reason."""
    sandbox.add_account(A, KEY_A)
    sandbox.faults(A).reject_events(EventRejection(unique_id="ret-613", detail=REASON))
    harness = sink_factory({A: factories.merchant(A, KEY_A)})
    harness.submit([factories.event(n, merchant=A) for n in range(1000)])
    await harness.outcomes.wait_count(1000, within=15)
    harness.outcomes.assert_once_each(1000)
    assert len(harness.outcomes.accepted) == 999
    [refused] = harness.outcomes.dead_lettered
    assert refused.token == ("p0", 613)
    assert refused.reason == "klaviyo_rejected"
    assert REASON in refused.detail
    assert "/attributes/unique_id" in refused.detail
    assert sandbox.unique_event_count(A) == 999
    assert "ret-613" not in {e.unique_id for e in sandbox.events(A)}
    assert [r.status for r in harness.client.sent] == [400, 202]
    harness.client.assert_contract()
