"""``python -m bench``: every measurement, interleaved over repeats, then the results files.

Each repeat runs one of each job in turn (dev produce, the two ceilings, derive, the peer,
deliver, latency, state), so machine noise spreads over all figures instead of skewing one;
ratios are taken within a repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.ceiling import measure_ceiling
from bench.deliver import run_deliver
from bench.derive import run_derive
from bench.latency import run_latency
from bench.merchants import bench_merchants
from bench.quix import prepare_peer, run_peer
from bench.results import Figures, machine_facts, write_results
from bench.stack import INPUTS, ROOT, BenchStack
from bench.state import run_state, state_figures, write_changelog
from bench.workload import dev_produce_rate, generate, orders_for, publish_input
from consumer.devstack import KafkaBroker
from consumer.sandbox import Sandbox

__all__ = ["PROFILES", "Profile", "main"]

log = logging.getLogger("bench")


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


async def run(profile: Profile, stack: BenchStack) -> Figures:
    """Every job, ``profile.repeats`` times, interleaved."""
    figures = Figures()
    merchants = [m.merchant_id for m in stack.merchants]
    stack.onboard()
    traffic = generate(merchants, profile.records)
    data = await asyncio.to_thread(publish_input, stack, traffic)
    log.info("input: %d records on %s", data.records, data.topics.inputs)
    changelog = await asyncio.to_thread(write_changelog, stack, profile.shipments)
    empty = await asyncio.to_thread(write_changelog, stack, 0)
    names = data.topics.names()
    inputs = {i: names[i] for i in INPUTS}
    orders = orders_for(profile.produce_records, profile.merchants)
    for r in range(profile.repeats):
        log.info("repeat %d of %d", r + 1, profile.repeats)
        figures.add("produce", await asyncio.to_thread(dev_produce_rate, stack, orders))
        consume = await asyncio.to_thread(measure_ceiling, stack.bootstrap_servers, inputs, False)
        decode = await asyncio.to_thread(measure_ceiling, stack.bootstrap_servers, inputs, True)
        figures.add("ceiling", {"consume_rec_per_s": consume["rec_per_s"]})
        figures.add("ceiling", {"decode_rec_per_s": decode["rec_per_s"]})
        derive, derived = await run_derive(stack, data, f"derive-{r}")
        peer = await run_peer(stack, data, f"quix-{r}")
        figures.add("derive", derive)
        figures.add("peer", peer)
        figures.add(
            "derive",
            {
                "ratio_to_consume": derive["rec_per_s"] / consume["rec_per_s"],
                "ratio_to_decode": derive["rec_per_s"] / decode["rec_per_s"],
                "ratio_to_peer": derive["rec_per_s"] / peer["rec_per_s"],
            },
        )
        deliver = await run_deliver(stack, derived, f"deliver-{r}")
        figures.add("deliver", deliver)
        # The pipeline's maximum in input records/s: the slower of derive and deliver.
        deliver_input_rate = deliver["events_per_s"] * data.records / max(1, deliver["operations"])
        rate = 0.5 * min(derive["rec_per_s"], deliver_input_rate)
        load = generate(merchants, max(200, round(rate * profile.latency_seconds)))
        figures.add("latency", await run_latency(stack, load, rate, f"latency-{r}"))
        on_state = await run_state(stack, changelog, f"state-{r}")
        without = await run_state(stack, empty, f"state-empty-{r}")
        figures.add("state", state_figures(on_state, without))
    return figures


async def _main(args: argparse.Namespace) -> int:
    profile = PROFILES[args.profile]
    if args.records:
        profile = Profile(**{**asdict(profile), "records": args.records})
    if args.repeats:
        profile = Profile(**{**asdict(profile), "repeats": args.repeats})
    machine = machine_facts()
    started = time.monotonic()
    await asyncio.to_thread(prepare_peer)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    log.info("logs in %s", log_dir)
    broker: KafkaBroker | None = None
    bootstrap = args.bootstrap_servers
    if bootstrap is None:
        broker = KafkaBroker()
        await asyncio.to_thread(broker.start)
        bootstrap = broker.bootstrap_servers
    try:
        async with Sandbox.run(enforce_rate_limits=False) as sandbox:
            stack = BenchStack(bootstrap, sandbox, bench_merchants(profile.merchants), log_dir)
            figures = await run(profile, stack)
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    parameters: dict[str, Any] = {
        **asdict(profile),
        "partitions": 3,
        "seconds": round(time.monotonic() - started),
    }
    json_path, md_path = write_results(args.out, args.profile, parameters, figures, machine)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--records", type=int, default=0, help="Override the input size.")
    parser.add_argument("--repeats", type=int, default=0, help="Override the repeats.")
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
