"""When to try a failing request again, and when to give up and park: pure decisions.

Transient failures (5xx, resets, timeouts, edge challenges) are retried after a jittered
exponential backoff; a 429 after its ``Retry-After``. Both spend one budget,
``DeliverySettings.retry_budget_seconds``, counted from the first failure of the batch in
hand: a wait that would end past it parks the merchant's endpoint instead, so a long outage or
a long 429 costs that merchant a park, never anyone else a stall.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from consumer.deliver.errors import DeliveryError, Throttled

__all__ = ["RetryBudget", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The backoff shape for transient failures."""

    initial_seconds: float = 0.5
    max_seconds: float = 30.0
    multiplier: float = 2.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Wait before retry ``attempt`` (1-based): half fixed, half random ("equal jitter").

        The fixed half keeps retries from hammering; the random half spreads merchants that
        failed together (one Klaviyo outage) so they do not come back in lockstep.
        """
        ceiling = min(self.max_seconds, self.initial_seconds * self.multiplier ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class RetryBudget:
    """Retry bookkeeping of one batch in hand (reset after each success)."""

    def __init__(self, policy: RetryPolicy, budget_seconds: float, rng: random.Random) -> None:
        self._policy = policy
        self._budget = budget_seconds
        self._rng = rng
        self._attempt = 0
        self._failing_since: float | None = None

    def succeeded(self) -> None:
        """The request went through: the next failure starts a fresh budget."""
        self._attempt, self._failing_since = 0, None

    def next_wait(self, error: DeliveryError, now: float) -> float | None:
        """Seconds to wait before retrying after ``error`` (retriable), or None to park."""
        if self._failing_since is None:
            self._failing_since = now
        if isinstance(error, Throttled):
            wait = error.retry_after
        else:
            self._attempt += 1
            wait = self._policy.backoff(self._attempt, self._rng)
        if now + wait - self._failing_since > self._budget:
            return None
        return wait
