"""Wait on a condition with a deadline: the only way tests synchronise (never a bare sleep)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")

_POLL_SECONDS = 0.02


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = _POLL_SECONDS,
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    For state with no change notification to wait on (a file, a process table); prefer
    blocking calls with timeouts (``consume``, ``Future.result``) where they exist.

    Raises:
        AssertionError: ``probe`` stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(interval)
