"""End-to-end latency at half load: input produced at half the measured maximum through the
whole service (derive + deliver) into the sandbox; per storefront record, produce → accept."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from bench.stack import PARTITIONS, BenchStack
from bench.workload import publish_paced
from consumer.devstack.publish import ensure_input_topics
from consumer.devstack.traffic import InputRecord

__all__ = ["run_latency"]

# Storefront records whose one event names their event id (see consumer/derive/storefront.py).
_PROBES = {"ACCOUNT_CREATED": "account-created", "WISHLIST_ADD": "wishlist-add"}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run_latency(
    stack: BenchStack, traffic: list[InputRecord], rate: float, name: str
) -> dict[str, Any]:
    """Produce ``traffic`` at ``rate`` rec/s through a fresh service; latency figures."""
    topics = stack.job("latency")
    settings = stack.settings(topics)
    await asyncio.to_thread(ensure_input_topics, settings, PARTITIONS)
    stack.sandbox.reset()
    sent: dict[tuple[str, str], float] = {}

    def on_sent(record: InputRecord, at: float) -> None:
        prefix = _PROBES.get(str(record.value.get("event_type")))
        if prefix is not None:
            sent[(str(record.value["merchant_id"]), f"{prefix}:{record.key}")] = at

    child = stack.service(name, "all", stack.overrides(topics))
    stop = threading.Event()
    with child.running():
        await child.wait_ready()
        try:
            await asyncio.to_thread(publish_paced, settings, traffic, rate, on_sent, stop)
        finally:
            stop.set()
        deadline = time.monotonic() + 120
        while not _arrived(stack, sent) and time.monotonic() < deadline:
            child.check()
            await asyncio.sleep(0.2)  # polling a condition with a deadline
    received = {
        (e.account_id, e.unique_id): e.received_at.timestamp()
        for m in stack.merchants
        for e in stack.sandbox.events(m.merchant_id)
    }
    latencies = [received[k] - at for k, at in sent.items() if k in received]
    if not latencies:
        raise RuntimeError(f"{name}: none of {len(sent)} probe events arrived")
    return {
        "p50_s": _percentile(latencies, 0.5),
        "p99_s": _percentile(latencies, 0.99),
        "probes": len(latencies),
        "lost_probes": len(sent) - len(latencies),
        "rate_rec_per_s": rate,
    }


def _arrived(stack: BenchStack, sent: dict[tuple[str, str], float]) -> bool:
    have = {
        (e.account_id, e.unique_id)
        for m in stack.merchants
        for e in stack.sandbox.events(m.merchant_id)
    }
    return all(key in have for key in sent)
