"""Restart a stage in place when its Kafka clients cannot go on.

Some failures are outside a client's power to heal: a static consumer fenced by its own
rejoin after the coordinator was gone longer than the session timeout, or a transaction step
that timed out while the broker restarted (librdkafka then refuses every retry). Kafka's
answer is a new client. A stage holds nothing that outlives its clients (state is restored
from the changelog, uncommitted work is redone from the committed offsets), so building the
whole stage again is exactly what a process restart would do, minus the lost HTTP endpoints
and integrations table. Other errors (bugs, bad configuration) still end the process, and so
does a stage that keeps failing (``max_failures`` in a row, none after a healthy run): then the
condition is not transient (e.g. two replicas sharing an instance id fence each other), and
the orchestrator's restart loop is where an operator will see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from consumer.kafka import KafkaError
from consumer.observability import Metrics, bind_log_context

__all__ = ["supervise"]

log = logging.getLogger(__name__)

_FIRST_DELAY_SECONDS = 1.0
_MAX_DELAY_SECONDS = 30.0
_HEALTHY_SECONDS = 60.0
"""A stage that ran this long before failing counts as a first failure again."""
_MAX_FAILURES = 5


async def supervise(
    stage: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    metrics: Metrics,
    first_delay: float = _FIRST_DELAY_SECONDS,
    max_failures: int = _MAX_FAILURES,
) -> None:
    """Await ``run()`` (a new stage each call) until it returns; restart it after Kafka
    errors that a new client recovers from (fatal or retriable), with exponential back-off.

    Raises:
        KafkaError: a permanent Kafka error (e.g. a topic missing), the ``max_failures``-th
            failure in a row, or any error once ``stop`` is set.
    """
    bind_log_context(stage=stage)  # this task runs only this stage
    delay, failures = first_delay, 0
    while True:
        started = time.monotonic()
        try:
            await run()
        except KafkaError as exc:
            if time.monotonic() - started >= _HEALTHY_SECONDS:
                delay, failures = first_delay, 0
            failures += 1
            if stop.is_set() or not (exc.fatal or exc.retriable) or failures >= max_failures:
                raise
            metrics.stage_restarts.labels(stage, exc.name or type(exc).__name__).inc()
            log.exception(
                "stage failed, restarting it with new Kafka clients",
                extra={"stage": stage, "error": str(exc), "retry_s": delay},
            )
            with contextlib.suppress(TimeoutError):  # the back-off, unless stop comes first
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            delay = min(delay * 2, _MAX_DELAY_SECONDS)
        else:
            return
