"""Reaching the broker at start: wait with back-off, then create or check the topics.

A process may well start before its broker (a cluster restart, pods scheduled in any order),
so "no broker answers" is waited out, not fatal, up to ``kafka.startup_timeout_seconds``. Past
that the likeliest cause is the address itself, so the process exits with a configuration
error naming ``kafka.bootstrap_servers``: an unreachable broker and a wrong address look the
same from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from consumer.errors import ConfigError
from consumer.kafka import RetriableKafkaError, wait_until_ready
from consumer.runtime.topics import ensure_service_topics
from consumer.settings import Settings, setting_name

__all__ = ["wait_for_kafka"]

log = logging.getLogger(__name__)

_FIRST_DELAY_SECONDS: Final = 0.5
_MAX_DELAY_SECONDS: Final = 10.0
_ATTEMPT_SECONDS: Final = 5.0
"""Longest wait for one metadata answer: a broker coming up answers within it."""


async def wait_for_kafka(
    settings: Settings, stop: asyncio.Event, first_delay: float = _FIRST_DELAY_SECONDS
) -> bool:
    """Return True once a broker answered and the service's topics are in place, or False
    if ``stop`` was set first.

    Raises:
        ConfigError: no broker answered within ``kafka.startup_timeout_seconds``.
        KafkaError: a topic is missing or has the wrong layout (not waited for), or the
            broker answered but checking the topics kept failing until the timeout.
    """
    kafka = settings.kafka
    timeout = kafka.startup_timeout_seconds
    deadline = time.monotonic() + timeout
    delay = first_delay
    answered = False
    while True:
        # Short attempts first, so the first "waiting" line comes within seconds.
        attempt = min(_ATTEMPT_SECONDS, 1.0 + 2 * delay, max(deadline - time.monotonic(), 0.1))
        try:
            await asyncio.to_thread(wait_until_ready, kafka, attempt)
            answered = True
            created = await asyncio.to_thread(ensure_service_topics, settings)
        except RetriableKafkaError as exc:
            if time.monotonic() >= deadline:
                if answered:  # the address is right; the broker kept failing: a Kafka error
                    raise
                raise ConfigError(
                    f"{setting_name('kafka', 'bootstrap_servers')}: no Kafka broker answered at "
                    f"{kafka.bootstrap_servers} within {timeout:g} s "
                    "(kafka.startup_timeout_seconds)"
                ) from None
            log.warning(
                "waiting for the Kafka broker",
                extra={
                    "setting": "kafka.bootstrap_servers",
                    "address": kafka.bootstrap_servers,
                    "error": str(exc),
                    "retry_s": delay,
                },
            )
            with contextlib.suppress(TimeoutError):  # the back-off, unless stop comes first
                await asyncio.wait_for(stop.wait(), min(delay, deadline - time.monotonic()))
            if stop.is_set():
                return False
            delay = min(delay * 2, _MAX_DELAY_SECONDS)
            continue
        if created:
            log.info("created topics", extra={"topics": created})
        return True
