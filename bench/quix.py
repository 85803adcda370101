"""The peer job: the Quix Streams app of ``bench/peer`` over the shared input, timed like derive.

The peer needs an older confluent-kafka than the service, so it runs from its own locked
environment (``bench/peer/.venv``, made by ``uv sync --project bench/peer``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.stack import (
    INPUTS,
    PARTITIONS,
    ROOT,
    BenchStack,
    Child,
    GroupProgress,
    follow,
    settle,
    throughput,
)
from bench.workload import Input
from consumer.kafka import TopicSpec, ensure_topics
from consumer.settings import Settings

__all__ = ["prepare_peer", "run_peer"]

PEER = ROOT / "bench" / "peer"
PYTHON = PEER / ".venv" / "bin" / "python"


def prepare_peer() -> None:
    """Create or update the peer's environment from its lock file."""
    uv = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    subprocess.run(
        [uv, "sync", "--frozen", "--quiet", "--project", str(PEER)], check=True, timeout=600
    )


async def run_peer(stack: BenchStack, data: Input, name: str) -> dict[str, Any]:
    """One peer run over ``data``; its figures."""
    topics = stack.job("quix", data.topics.inputs)
    names = topics.names()
    settings = Settings(kafka={"bootstrap_servers": stack.bootstrap_servers})
    await asyncio.to_thread(ensure_topics, settings.kafka, [TopicSpec(names["outbox"], PARTITIONS)])
    group = f"{topics.prefix}-quix"
    progress = await asyncio.to_thread(
        GroupProgress, stack.bootstrap_servers, group, [names[i] for i in INPUTS]
    )
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        config = {
            "bootstrap_servers": stack.bootstrap_servers,
            "group": group,
            "topics": {i: names[i] for i in INPUTS},
            "outbox": names["outbox"],
            "merchants": len(stack.merchants),
            "state_dir": state_dir,
        }
        argv = [str(PYTHON), str(PEER / "app.py"), orjson.dumps(config).decode()]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        try:
            child = Child.start(argv, env, stack.log_dir / f"{name}.log")
            with child.running():
                await settle()  # the previous child's stop overlaps only this start-up
                seen = await follow(progress, child, data.records)
        finally:
            await asyncio.to_thread(progress.close)
    return throughput(seen, child, data.records)
