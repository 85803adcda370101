"""Tracking state at size: a derive stage starting on a changelog of N live shipments, next
to one starting on an empty changelog, each with the same few new input records waiting.

Figures are differences between the two, so start-up costs that do not depend on state
cancel out: RSS per shipment, the extra time to ready (the restore), and how much later the
first new record is processed. The run on state has a local state store: it writes snapshots
when it stops, and the same instance started again measures the extra time to ready after a
clean restart (loading the snapshots, then the changelog's tail).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stack import (
    INPUTS,
    PARTITIONS,
    BenchStack,
    GroupProgress,
    JobTopics,
    follow,
    settle,
)
from consumer.derive import DeriveConfig, derive_order
from consumer.devstack.publish import ensure_input_topics, publish
from consumer.devstack.stack import merchant_settings
from consumer.devstack.traffic import sample_traffic
from consumer.kafka import Producer
from consumer.runtime.topics import ensure_service_topics
from consumer.settings import DeriveSettings
from consumer.state.shipments import OrderState, encode_order_state

__all__ = [
    "Changelog",
    "Probes",
    "publish_probes",
    "run_restart",
    "run_state",
    "state_figures",
    "write_changelog",
]

_PROBE_ORDERS = 10  # per merchant of the first two: a few new records to process


@dataclass(frozen=True)
class Changelog:
    """A tracking-state changelog topic holding ``shipments`` live shipments."""

    topics: JobTopics
    shipments: int


def _template(stack: BenchStack) -> tuple[bytes, bytes]:
    """A live, in-transit order state from the real derivation, encoded; and its order id."""
    merchant = stack.merchants[0]
    records = sample_traffic([merchant.merchant_id], 2, datetime.now(UTC))
    delayed = [r for r in records if r.subject == "orders" and r.key.endswith("-ord-1")][:2]
    state: OrderState | None = None
    config = DeriveConfig.from_settings(DeriveSettings())
    for record in delayed:  # "delayed": placed, then in transit (no timer due for days)
        result = derive_order(
            record.value, merchant_settings(merchant), state, datetime.now(UTC), config
        )
        state = result.state or state
    if state is None:
        raise RuntimeError("the template order produced no state")
    return encode_order_state(state), state.order_id.encode()


def write_changelog(stack: BenchStack, shipments: int) -> Changelog:
    """A changelog of ``shipments`` one-shipment orders, copies of a real state under new ids
    of the template id's length (so any encoding stays valid)."""
    topics = stack.job("state")
    settings = stack.settings(topics)
    ensure_input_topics(settings, PARTITIONS)
    ensure_service_topics(settings)
    template, order_id = _template(stack)
    width = len(order_id)
    producer = Producer(settings.kafka, extra={"linger.ms": 50, "batch.num.messages": 10_000})
    try:
        for n in range(shipments):
            new_id = f"{n:0{width}d}".encode()
            value = template.replace(order_id, new_id)
            producer.produce(
                settings.topics.tracking_state, new_id, value, partition=n % PARTITIONS
            )
        producer.flush(120)
    finally:
        producer.close()
    return Changelog(topics, shipments)


@dataclass(frozen=True)
class Probes:
    """A few new input records waiting on fresh input topics, for one state run."""

    topics: JobTopics
    records: int


def publish_probes(stack: BenchStack) -> Probes:
    """The same few orders of the first two merchants, on fresh topics."""
    topics = stack.job("state-run")
    settings = stack.settings(topics)
    ensure_input_topics(settings, PARTITIONS)
    merchants = [m.merchant_id for m in stack.merchants[:2]]
    probes = sample_traffic(merchants, _PROBE_ORDERS, datetime.now(UTC), seed=11)
    return Probes(topics, publish(settings, probes))


# The stop of a run with a local store writes the snapshots (about 250 MB for 1M shipments).
_SNAPSHOT_SHUTDOWN_SECONDS = 120


def _overrides(
    stack: BenchStack, changelog: Changelog, probes: Probes, local_state_dir: Path | None
) -> dict[str, Any]:
    derive = {} if local_state_dir is None else {"local_state_dir": str(local_state_dir)}
    return stack.overrides(
        probes.topics,
        topics={"tracking_state": changelog.topics.names()["tracking_state"]},
        derive=derive,
    )


async def run_state(
    stack: BenchStack,
    changelog: Changelog,
    probes: Probes,
    name: str,
    local_state_dir: Path | None = None,
) -> dict[str, Any]:
    """Start derive on ``changelog`` with ``probes`` waiting; its figures. With
    ``local_state_dir`` it writes its snapshots there when it stops."""
    topics, total = probes.topics, probes.records
    names = topics.names()
    overrides = _overrides(stack, changelog, probes, local_state_dir)
    group = f"{topics.prefix}-derive"
    progress = await asyncio.to_thread(
        GroupProgress, stack.bootstrap_servers, group, [names[i] for i in INPUTS]
    )
    try:
        await settle()  # ready_s is a figure: no other child may still be stopping
        child = stack.service(
            name, "derive", overrides, shutdown_seconds=_SNAPSHOT_SHUTDOWN_SECONDS
        )
        with child.running():
            ready = await child.wait_ready(timeout=600)
            seen = await follow(progress, child, total, interval=0.05)
            await asyncio.sleep(0.5)  # measurement, not synchronisation: let RSS settle
            rss = child.rss()
    finally:
        await asyncio.to_thread(progress.close)
    first = next(t for t, committed, _ in seen.samples if committed > 0)
    return {
        "shipments": changelog.shipments,
        "ready_s": ready,
        "first_record_s": first - child.started,
        "rss_bytes": rss,
    }


async def run_restart(
    stack: BenchStack,
    changelog: Changelog,
    probes: Probes,
    name: str,
    instance: str,
    local_state_dir: Path,
) -> dict[str, Any]:
    """Start derive again as ``instance``, whose run with ``local_state_dir`` stopped cleanly
    (its probes are committed: nothing waits); its time to ready and the snapshots' size."""
    overrides = _overrides(stack, changelog, probes, local_state_dir)
    await settle()  # the first run's stop, which writes the snapshots, has ended
    snapshots = await asyncio.to_thread(_size, local_state_dir, "*.snapshot")
    if not snapshots:
        raise RuntimeError(f"{instance} wrote no state snapshot into {local_state_dir}")
    child = stack.service(
        name, "derive", overrides, instance=instance, shutdown_seconds=_SNAPSHOT_SHUTDOWN_SECONDS
    )
    with child.running():
        ready = await child.wait_ready(timeout=600)
    return {"ready_s": ready, "snapshot_bytes": snapshots}


def _size(directory: Path, pattern: str) -> int:
    return sum(path.stat().st_size for path in directory.glob(pattern))


def state_figures(
    full: dict[str, Any], empty: dict[str, Any], restarted: dict[str, Any]
) -> dict[str, float]:
    """The per-shipment and restore figures from a run on state, one without, and the run on
    state started again with its local store."""
    shipments = max(1, int(full["shipments"]))
    return {
        "rss_bytes_per_shipment": (full["rss_bytes"] - empty["rss_bytes"]) / shipments,
        "restore_s": full["ready_s"] - empty["ready_s"],
        "local_restart_s": restarted["ready_s"] - empty["ready_s"],
        "snapshot_bytes_per_shipment": restarted["snapshot_bytes"] / shipments,
        "first_record_delay_s": full["first_record_s"] - empty["first_record_s"],
        "ready_s": full["ready_s"],
    }
