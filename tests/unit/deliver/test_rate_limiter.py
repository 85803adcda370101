"""``RateLimiter`` with a manual clock: sliding windows, Retry-After, RateLimit-* headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.deliver.rate_limiter import EndpointLimits, RateLimiter, Window, limits_from_settings
from consumer.deliver.responses import RateLimitHeaders
from consumer.klaviyo import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES
from consumer.settings import DeliverySettings

EVENTS = BULK_CREATE_EVENTS
M = "merchant-a"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, burst: int = 10, steady: int = 150, margin: float = 0.0) -> RateLimiter:
    limits = {EVENTS: EndpointLimits(Window(burst, 1.0), Window(steady, 60.0))}
    return RateLimiter(limits, clock=clock, margin_seconds=margin)


def send_all_allowed(
    rl: RateLimiter, clock: Clock, until: float, step: float = 0.001
) -> list[float]:
    """Send whenever allowed until ``until``; returns the send times."""
    sent: list[float] = []
    while clock.now < until:
        delay = rl.delay(M, EVENTS)
        if delay == 0:
            rl.record_send(M, EVENTS)
            sent.append(clock.now)
        else:
            clock.now += delay
    return sent


def test_limits_from_settings_maps_both_endpoints() -> None:
    limits = limits_from_settings(DeliverySettings())
    assert limits[BULK_CREATE_EVENTS] == EndpointLimits(Window(10, 1.0), Window(150, 60.0))
    assert limits[BULK_SUBSCRIBE_PROFILES] == EndpointLimits(Window(75, 1.0), Window(750, 60.0))


def test_delay_burst_allows_10_then_waits_for_the_oldest_to_age_out() -> None:
    clock = Clock()
    rl = limiter(clock)
    for _ in range(10):
        assert rl.delay(M, EVENTS) == 0
        rl.record_send(M, EVENTS)
        clock.now += 0.01
    assert rl.delay(M, EVENTS) == pytest.approx(1.0 - 0.1)


def test_delay_steady_caps_a_minute_at_150() -> None:
    clock = Clock()
    rl = limiter(clock)
    sent = send_all_allowed(rl, clock, until=clock.now + 120)
    first_minute = [t for t in sent if t < 1060.0]
    assert len(first_minute) == 150
    assert len(sent) == 300


@settings(max_examples=50, deadline=None)
@given(
    burst=st.integers(1, 12),
    steady=st.integers(1, 40),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=80),
)
def test_no_window_of_any_alignment_exceeds_its_limit(
    burst: int, steady: int, gaps: list[float]
) -> None:
    """Whatever the arrival pattern, any 1 s holds ≤ burst and any 60 s ≤ steady sends."""
    clock = Clock()
    rl = limiter(clock, burst, steady)
    sent: list[float] = []
    for gap in gaps:
        clock.now += gap
        clock.now += rl.delay(M, EVENTS)
        assert rl.delay(M, EVENTS) == 0
        rl.record_send(M, EVENTS)
        sent.append(clock.now)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 1.0) <= burst
        assert sum(1 for t in sent if start <= t < start + 60.0) <= steady


def test_throttled_blocks_for_retry_after_plus_margin() -> None:
    clock = Clock()
    rl = limiter(clock, margin=0.05)
    rl.throttled(M, EVENTS, 3.0)
    assert rl.delay(M, EVENTS) == pytest.approx(3.05)
    assert rl.blocked_for(M, EVENTS) == pytest.approx(3.05)
    clock.now += 3.05
    assert rl.delay(M, EVENTS) == 0
    assert rl.delay("merchant-b", EVENTS) == 0


def test_throttled_shorter_retry_after_does_not_shorten_a_block() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.throttled(M, EVENTS, 10.0)
    rl.throttled(M, EVENTS, 1.0)
    assert rl.delay(M, EVENTS) == pytest.approx(10.0)


def test_observe_remaining_zero_waits_for_reset() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.record_send(M, EVENTS)
    rl.observe(M, EVENTS, RateLimitHeaders(150, 0, 12.0))
    assert rl.delay(M, EVENTS) == pytest.approx(12.0)
    clock.now += 12.0
    assert rl.delay(M, EVENTS) == 0


def test_observe_remaining_counts_down_with_our_sends() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.observe(M, EVENTS, RateLimitHeaders(150, 2, 30.0))
    for _ in range(2):
        assert rl.delay(M, EVENTS) == 0
        rl.record_send(M, EVENTS)
    assert rl.delay(M, EVENTS) == pytest.approx(30.0)


def test_observe_quota_expires_at_reset() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.observe(M, EVENTS, RateLimitHeaders(150, 1, 5.0))
    clock.now += 6
    for _ in range(3):
        assert rl.delay(M, EVENTS) == 0
        rl.record_send(M, EVENTS)


def test_observe_none_changes_nothing() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.observe(M, EVENTS, None)
    assert rl.delay(M, EVENTS) == 0


def test_unknown_endpoint_is_an_error() -> None:
    with pytest.raises(KeyError):
        limiter(Clock()).delay(M, "get_accounts")


def test_prune_forgets_idle_merchants_only() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.record_send(M, EVENTS)
    rl.record_send("merchant-b", EVENTS)
    clock.now += 30
    rl.record_send("merchant-b", EVENTS)
    clock.now += 31
    rl.prune()
    assert set(rl._lanes) == {("merchant-b", EVENTS)}
