"""Deliver under a backlog: the deliver stage drains a full outbox into the sandbox, with the
sandbox's rate limits lifted and the sender's own raised, so the sender itself is measured."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from typing import Any

from bench.stack import BenchStack, GroupProgress, JobTopics, follow
from consumer.klaviyo.contract import BULK_CREATE_EVENTS

__all__ = ["UNLIMITED", "request_sizes", "run_deliver"]

UNLIMITED = {
    "events_burst_per_second": 10_000,
    "events_steady_per_minute": 600_000,
    "subscriptions_burst_per_second": 10_000,
    "subscriptions_steady_per_minute": 600_000,
}
FULL = 990  # "under backlog requests must carry >= 990 events"


def request_sizes(stack: BenchStack) -> tuple[list[int], list[int], list[float]]:
    """Events per accepted bulk request under backlog, per tail request, and every event's
    receive time.

    Under backlog = every request but each merchant's last, the tail, which carries the end
    of the outbox whatever the batching does.
    """
    sizes: list[int] = []
    tails: list[int] = []
    times: list[float] = []
    for merchant in stack.merchants:
        events = stack.sandbox.events(merchant.merchant_id)
        times += [e.received_at.timestamp() for e in events]
        per_request = Counter(
            e.request_number for e in events if e.operation_id == BULK_CREATE_EVENTS
        )
        numbers = sorted(per_request)
        sizes += [per_request[n] for n in numbers[:-1]]
        tails += [per_request[n] for n in numbers[-1:]]
    return sizes, tails, sorted(times)


def _subscriptions(stack: BenchStack) -> int:
    return sum(len(stack.sandbox.subscriptions(m.merchant_id)) for m in stack.merchants)


async def run_deliver(stack: BenchStack, source: JobTopics, name: str) -> dict[str, Any]:
    """Deliver the outbox that ``source`` (a derive job) wrote; its figures."""
    outbox = source.names()["outbox"]
    topics = stack.job("deliver", source.inputs)
    group = f"{topics.prefix}-deliver"
    progress = await asyncio.to_thread(GroupProgress, stack.bootstrap_servers, group, [outbox])
    try:
        stack.sandbox.reset()
        overrides = stack.overrides(topics, topics={"outbox": outbox}, delivery=UNLIMITED)
        child = stack.service(name, "deliver", overrides)
        with child.running():
            await child.wait_ready()  # and derive has stopped: its outbox is final
            total = await asyncio.to_thread(progress.transactional_end)
            seen = await follow(progress, child, total)
        _, cpu, _ = seen.rate(total, child.started)
    finally:
        await asyncio.to_thread(progress.close)
    sizes, tails, times = request_sizes(stack)
    nan = float("nan")
    seconds = max(times[-1] - times[0], 1e-9) if len(times) > 1 else nan
    return {
        "events_per_s": len(times) / seconds,
        "events_per_request": statistics.fmean(sizes) if sizes else nan,
        # The same with the tails: what the drain at the end of the outbox weighs.
        "events_per_request_with_tails": statistics.fmean(sizes + tails) if tails else nan,
        "full_request_share": sum(s >= FULL for s in sizes) / len(sizes) if sizes else 0.0,
        "requests": len(sizes),
        "operations": len(times) + _subscriptions(stack),
        "cpu_percent": cpu,
    }
