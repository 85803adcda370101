"""``Batcher``: count, bytes and linger cuts, grouping, and coalescing of repeated keys."""

from __future__ import annotations

from decimal import Decimal

import pytest

from consumer.deliver.batcher import Batcher
from consumer.deliver.errors import OperationTooLarge
from consumer.deliver.request_builder import build_event_batch, serialize
from consumer.klaviyo import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES
from consumer.outbox.operations import Channel, Profile
from consumer.settings import DeliverySettings
from tests.unit.deliver import factories

M = factories.MERCHANT
EVENTS = (M, BULK_CREATE_EVENTS)
SUBSCRIPTIONS = (M, BULK_SUBSCRIBE_PROFILES)


def batcher(**settings: object) -> Batcher:
    return Batcher(DeliverySettings.model_validate({"linger_seconds": 0.5, **settings}))


def test_due_in_is_none_when_empty_and_linger_until_full() -> None:
    b = batcher()
    assert b.due_in(EVENTS, 0.0) is None
    b.add(factories.event(0), "t0", 10.0)
    assert b.due_in(EVENTS, 10.1) == pytest.approx(0.4)
    assert b.due_in(EVENTS, 10.6) == 0.0
    assert b.due_in(EVENTS, 10.1, flushing=True) == 0.0


def test_linger_counts_from_when_the_operation_was_produced() -> None:
    b = batcher()
    b.add(factories.event(0), "t0", 10.0, produced_at=9.7)  # waited upstream before it was read
    assert b.due_in(EVENTS, 10.0) == pytest.approx(0.2)
    assert b.due_in(EVENTS, 10.0, idle_since=9.9) == pytest.approx(0.2)  # no backlog: ignored
    ahead = batcher()
    ahead.add(factories.event(1), "t1", 10.0, produced_at=11.0)  # ahead of the clock: from now
    assert ahead.due_in(EVENTS, 10.0) == pytest.approx(0.5)


def test_under_backlog_linger_counts_from_queueing_or_the_lanes_last_request() -> None:
    b = batcher()
    b.add(factories.event(0), "t0", 10.0, produced_at=1.0)  # read long after it was produced
    assert b.due_in(EVENTS, 12.0, backlog=True) == pytest.approx(8.0)
    assert b.due_in(EVENTS, 12.0, idle_since=11.9, backlog=True) == pytest.approx(9.9)
    assert b.due_in(EVENTS, 12.0, idle_since=9.0, backlog=True) == pytest.approx(8.0)


def test_under_backlog_a_partial_batch_waits_longer_but_a_full_one_goes_at_once() -> None:
    b = batcher(batch_max_events=3)
    b.add(factories.event(0), "t0", 10.0)
    assert b.due_in(EVENTS, 10.6) == 0.0
    assert b.due_in(EVENTS, 10.6, backlog=True) == pytest.approx(9.4)
    assert b.due_in(EVENTS, 20.0, backlog=True) == 0.0  # bounded: waited out, send what is there
    b.add(factories.event(1), "t1", 10.7)
    b.add(factories.event(2), "t2", 10.8)
    assert b.due_in(EVENTS, 10.8, backlog=True) == 0.0


def test_cut_by_count_keeps_order_and_rest_queued() -> None:
    b = batcher(batch_max_events=3)
    for n in range(7):
        b.add(factories.event(n), n, 0.0)
    assert b.due_in(EVENTS, 0.0) == 0.0
    cuts = [b.cut(EVENTS) for _ in range(3)]
    assert [[p.token for p in c.items] for c in cuts if c] == [[0, 1, 2], [3, 4, 5], [6]]
    assert b.cut(EVENTS) is None
    assert b.queued(EVENTS) == 0


def test_cut_by_bytes_stays_under_max_bytes_measured_on_the_body() -> None:
    b = batcher(batch_max_bytes=20_000)
    big = {"note": "x" * 1_500}
    for n in range(40):
        b.add(factories.event(n, properties=big), n, 0.0)
    assert b.due_in(EVENTS, 0.0) == 0.0  # full by bytes, no linger
    sizes = []
    while (batch := b.cut(EVENTS)) is not None:
        size = len(serialize(batch.build().body))
        assert size <= 20_000
        sizes.append((len(batch.items), size))
    assert sum(n for n, _ in sizes) == 40
    assert all(size > 20_000 - 1_700 for _, size in sizes[:-1])  # batches are filled


def test_a_batch_sends_the_body_its_operations_make() -> None:
    # The batcher serialises each event once (for its size) and the request reuses those
    # bytes: the body must be the one built from the operations themselves.
    b = batcher()
    events = [
        factories.event(n, shopper=n % 3, properties={"amount": Decimal("12.3400"), "n": n})
        for n in range(9)
    ]
    for n, event in enumerate(events):
        b.add(event, n, 0.0)
    batch = b.cut(EVENTS)
    assert batch is not None
    assert [p.token for p in batch.items] == list(range(9))
    built = batch.build()
    expected = build_event_batch(events)
    assert serialize(built.body) == serialize(expected.body)
    assert built.entries == expected.entries == ((0, 3, 6), (1, 4, 7), (2, 5, 8))


def test_add_operation_too_large_for_any_request_is_refused() -> None:
    b = batcher(batch_max_bytes=5_000)
    with pytest.raises(OperationTooLarge):
        b.add(factories.event(0, properties={"note": "x" * 6_000}), "t", 0.0)
    assert b.queued(EVENTS) == 0


def test_repeated_key_is_coalesced_into_the_queued_one() -> None:
    b = batcher()
    first, coalesced = b.add(factories.event(0), "t0", 0.0)
    assert not coalesced
    # Same profile identity (e-mail case differs), metric and unique_id: the same fact.
    repeat = factories.event(0, profile=Profile(email="SHOPPER0@example.com"))
    again, coalesced = b.add(repeat, "t1", 0.0)
    assert coalesced
    assert again is first
    assert first.followers == [("t1", repeat)]
    assert b.queued(EVENTS) == 1


def test_repeated_key_in_flight_is_coalesced_until_released() -> None:
    b = batcher()
    first, _ = b.add(factories.event(0), "t0", 0.0)
    batch = b.cut(EVENTS)
    assert batch is not None
    assert b.add(factories.event(0), "t1", 0.0)[1]  # in flight: coalesced
    b.release(first)
    _, coalesced = b.add(factories.event(0), "t2", 0.0)
    assert not coalesced  # finished: a later repeat is sent (Klaviyo deduplicates)


def test_same_unique_id_other_metric_or_profile_or_merchant_is_not_a_repeat() -> None:
    b = batcher()
    b.add(factories.event(0), "a", 0.0)
    assert not b.add(factories.event(0, metric="Return Created Item"), "b", 0.0)[1]
    assert not b.add(factories.event(0, shopper=99), "c", 0.0)[1]
    assert not b.add(factories.event(0, merchant="merchant-b"), "d", 0.0)[1]


def test_cut_never_holds_two_equal_keys() -> None:
    b = batcher()
    for n in range(50):
        b.add(factories.event(n % 10), n, 0.0)
    batch = b.cut(EVENTS)
    assert batch is not None
    assert len(batch.items) == 10
    assert sum(len(p.followers) for p in batch.items) == 40


def test_subscriptions_cut_one_list_at_a_time_in_order() -> None:
    b = batcher()
    ops = [
        factories.subscription(0, list_id="A"),
        factories.subscription(1, list_id="B"),
        factories.subscription(2, list_id="A"),
        factories.subscription(3, list_id="A", historical_import=True),
        factories.subscription(4, list_id="B"),
    ]
    for n, op in enumerate(ops):
        b.add(op, n, 0.0)
    cuts = []
    while (batch := b.cut(SUBSCRIPTIONS)) is not None:
        cuts.append([p.token for p in batch.items])
        batch.build()  # one group per request, or this raises
    assert cuts == [[0, 2], [1, 4], [3]]


def test_subscriptions_full_at_1000_profiles() -> None:
    b = batcher()
    for n in range(1_001):
        b.add(factories.subscription(n), n, 0.0)
    batch = b.cut(SUBSCRIPTIONS)
    assert batch is not None
    assert len(batch.items) == 1_000


def test_subscription_repeat_same_list_and_channel_is_coalesced() -> None:
    b = batcher()
    b.add(factories.subscription(0), "a", 0.0)
    assert b.add(factories.subscription(0), "b", 0.0)[1]
    assert not b.add(factories.subscription(0, channel=Channel.SMS), "c", 0.0)[1]
    assert not b.add(factories.subscription(0, list_id="OTHER"), "d", 0.0)[1]


def test_drain_empties_a_lane_only() -> None:
    b = batcher()
    b.add(factories.event(0), "e", 0.0)
    b.add(factories.subscription(0), "s", 0.0)
    assert [p.token for p in b.drain(EVENTS)] == ["e"]
    assert list(b.lanes()) == [SUBSCRIPTIONS]


def test_live_operations_go_before_queued_history_in_order() -> None:
    """Backfilled events wait behind live ones of their lane; each kind keeps its order."""
    b = batcher(batch_max_events=4)
    for n in range(5):
        b.add(factories.event(n, backfill=True), f"history-{n}", 0.0)
    b.add(factories.event(10), "live-10", 1.0)
    b.add(factories.event(5, backfill=True), "history-5", 1.0)
    b.add(factories.event(11), "live-11", 2.0)
    cuts = [b.cut(EVENTS) for _ in range(2)]
    assert [[p.token for p in c.items] for c in cuts if c] == [
        ["live-10", "live-11", "history-0", "history-1"],
        ["history-2", "history-3", "history-4", "history-5"],
    ]
    b.add(factories.event(6, backfill=True), "history-6", 3.0)
    b.add(factories.event(12), "live-12", 3.0)
    cut = b.cut(EVENTS)
    assert cut is not None
    assert [p.token for p in cut.items] == ["live-12", "history-6"]


def test_historical_subscriptions_wait_behind_live_ones() -> None:
    b = batcher()
    b.add(factories.subscription(0, historical_import=True), "history", 0.0)
    b.add(factories.subscription(1), "live", 0.0)
    cut = b.cut(SUBSCRIPTIONS)
    assert cut is not None
    assert [p.token for p in cut.items] == ["live"]  # one request per import flag
