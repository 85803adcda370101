"""``OffsetTracker``: the committable prefix over submitted offsets, in-flight counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.deliver.offsets import OffsetTracker


def test_committable_is_none_until_the_first_offset_finishes() -> None:
    t = OffsetTracker()
    t.submit(0, 5)
    t.submit(0, 6)
    assert t.committable(0) is None
    t.finish(0, 6)
    assert t.committable(0) is None  # 5 is still open
    t.finish(0, 5)
    assert t.committable(0) == 7
    assert t.in_flight(0) == 0


def test_gaps_between_submitted_offsets_do_not_block_the_prefix() -> None:
    """Transaction markers and aborted records take offsets that are never submitted."""
    t = OffsetTracker()
    for offset in (10, 12, 15):
        t.submit("p", offset)
    t.finish("p", 10)
    assert t.committable("p") == 11
    t.finish("p", 15)
    assert t.committable("p") == 11
    t.finish("p", 12)
    assert t.committable("p") == 16


def test_in_flight_counts_unfinished_per_partition() -> None:
    t = OffsetTracker()
    for offset in range(5):
        t.submit(0, offset)
    t.submit(1, 0)
    t.finish(0, 3)
    assert (t.in_flight(0), t.in_flight(1), t.in_flight(2)) == (4, 1, 0)
    assert t.total_in_flight() == 5


def test_finish_twice_is_harmless() -> None:
    t = OffsetTracker()
    t.submit(0, 1)
    t.submit(0, 2)
    t.finish(0, 2)
    t.finish(0, 2)
    t.finish(0, 1)
    t.finish(0, 1)
    assert t.committable(0) == 3
    assert t.in_flight(0) == 0


def test_errors_for_unknown_or_out_of_order_offsets() -> None:
    t = OffsetTracker()
    t.submit(0, 5)
    with pytest.raises(ValueError):
        t.submit(0, 5)
    with pytest.raises(KeyError):
        t.finish(0, 7)
    with pytest.raises(KeyError):
        t.finish(9, 0)
    t.submit(0, 8)
    with pytest.raises(KeyError):
        t.finish(0, 6)  # a gap, never submitted


def test_revoke_forgets_the_partition() -> None:
    t = OffsetTracker()
    t.submit(0, 1)
    t.revoke(0)
    assert t.partitions() == []
    assert t.committable(0) is None
    t.submit(0, 0)  # a new assignment may start anywhere


@given(st.data())
def test_committable_is_one_past_the_longest_finished_prefix(data: st.DataObject) -> None:
    offsets = sorted(data.draw(st.sets(st.integers(0, 200), min_size=1, max_size=40)))
    order = data.draw(st.permutations(offsets))
    count = data.draw(st.integers(0, len(order)))
    t = OffsetTracker()
    for offset in offsets:
        t.submit(0, offset)
    finished = set(order[:count])
    for offset in order[:count]:
        t.finish(0, offset)
    prefix = 0
    while prefix < len(offsets) and offsets[prefix] in finished:
        prefix += 1
    expected = offsets[prefix - 1] + 1 if prefix else None
    assert t.committable(0) == expected
    assert t.in_flight(0) == len(offsets) - count
