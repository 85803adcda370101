"""Where a bench run's wall time goes: seconds per phase (set-up, each job, each child's
start-up and stop), logged as they end and written with the results."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PHASES", "Phases"]

log = logging.getLogger("bench")


class Phases:
    """Wall seconds per phase name, summed over repeats."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` more for ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        log.info("%s: %.2f s", name, seconds)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time the block as ``name``."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started)


PHASES = Phases()
