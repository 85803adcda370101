"""TimerIndex scans: bounded work per call, retention tombstones, stall timers indexed."""

from __future__ import annotations

from datetime import timedelta

from consumer.derive import derive_order
from consumer.runtime.timers import TimerIndex
from consumer.state import OrderState, StateStore, decode_order_state, encode_order_state
from tests.unit.derive.records import CONFIG, MERCHANT, NOW, order_record, shipment


def derived(order_id: str, status: str) -> OrderState:
    record = order_record(
        shipment(shipment_id=f"{order_id}-s1", carrier_status=status), order_id=order_id
    )
    result = derive_order(record, MERCHANT, None, NOW, CONFIG)
    assert result.state is not None
    return result.state


def index_of(
    states: list[OrderState], sweep_seconds: float = 3600.0
) -> tuple[TimerIndex, StateStore[OrderState]]:
    store: StateStore[OrderState] = StateStore(decode_order_state, encode_order_state)
    partition = store.empty()
    for state in states:
        partition.restore(state.order_id.encode(), encode_order_state(state))
    store.install(0, partition)
    timers = TimerIndex(store, CONFIG, lambda _: MERCHANT, sweep_seconds)
    timers.reindex([0])
    return timers, store


def test_indexing_scan_removes_expired_orders_and_schedules_live_ones_budget_by_budget() -> None:
    states = [derived("done-1", "DELIVERED"), derived("done-2", "DELIVERED")]
    states.append(derived("moving", "IN_TRANSIT"))
    timers, store = index_of(states)
    later = NOW + CONFIG.finished_retention
    first = timers.scan(later, budget=2)  # two of the three keys (in the store's order)
    assert timers.scanning
    second = timers.scan(later, budget=2)
    assert first[0] + second[0] == 2
    assert first[1] == second[1] == []
    assert not timers.scanning
    assert sorted(store.changelog_records()) == [(0, b"done-1", None), (0, b"done-2", None)]
    fired, _ = timers.fire(later)  # the live order's stall timer was indexed by the scan
    assert [result.state.order_id for _, result in fired if result.state] == ["moving"]


def test_retention_scan_starts_again_after_each_sweep_interval() -> None:
    timers, _ = index_of([derived("done", "DELIVERED")], sweep_seconds=0.0)
    assert timers.scan(NOW, budget=10) == (0, [])  # the indexing pass: nothing expired yet
    assert timers.scan(NOW + timedelta(days=31), budget=10) == (1, [])  # a retention pass
