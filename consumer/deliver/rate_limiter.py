"""Per merchant and endpoint request pacing, so a healthy merchant never sees a 429.

Klaviyo limits each account with two fixed windows per endpoint, a burst (1 s) and a steady
(60 s) one, whose alignment we cannot see. Keeping a log of our own send times and allowing a
send only while fewer than ``limit`` of them fall in the last ``window`` seconds guarantees
that no window of that length, however aligned, holds more than ``limit`` of our requests.
A small margin on each window absorbs latency jitter between our send and Klaviyo's receipt.

Klaviyo's own view wins when it is stricter: ``Retry-After`` on a 429 blocks the endpoint for
that long, and ``RateLimit-Remaining``/``RateLimit-Reset`` on other answers (the steady window,
which other integrations on the same account share) cap how many more requests go out before
the reset. Nothing here sleeps or does I/O; the clock is injected.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from consumer.deliver.responses import RateLimitHeaders
from consumer.klaviyo.contract import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES
from consumer.settings import DeliverySettings

__all__ = ["EndpointLimits", "RateLimiter", "Window", "limits_from_settings"]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any ``seconds``-long interval."""

    limit: int
    seconds: float


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    """The burst and steady windows of one endpoint (per merchant account)."""

    burst: Window
    steady: Window


def limits_from_settings(settings: DeliverySettings) -> dict[str, EndpointLimits]:
    """Limits by operation id (``bulk_create_events``, ``bulk_subscribe_profiles``)."""
    return {
        BULK_CREATE_EVENTS: EndpointLimits(
            Window(settings.events_burst_per_second, 1.0),
            Window(settings.events_steady_per_minute, 60.0),
        ),
        BULK_SUBSCRIBE_PROFILES: EndpointLimits(
            Window(settings.subscriptions_burst_per_second, 1.0),
            Window(settings.subscriptions_steady_per_minute, 60.0),
        ),
    }


@dataclass(slots=True)
class _Lane:
    """What one merchant has done on one endpoint recently."""

    sends: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    # Klaviyo's last word on the steady window: this many more sends until ``quota_until``.
    quota: int | None = None
    quota_until: float = 0.0


class RateLimiter:
    """Decides when the next request of a merchant to an endpoint may go out.

    Use: ``delay(m, e)`` → wait that long (0 = now) → ``record_send(m, e)`` just before the
    request → ``observe(m, e, headers)`` or ``throttled(m, e, seconds)`` with the answer.
    """

    def __init__(
        self,
        limits: Mapping[str, EndpointLimits],
        *,
        clock: Clock = time.monotonic,
        margin_seconds: float = 0.05,
    ) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._margin = margin_seconds
        self._lanes: dict[tuple[str, str], _Lane] = {}

    def _lane(self, merchant_id: str, endpoint: str) -> _Lane:
        key = (merchant_id, endpoint)
        lane = self._lanes.get(key)
        if lane is None:
            if endpoint not in self._limits:
                raise KeyError(f"no rate limits for endpoint {endpoint!r}")
            lane = self._lanes[key] = _Lane()
        return lane

    def _trim(self, lane: _Lane, endpoint: str, now: float) -> None:
        horizon = now - self._limits[endpoint].steady.seconds - self._margin
        while lane.sends and lane.sends[0] <= horizon:
            lane.sends.popleft()

    def _window_wait(self, lane: _Lane, window: Window, now: float) -> float:
        """Seconds until fewer than ``window.limit`` logged sends lie within the window."""
        if len(lane.sends) < window.limit:
            return 0.0
        # The send that must age out is the limit-th most recent one.
        pivot = lane.sends[-window.limit]
        return max(0.0, pivot + window.seconds + self._margin - now)

    def delay(self, merchant_id: str, endpoint: str) -> float:
        """Seconds until a request may be sent (0.0 = now)."""
        now = self._clock()
        lane = self._lane(merchant_id, endpoint)
        self._trim(lane, endpoint, now)
        limits = self._limits[endpoint]
        waits = [
            lane.blocked_until - now,
            self._window_wait(lane, limits.burst, now),
            self._window_wait(lane, limits.steady, now),
        ]
        if lane.quota is not None and lane.quota <= 0 and now < lane.quota_until:
            waits.append(lane.quota_until + self._margin - now)
        return max(0.0, *waits)

    def record_send(self, merchant_id: str, endpoint: str) -> None:
        """Log a request going out now (call right before sending it)."""
        now = self._clock()
        lane = self._lane(merchant_id, endpoint)
        lane.sends.append(now)
        if lane.quota is not None:
            if now >= lane.quota_until:
                lane.quota = None  # Klaviyo's window has reset; our own log governs again
            else:
                lane.quota -= 1

    def observe(self, merchant_id: str, endpoint: str, headers: RateLimitHeaders | None) -> None:
        """Take Klaviyo's ``RateLimit-*`` view from a non-429 answer (None = no headers)."""
        if headers is None:
            return
        lane = self._lane(merchant_id, endpoint)
        lane.quota = headers.remaining
        lane.quota_until = self._clock() + headers.reset

    def throttled(self, merchant_id: str, endpoint: str, retry_after: float) -> None:
        """A 429 said "not before ``retry_after`` s": block the endpoint for the merchant."""
        lane = self._lane(merchant_id, endpoint)
        lane.blocked_until = max(lane.blocked_until, self._clock() + retry_after + self._margin)

    def blocked_for(self, merchant_id: str, endpoint: str) -> float:
        """Seconds left of a ``Retry-After`` block (0.0 if none); for logs and debug pages."""
        lane = self._lanes.get((merchant_id, endpoint))
        return 0.0 if lane is None else max(0.0, lane.blocked_until - self._clock())

    def prune(self) -> None:
        """Forget merchants with no recent send and no block, bounding memory by activity."""
        now = self._clock()
        for key, lane in list(self._lanes.items()):
            self._trim(lane, key[1], now)
            if not lane.sends and lane.blocked_until <= now and now >= lane.quota_until:
                del self._lanes[key]
