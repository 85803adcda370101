"""Derive with exactly-once: the service's derive stage over the shared input, as a child
process, timed by its group's commits (a transaction covers the offsets it consumed)."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.stack import INPUTS, BenchStack, GroupProgress, JobTopics, follow, throughput
from bench.workload import Input

__all__ = ["run_derive"]


async def run_derive(stack: BenchStack, data: Input, name: str) -> tuple[dict[str, Any], JobTopics]:
    """One derive run over ``data``; its figures and topics (the outbox feeds ``deliver``)."""
    topics = stack.job("derive", data.topics.inputs)
    overrides = stack.overrides(topics)
    names = topics.names()
    progress = await asyncio.to_thread(
        GroupProgress,
        stack.bootstrap_servers,
        f"{topics.prefix}-derive",
        [names[i] for i in INPUTS],
    )
    try:
        child = stack.service(name, "derive", overrides)
        with child.running():
            await child.wait_ready()
            seen = await follow(progress, child, data.records)
    finally:
        await asyncio.to_thread(progress.close)
    return throughput(seen, child, data.records), topics
