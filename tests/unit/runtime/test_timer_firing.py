"""``TimerIndex`` firing: due orders fire once, moved-on states are skipped, rebuilt after an
abort (``test_timers.py`` covers its scans and retention)."""

from __future__ import annotations

from datetime import datetime, timedelta

from consumer.derive import Derivation, derive_order
from consumer.runtime.timers import TimerIndex
from consumer.state.shipments import OrderState, decode_order_state, encode_order_state
from consumer.state.store import StateStore
from tests.unit.derive.records import CONFIG, MERCHANT, NOW, at, order_record, shipment

SCAN = at("2026-11-26T08:00:00Z")
DUE = SCAN + CONFIG.stall_threshold
ORDER = "ord_1001"
SECOND = timedelta(seconds=1)


def in_transit(scanned_at: datetime = SCAN) -> OrderState:
    result = derive_order(
        order_record(shipment(carrier_event_at=scanned_at)), MERCHANT, None, NOW, CONFIG
    )
    assert result.state is not None
    return result.state


def index_with(state: OrderState) -> tuple[TimerIndex, StateStore[OrderState]]:
    store: StateStore[OrderState] = StateStore(decode_order_state, encode_order_state)
    partition = store.empty()
    partition.restore(ORDER.encode(), encode_order_state(state))
    store.install(0, partition)
    index = TimerIndex(store, CONFIG, lambda _: MERCHANT, sweep_seconds=3600.0)
    indexed(index, SCAN)
    return index, store


def indexed(index: TimerIndex, now: datetime) -> None:
    """Run the indexing scan to its end (what a restore or ``rebuild()`` starts)."""
    index.reindex([0])
    scanned(index, now)


def scanned(index: TimerIndex, now: datetime) -> None:
    """Scan as the stage does each turn, until the scans due at ``now`` are done."""
    while True:
        assert index.scan(now, budget=100)[1] == []
        if not index.scanning:
            return


def fired(index: TimerIndex, now: datetime) -> list[tuple[str, Derivation]]:
    """What ``fire`` derived (these tests have no failing orders)."""
    results, failures = index.fire(now)
    assert failures == []
    return results


def test_timer_fires_at_its_due_time_once_and_writes_the_new_state() -> None:
    index, store = index_with(in_transit())
    scanned(index, DUE - SECOND)
    assert fired(index, DUE - SECOND) == []
    results = fired(index, DUE)
    assert [merchant for merchant, _ in results] == [MERCHANT.merchant_id]
    ((_, derivation),) = results
    assert derivation.operations  # the stalled_in_transit event
    assert store.partition(0).get(ORDER) == derivation.state
    scanned(index, DUE + timedelta(days=1))
    assert fired(index, DUE + timedelta(days=1)) == []  # consumed: never again


def test_timer_beyond_the_horizon_is_held_once_the_clock_nears_it() -> None:
    index, _ = index_with(in_transit())  # indexed at SCAN: DUE is 72 h away, not held
    assert fired(index, DUE) == []
    scanned(index, DUE - timedelta(minutes=30))  # the clock neared the horizon: a new pass
    assert len(fired(index, DUE)) == 1


def test_timer_of_a_state_that_moved_on_is_skipped() -> None:
    index, store = index_with(in_transit())
    scanned(index, DUE - SECOND)  # the timer at DUE is held
    later = in_transit(scanned_at=SCAN + timedelta(hours=10))  # a new scan postpones the stall
    store.partition(0).put(ORDER, later)
    index.schedule(0, ORDER, later)
    assert fired(index, DUE) == []
    scanned(index, DUE + timedelta(hours=10))
    assert len(fired(index, DUE + timedelta(hours=10))) == 1


def test_timer_popped_in_an_aborted_transaction_fires_again_after_rebuild() -> None:
    index, store = index_with(in_transit())
    scanned(index, DUE - SECOND)
    assert len(fired(index, DUE)) == 1
    store.abort()  # the transaction that carried the event failed
    assert fired(index, DUE) == []  # the heap entry is gone ...
    indexed(index, DUE)  # what rebuild() starts after an abort
    assert len(fired(index, DUE)) == 1  # ... and found again from the rewound state


def test_timer_of_a_dropped_partition_never_fires() -> None:
    index, store = index_with(in_transit())
    scanned(index, DUE - SECOND)
    index.drop([0])
    store.drop([0])
    assert fired(index, DUE + timedelta(days=1)) == []
