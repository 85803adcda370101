"""``RetryPolicy`` and ``RetryBudget``: jittered backoff within one budget, then park."""

from __future__ import annotations

import random

import pytest

from consumer.deliver.errors import KlaviyoUnavailable, Throttled
from consumer.deliver.retry import RetryBudget, RetryPolicy

DOWN = KlaviyoUnavailable("HTTP 503", status=503)


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)])
def test_backoff_is_between_half_and_all_of_the_capped_exponential(
    attempt: int, ceiling: float
) -> None:
    rng = random.Random(1)
    waits = [RetryPolicy().backoff(attempt, rng) for _ in range(200)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 100  # jittered


def test_budget_parks_when_the_next_wait_would_pass_it() -> None:
    budget = RetryBudget(RetryPolicy(1.0, 1.0), budget_seconds=3.0, rng=random.Random(0))
    now = 100.0
    waits = []
    while (wait := budget.next_wait(DOWN, now)) is not None:
        waits.append(wait)
        now += wait
    assert 3 <= len(waits) <= 6
    assert now - 100.0 <= 3.0


def test_budget_throttle_waits_retry_after_and_long_ones_park() -> None:
    budget = RetryBudget(RetryPolicy(), budget_seconds=10.0, rng=random.Random(0))
    assert budget.next_wait(Throttled("429", retry_after=3.0), 0.0) == 3.0
    assert budget.next_wait(Throttled("429", retry_after=30.0), 3.0) is None


def test_budget_resets_after_success() -> None:
    budget = RetryBudget(RetryPolicy(1.0, 1.0), budget_seconds=2.0, rng=random.Random(0))
    assert budget.next_wait(DOWN, 0.0) is not None
    assert budget.next_wait(Throttled("429", retry_after=1.9), 1.0) is None
    budget.succeeded()
    assert budget.next_wait(Throttled("429", retry_after=1.9), 50.0) == 1.9
