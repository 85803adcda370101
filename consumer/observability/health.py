"""Liveness and readiness, as the runtime reports them.

Liveness = every consume loop turned recently (a wedged loop fails the probe and the pod is
restarted). Readiness = every component said it is ready (integrations loaded, partitions
assigned, state restored).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Health"]


class Health:
    """Heartbeats of loops and readiness flags of components."""

    def __init__(
        self, stale_after_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stale_after = stale_after_seconds
        self._clock = clock
        self._beats: dict[str, float] = {}
        self._ready: dict[str, bool] = {}

    def beat(self, loop: str) -> None:
        """Record that ``loop`` just turned."""
        self._beats[loop] = self._clock()

    def set_ready(self, component: str, ready: bool) -> None:
        """Mark ``component`` ready or not ready."""
        self._ready[component] = ready

    def live(self) -> tuple[bool, dict[str, float]]:
        """Whether every loop turned within the staleness limit, and each loop's age (s)."""
        now = self._clock()
        ages = {loop: round(now - at, 3) for loop, at in self._beats.items()}
        return all(age <= self._stale_after for age in ages.values()), ages

    def ready(self) -> tuple[bool, dict[str, bool]]:
        """Whether every registered component is ready, and each one's state."""
        states = dict(self._ready)
        return bool(states) and all(states.values()), states
