"""``TimerIndex`` failures are per order: a state that does not decode is removed and reported,
a timer whose derivation fails is reported and dropped, and every other order goes on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from consumer.merchant import MerchantSettings
from consumer.runtime.timers import TimerIndex
from consumer.state.shipments import (
    OrderState,
    StateFormatError,
    decode_order_state,
    encode_order_state,
)
from consumer.state.store import StateStore
from tests.unit.derive.records import CONFIG, MERCHANT
from tests.unit.runtime.test_timer_firing import DUE, SECOND, in_transit

CORRUPT = b"\x01not zstd at all"


def index_of(
    values: dict[str, bytes],
    merchants: Callable[[str], MerchantSettings | None] = lambda _: MERCHANT,
) -> tuple[TimerIndex, StateStore[OrderState]]:
    """A partition 0 restored from ``values``, an indexing pass started; a pass per scan."""
    store: StateStore[OrderState] = StateStore(decode_order_state, encode_order_state)
    partition = store.empty()
    for key, value in values.items():
        partition.restore(key.encode(), value)
    store.install(0, partition)
    index = TimerIndex(store, CONFIG, merchants, sweep_seconds=0.0)
    index.reindex([0])
    return index, store


def healthy(order_id: str) -> bytes:
    return encode_order_state(replace(in_transit(), order_id=order_id))


def test_undecodable_state_is_removed_and_reported_and_the_other_orders_are_indexed() -> None:
    index, store = index_of({"bad": CORRUPT, "good": healthy("good")})
    removed, failures = index.scan(DUE, budget=100)
    assert removed == 0  # expiry is not what removed it
    (failure,) = failures
    assert (failure.partition, failure.order_id, failure.state) == (0, "bad", CORRUPT)
    assert isinstance(failure.error, StateFormatError)
    assert failure.removed and failure.merchant_id is None
    assert list(store.changelog_records()) == [(0, b"bad", None)]  # the tombstone
    fired, failures = index.fire(DUE)
    assert failures == []
    assert [result.state.order_id for _, result in fired if result.state] == ["good"]


def test_failing_timer_is_reported_once_and_dropped_while_the_others_fire() -> None:
    # A state stored under another order's key decodes, but its timer refuses to derive.
    index, store = index_of({"a-wrong-key": healthy("good-1"), "good-2": healthy("good-2")})
    assert index.scan(DUE, budget=100) == (0, [])
    fired, failures = index.fire(DUE)
    assert [result.state.order_id for _, result in fired if result.state] == ["good-2"]
    (failure,) = failures
    assert (failure.order_id, failure.removed, failure.merchant_id) == (
        "a-wrong-key",
        False,
        in_transit().merchant_id,
    )
    assert isinstance(failure.error, ValueError)
    assert failure.state == healthy("good-1")  # kept, and its bytes in the report
    assert store.partition(0).get("a-wrong-key") is not None
    # Later passes (sweep_seconds=0: one per scan) leave it out, so it is not reported again.
    for _ in range(3):
        assert index.scan(DUE + SECOND, budget=100) == (0, [])
    assert index.fire(DUE + SECOND) == ([], [])
    # A new indexing pass (after a restore or an abort) tries it again.
    index.reindex([0])
    assert index.scan(DUE + SECOND, budget=100) == (0, [])
    assert len(index.fire(DUE + SECOND)[1]) == 1


def test_failed_order_is_timed_again_once_its_state_changes() -> None:
    index, store = index_of({"a-wrong-key": healthy("good-1")})
    index.scan(DUE, budget=100)
    assert len(index.fire(DUE)[1]) == 1
    fixed = replace(in_transit(), order_id="a-wrong-key")
    store.partition(0).put("a-wrong-key", fixed)
    index.schedule(0, "a-wrong-key", fixed)
    fired, failures = index.fire(DUE)
    assert failures == [] and len(fired) == 1


def test_scan_reports_an_order_whose_timer_cannot_be_worked_out_once() -> None:
    def merchants(merchant_id: str) -> MerchantSettings:
        if merchant_id == "broken":
            raise LookupError(f"no settings for {merchant_id}")
        return MERCHANT

    broken = replace(in_transit(), order_id="bad", merchant_id="broken")
    values = {"bad": encode_order_state(broken), "good": healthy("good")}
    index, _ = index_of(values, merchants)
    removed, failures = index.scan(DUE, budget=100)
    assert removed == 0
    (failure,) = failures
    assert (failure.order_id, failure.merchant_id, failure.removed) == ("bad", "broken", False)
    assert isinstance(failure.error, LookupError)
    assert index.scan(DUE, budget=100) == (0, [])  # left out of the next pass
    fired, failures = index.fire(DUE)
    assert failures == []
    assert [result.state.order_id for _, result in fired if result.state] == ["good"]
