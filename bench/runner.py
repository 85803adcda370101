"""``python -m bench``: every measurement, interleaved over repeats, then the results files.

Each repeat runs one of each job in turn (dev produce, the two ceilings, derive, the peer,
deliver, latency, state), so machine noise spreads over all figures instead of skewing one;
ratios are taken within a repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.ceiling import measure_ceiling
from bench.deliver import run_deliver
from bench.derive import run_derive
from bench.latency import run_latency
from bench.merchants import bench_merchants
from bench.phases import PHASES
from bench.quix import prepare_peer, run_peer
from bench.results import Figures, machine_facts, write_results
from bench.stack import INPUTS, ROOT, BenchStack, settle
from bench.state import (
    Changelog,
    Probes,
    publish_probes,
    run_restart,
    run_state,
    state_figures,
    write_changelog,
)
from bench.workload import Input, dev_produce_rate, generate, orders_for, publish_input
from consumer.devstack import KafkaBroker
from consumer.devstack.artifacts import fetch_broker_artifacts
from consumer.devstack.traffic import InputRecord
from consumer.sandbox import Sandbox

__all__ = ["JOBS", "PROFILES", "Profile", "main", "resolve_jobs"]

log = logging.getLogger("bench")
T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """How big each job is."""

    records: int
    merchants: int
    repeats: int
    shipments: int
    latency_seconds: float
    produce_records: int  # dev produce: enough that its worker start-up does not dominate


PROFILES = {
    "full": Profile(200_000, 20, 3, 1_000_000, latency_seconds=30, produce_records=200_000),
    "quick": Profile(10_000, 20, 2, 30_000, latency_seconds=5, produce_records=60_000),
    "tiny": Profile(1_500, 20, 1, 1_000, latency_seconds=2, produce_records=1_500),
}

# In the order a repeat runs them.
JOBS = ("produce", "ceiling", "derive", "peer", "deliver", "latency", "state")
# Deliver drains derive's outbox; latency runs at half the slower of derive and deliver.
_NEEDS = {"deliver": ("derive",), "latency": ("derive", "deliver")}
_READS_INPUT = {"ceiling", "derive", "peer"}


def resolve_jobs(wanted: Iterable[str]) -> tuple[str, ...]:
    """``wanted`` and the jobs they need, in run order."""
    chosen = set(wanted)
    for job in list(chosen):
        chosen.update(_NEEDS.get(job, ()))
    return tuple(job for job in JOBS if job in chosen)


@dataclass(frozen=True)
class Prepared:
    """What the jobs share: the published input, the two state changelogs, and each state
    run's new records (two a repeat)."""

    data: Input | None
    changelog: Changelog | None
    empty: Changelog | None
    probes: list[Probes]


async def prepare(
    stack: BenchStack, profile: Profile, jobs: tuple[str, ...], traffic: list[InputRecord]
) -> Prepared:
    """Publish the input and the state runs' records while the merchants are onboarded and
    the changelogs written.

    The changelogs come after onboarding: both create the shared integrations topic.
    """

    async def timed(name: str, work: Callable[[], T]) -> T:
        with PHASES.timed(name):
            return await asyncio.to_thread(work)

    async def input_topics() -> Input | None:
        if not _READS_INPUT & set(jobs):
            return None
        return await timed("input", lambda: publish_input(stack, traffic))

    async def merchants_and_state() -> tuple[Changelog, Changelog] | None:
        if set(jobs) <= {"produce", "ceiling"}:
            return None
        await timed("onboard", stack.onboard)
        if "state" not in jobs:
            return None
        changelog = await timed("changelog", lambda: write_changelog(stack, profile.shipments))
        return changelog, await timed("empty changelog", lambda: write_changelog(stack, 0))

    async def state_probes() -> list[Probes]:
        if "state" not in jobs:
            return []
        runs = 2 * profile.repeats
        return await timed("state probes", lambda: [publish_probes(stack) for _ in range(runs)])

    data, state, probes = await asyncio.gather(
        input_topics(), merchants_and_state(), state_probes()
    )
    if data is not None:
        log.info("input: %d records on %s", data.records, data.topics.inputs)
    return Prepared(data, *(state or (None, None)), probes)


async def run_repeat(
    stack: BenchStack, profile: Profile, jobs: tuple[str, ...], ready: Prepared, r: int
) -> dict[str, dict[str, Any]]:
    """One of each job in ``jobs``; figures by job name."""
    got: dict[str, dict[str, Any]] = {}
    data, merchants = ready.data, [m.merchant_id for m in stack.merchants]
    await settle()
    if "produce" in jobs:
        orders = orders_for(profile.produce_records, profile.merchants)
        with PHASES.timed("job produce"):
            got["produce"] = await asyncio.to_thread(dev_produce_rate, stack, orders)
    if "ceiling" in jobs and data is not None:
        names = data.topics.names()
        inputs = {i: names[i] for i in INPUTS}
        with PHASES.timed("job ceiling"):
            both = await asyncio.to_thread(measure_ceiling, stack.bootstrap_servers, inputs)
        got["ceiling"] = {
            "consume_rec_per_s": both["consume"]["rec_per_s"],
            "decode_rec_per_s": both["decode"]["rec_per_s"],
        }
    derived = None
    if "derive" in jobs and data is not None:
        with PHASES.timed("job derive"):
            got["derive"], derived = await run_derive(stack, data, f"derive-{r}")
    if "peer" in jobs and data is not None:
        with PHASES.timed("job peer"):
            got["peer"] = await run_peer(stack, data, f"quix-{r}")
    if "deliver" in jobs and derived is not None:
        with PHASES.timed("job deliver"):
            got["deliver"] = await run_deliver(stack, derived, f"deliver-{r}")
    if "latency" in jobs and data is not None:
        # The pipeline's maximum in input records/s: the slower of derive and deliver.
        deliver = got["deliver"]
        deliver_input_rate = deliver["events_per_s"] * data.records / max(1, deliver["operations"])
        rate = 0.5 * min(got["derive"]["rec_per_s"], deliver_input_rate)
        load = generate(merchants, max(200, round(rate * profile.latency_seconds)))
        with PHASES.timed("job latency"):
            got["latency"] = await run_latency(stack, load, rate, f"latency-{r}")
    if "state" in jobs and ready.changelog is not None and ready.empty is not None:
        with PHASES.timed("job state"):
            full, empty = ready.probes[2 * r : 2 * r + 2]
            local = stack.log_dir / f"state-{r}-local"
            on_state = await run_state(stack, ready.changelog, full, f"state-{r}", local)
            restarted = await run_restart(
                stack, ready.changelog, full, f"state-{r}-restart", f"state-{r}", local
            )
            without = await run_state(stack, ready.empty, empty, f"state-empty-{r}")
            # Settled by that run's start: the restart's stop (rewriting them) is over.
            await asyncio.to_thread(shutil.rmtree, local)  # ~250 MB per 1M shipments
        got["state"] = state_figures(on_state, without, restarted)
    return got


def ratios(got: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Derive's ratios to whichever of the ceilings and the peer ran in the same repeat."""
    if "derive" not in got:
        return {}
    rate = float(got["derive"]["rec_per_s"])
    out: dict[str, float] = {}
    if "ceiling" in got:
        out["ratio_to_consume"] = rate / got["ceiling"]["consume_rec_per_s"]
        out["ratio_to_decode"] = rate / got["ceiling"]["decode_rec_per_s"]
    if "peer" in got:
        out["ratio_to_peer"] = rate / got["peer"]["rec_per_s"]
    return out


async def run(
    profile: Profile, stack: BenchStack, jobs: tuple[str, ...], traffic: list[InputRecord]
) -> Figures:
    """Every job of ``jobs`` on ``traffic``, ``profile.repeats`` times, interleaved."""
    ready = await prepare(stack, profile, jobs, traffic)
    figures = Figures()
    for r in range(profile.repeats):
        log.info("repeat %d of %d", r + 1, profile.repeats)
        got = await run_repeat(stack, profile, jobs, ready, r)
        for job, values in got.items():
            figures.add(job, values)
        figures.add("derive", ratios(got))
    await settle()
    return figures


@asynccontextmanager
async def broker_for(bootstrap: str | None) -> AsyncIterator[str]:
    """``bootstrap``, or a throw-away broker's: killed at the end, as nothing on it is kept."""
    if bootstrap is not None:
        yield bootstrap
        return
    broker = KafkaBroker()
    with PHASES.timed("broker start"):
        # Jars first, so a download on a clean machine does not eat the start-up timeout.
        await asyncio.to_thread(fetch_broker_artifacts)
        await asyncio.to_thread(broker.start)
    try:
        yield broker.bootstrap_servers
    finally:
        with PHASES.timed("broker stop"):
            await asyncio.to_thread(broker.kill)
            await asyncio.to_thread(shutil.rmtree, broker.config.data_dir, True)


async def _main(args: argparse.Namespace) -> int:
    profile = PROFILES[args.profile]
    if args.records:
        profile = Profile(**{**asdict(profile), "records": args.records})
    if args.repeats:
        profile = Profile(**{**asdict(profile), "repeats": args.repeats})
    jobs = resolve_jobs(args.jobs or JOBS)
    machine = machine_facts()
    started = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    log.info("jobs %s; logs in %s", ", ".join(jobs), log_dir)
    merchants = bench_merchants(profile.merchants)
    # The peer's environment syncs and the input is generated while the broker starts.
    peer_env = asyncio.create_task(_timed_thread("prepare peer", prepare_peer, "peer" in jobs))
    traffic = asyncio.create_task(
        asyncio.to_thread(generate, [m.merchant_id for m in merchants], profile.records)
    )
    async with broker_for(args.bootstrap_servers) as bootstrap:
        async with Sandbox.run(enforce_rate_limits=False) as sandbox:
            await peer_env
            stack = BenchStack(bootstrap, sandbox, merchants, log_dir)
            figures = await run(profile, stack, jobs, await traffic)
        parameters: dict[str, Any] = {
            **asdict(profile),
            "partitions": 3,
            "jobs": list(jobs),
            "seconds": round(time.monotonic() - started),
        }
        json_path, md_path = write_results(
            args.out, args.profile, parameters, figures, machine, PHASES.seconds
        )
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0


async def _timed_thread(name: str, work: Callable[[], None], wanted: bool) -> None:
    if wanted:
        with PHASES.timed(name):
            await asyncio.to_thread(work)


def _job_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(JOBS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown jobs {unknown}; choose from {', '.join(JOBS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--records", type=int, default=0, help="Override the input size.")
    parser.add_argument("--repeats", type=int, default=0, help="Override the repeats.")
    parser.add_argument(
        "--jobs",
        type=_job_list,
        default=None,
        help=f"Comma-separated subset of {','.join(JOBS)} (default: all). Deliver brings derive "
        "(it drains derive's outbox), latency brings derive and deliver (its rate); derive's "
        "ratios need the ceiling or the peer in the same run.",
    )
    parser.add_argument(
        "--bootstrap-servers", default=None, help="Use this broker instead of starting one."
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="Results directory."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
