"""Klaviyo's rate limiting: two fixed windows per account and endpoint.

Klaviyo: "rate limited on a per-account basis, and use a fixed-window rate limiting algorithm
with two distinct windows: burst (1-second window) and steady (1-minute window)". Every
non-429 response describes the steady window in ``RateLimit-*`` headers; a 429 carries only
``Retry-After`` (whole seconds). Windows are aligned to multiples of their length on the
injected monotonic clock, so a test that controls the clock controls every decision.

A limiter built with ``enforce=False`` counts nothing and refuses nothing (benchmarks measure
the sender, not Klaviyo's budget); its answers still carry the ``RateLimit-*`` headers, with the
whole steady budget remaining.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from consumer.klaviyo import RateLimit

__all__ = ["Decision", "FixedWindowLimiter"]

BURST_SECONDS = 1.0
STEADY_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    """The limiter's answer to one request.

    ``retry_after`` is set (whole seconds, at least 1) only when the request is refused;
    ``limit``/``remaining``/``reset`` describe the steady window after this request.
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        """The headers Klaviyo sends with this outcome (RateLimit-* or Retry-After, never both)."""
        if not self.allowed:
            return {"Retry-After": str(self.retry_after)}
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


@dataclass
class _Windows:
    burst_start: float = -1.0
    burst_count: int = 0
    steady_start: float = -1.0
    steady_count: int = 0


class FixedWindowLimiter:
    """Counts requests per (account, operation) in burst and steady fixed windows."""

    def __init__(
        self, limits: Mapping[str, RateLimit], clock: Callable[[], float], *, enforce: bool = True
    ) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self.enforce = enforce
        self._windows: dict[tuple[str, str], _Windows] = {}

    def limit(self, operation_id: str) -> RateLimit:
        """The limit in force for an operation. Raises KeyError if it has none."""
        return self._limits[operation_id]

    def operations(self) -> list[str]:
        """Operation ids that have a limit."""
        return list(self._limits)

    def set_limit(self, operation_id: str, limit: RateLimit) -> None:
        """Change an operation's limits (for every account, from the next request on)."""
        self._limits[operation_id] = limit

    def check(self, account_id: str, operation_id: str) -> Decision:
        """Count one request if the account has budget left; refuse it otherwise.

        A refused request does not use up budget, so a client that honours ``Retry-After``
        is served when the window turns.
        """
        limit = self._limits[operation_id]
        now = self._clock()
        if not self.enforce:
            steady_reset = STEADY_SECONDS - now % STEADY_SECONDS
            return Decision(
                allowed=True,
                limit=limit.steady_per_minute,
                remaining=limit.steady_per_minute,
                reset=max(1, math.ceil(steady_reset)),
            )
        windows = self._windows.setdefault((account_id, operation_id), _Windows())
        burst_start = math.floor(now / BURST_SECONDS) * BURST_SECONDS
        steady_start = math.floor(now / STEADY_SECONDS) * STEADY_SECONDS
        if windows.burst_start != burst_start:
            windows.burst_start, windows.burst_count = burst_start, 0
        if windows.steady_start != steady_start:
            windows.steady_start, windows.steady_count = steady_start, 0
        steady_reset = steady_start + STEADY_SECONDS - now
        if windows.steady_count >= limit.steady_per_minute:
            return self._refuse(limit, steady_reset, retry_in=steady_reset)
        if windows.burst_count >= limit.burst_per_second:
            return self._refuse(limit, steady_reset, retry_in=burst_start + BURST_SECONDS - now)
        windows.burst_count += 1
        windows.steady_count += 1
        return Decision(
            allowed=True,
            limit=limit.steady_per_minute,
            remaining=limit.steady_per_minute - windows.steady_count,
            reset=max(1, math.ceil(steady_reset)),
        )

    @staticmethod
    def _refuse(limit: RateLimit, steady_reset: float, retry_in: float) -> Decision:
        return Decision(
            allowed=False,
            limit=limit.steady_per_minute,
            remaining=0,
            reset=max(1, math.ceil(steady_reset)),
            # Never 0: "Immediate retries will always receive a 429 error."
            retry_after=max(1, math.ceil(retry_in)),
        )

    def clear(self) -> None:
        """Forget every window (limits stay)."""
        self._windows.clear()
