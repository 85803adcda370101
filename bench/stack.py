"""What every measurement runs on: one broker, one in-process sandbox, onboarded merchants,
fresh topics and groups per job, and the service as a child process watched from outside.

Jobs observe the service only through public surfaces (group offsets, ``/readyz``, the
sandbox, the process's CPU and RSS), so the bench keeps working while the internals change.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.phases import PHASES
from consumer.devstack.broker import free_port
from consumer.devstack.process import spawn
from consumer.devstack.stack import DemoMerchant, onboard
from consumer.integrations.crypto import generate_kek
from consumer.kafka import KafkaConsumer, TopicPartition, partition_count
from consumer.sandbox import Sandbox
from consumer.settings import Settings, TopicSettings

__all__ = ["BenchStack", "Child", "GroupProgress", "JobTopics", "follow", "settle"]

ENV_PREFIX = "KLAVIYO_CONSUMER_"
INPUTS = ("orders", "returns", "storefront_events")
PARTITIONS = 3
ROOT = Path(__file__).resolve().parent.parent
# A job's figures are taken before its child stops, so nothing needs the stop to drain:
# in-flight deliveries get 0.6 of this (the default 25 s cost the latency job 6 s a stop).
SHUTDOWN_SECONDS = 3


@dataclass(frozen=True)
class JobTopics:
    """Topic names of one job: ``inputs`` may be shared between jobs, the rest are its own."""

    prefix: str
    inputs: str
    shared: str

    def names(self) -> dict[str, str]:
        """TopicSettings fields → names."""
        names: dict[str, str] = {}
        for name, spec in TopicSettings.model_fields.items():
            if not isinstance(spec.default, str):
                continue
            if name in INPUTS:
                names[name] = f"{self.inputs}-{spec.default}"
            elif name in ("integrations", "integrations_audit"):
                names[name] = f"{self.shared}-{spec.default}"
            else:
                names[name] = f"{self.prefix}-{spec.default}"
        return names


@dataclass
class BenchStack:
    """The broker, sandbox, merchants and settings factory of one bench run."""

    bootstrap_servers: str
    sandbox: Sandbox
    merchants: list[DemoMerchant]
    log_dir: Path
    kek: str = field(default_factory=generate_kek)
    run_id: str = field(default_factory=lambda: f"{int(time.time())}-{os.getpid()}")
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def job(self, kind: str, inputs: str | None = None) -> JobTopics:
        """Fresh topic names for a job (reading ``inputs``, or its own inputs)."""
        prefix = f"bench-{self.run_id}-{kind}-{next(self._ids)}"
        return JobTopics(prefix, inputs or prefix, f"bench-{self.run_id}-shared")

    def overrides(self, job: JobTopics, **sections: Mapping[str, Any]) -> dict[str, Any]:
        """Settings sections for a job (as keyword arguments of ``Settings``)."""
        base: dict[str, dict[str, Any]] = {
            "kafka": {"bootstrap_servers": self.bootstrap_servers, "group_id": job.prefix},
            "topics": {**job.names(), "internal_partitions": PARTITIONS},
            "klaviyo": {"base_url": self.sandbox.url},
            "integrations": {"key_encryption_keys": {"bench-1": self.kek}},
            "http": {"host": "127.0.0.1", "port": 0},
            "logging": {"level": "WARNING"},
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return base

    def settings(self, job: JobTopics, **sections: Mapping[str, Any]) -> Settings:
        """The same as ``overrides``, built."""
        return Settings(**self.overrides(job, **sections))

    def onboard(self) -> None:
        """Sandbox accounts and published integrations of every merchant (once per run)."""
        settings = self.settings(self.job("onboard"))
        onboard(settings, self.sandbox, self.merchants)

    def service(
        self,
        name: str,
        stage: str,
        overrides: Mapping[str, Any],
        *,
        instance: str | None = None,
        shutdown_seconds: float = SHUTDOWN_SECONDS,
    ) -> Child:
        """``klaviyo-consumer run --stage STAGE`` with ``overrides``, started; its instance id
        is ``name`` unless ``instance`` is given (a restart of another child)."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        for section, values in overrides.items():
            for key, value in values.items():
                text = orjson.dumps(value).decode() if isinstance(value, dict) else str(value)
                env[f"{ENV_PREFIX}{section.upper()}__{key.upper()}"] = text
        env[f"{ENV_PREFIX}HTTP__PORT"] = str(port)
        argv = [sys.executable, "-m", "consumer.cli.main", "run", "--stage", stage]
        argv += ["--instance-id", instance or name, "--shutdown-seconds", str(shutdown_seconds)]
        return Child.start(argv, env, self.log_dir / f"{name}.log", f"http://127.0.0.1:{port}")


@dataclass
class Child:
    """A child process: its resource use, readiness and a clean stop."""

    process: subprocess.Popen[bytes]
    ps: psutil.Process
    log: Path
    url: str | None
    started: float
    peak_rss: int = 0

    @classmethod
    def start(
        cls, argv: Sequence[str], env: Mapping[str, str], log: Path, url: str | None = None
    ) -> Child:
        """Spawn ``argv`` (output to ``log``), dying with this process."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = spawn(argv, env=env, output=out, cwd=ROOT)
        return cls(process, psutil.Process(process.pid), log, url, time.monotonic())

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far."""
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        """Resident set size now (bytes); also tracks the peak."""
        rss = int(self.ps.memory_info().rss)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def alive(self) -> bool:
        """Whether it still runs."""
        return bool(self.process.poll() is None)

    def check(self) -> None:
        """Raise if the child died (with its log tail)."""
        if not self.alive():
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{self.log.stem} exited with {self.process.returncode}:\n{tail}")

    def ready(self) -> bool:
        """Whether its ``/readyz`` answers 200."""
        if self.url is None:
            return True
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    async def wait_ready(self, timeout: float = 120.0) -> float:  # noqa: ASYNC109
        """Seconds from start until ready; returns once earlier children have stopped too."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.ready):
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.log.stem} not ready after {timeout} s")
            await asyncio.sleep(0.05)  # polling a condition with a deadline
        seconds = time.monotonic() - self.started
        PHASES.add(f"{self.log.stem}: start to ready", seconds)
        await settle()
        return seconds

    def terminate(self, timeout: float = 30.0) -> None:
        """SIGTERM now; a thread waits for the exit (SIGKILL past ``timeout``) and ``settle``
        waits for that thread."""
        stopping_since = time.monotonic()

        def reap() -> None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
            PHASES.add(f"{self.log.stem}: stop", time.monotonic() - stopping_since)

        if self.alive():
            self.process.terminate()
        reaper = threading.Thread(target=reap, name=f"reap-{self.log.stem}", daemon=True)
        reaper.start()
        _STOPPING.append(reaper)

    @contextmanager
    def running(self) -> Iterator[Child]:
        """SIGTERM on exit, whatever happened; the stop overlaps whatever the bench does next
        until ``settle`` (before anything is measured)."""
        try:
            yield self
        finally:
            self.terminate()


_STOPPING: list[threading.Thread] = []


async def settle() -> None:
    """Wait until every child told to stop has exited, so none competes with a measurement.

    A stop mostly waits on the broker (the last commit, leaving the group); it overlaps the
    next child's start-up, whose own duration is not a figure. Jobs whose start-up is
    measured (state) or that have no readiness to wait for call this first.
    """
    while _STOPPING:
        await asyncio.to_thread(_STOPPING.pop().join)


class GroupProgress:
    """How far a consumer group has committed on some topics (read from the broker)."""

    def __init__(self, bootstrap_servers: str, group: str, topics: Sequence[str]) -> None:
        settings = Settings(kafka={"bootstrap_servers": bootstrap_servers}).kafka
        self._consumer = KafkaConsumer(settings, group)
        self._partitions = [
            TopicPartition(t, p) for t in topics for p in range(partition_count(settings, t))
        ]

    def ends(self) -> int:
        """Total end offsets (records written so far)."""
        return sum(self._consumer.get_watermark_offsets(tp)[1] for tp in self._partitions)

    def transactional_end(self) -> int:
        """What ``committed`` reaches once a transactional topic is consumed to its end.

        Each partition ends with a transaction marker, which takes an offset but is never
        delivered, so a consumer that finished commits the high watermark less one.
        """
        highs = [self._consumer.get_watermark_offsets(tp)[1] for tp in self._partitions]
        return sum(max(0, high - 1) for high in highs)

    def committed(self) -> int:
        """Total committed offsets of the group (0 where none)."""
        return sum(max(o.offset, 0) for o in self._consumer.committed(self._partitions))

    def close(self) -> None:
        """Release the client (it never joined the group)."""
        self._consumer.close()


@dataclass
class Progress:
    """Samples of (monotonic time, committed count, child CPU seconds) until caught up."""

    samples: list[tuple[float, int, float]] = field(default_factory=list)

    def rate(self, total: int, started: float) -> tuple[float, float, float]:
        """(records/s, CPU % of one core, seconds) over the processing window.

        The window opens at the first commit that covered records and closes when all are
        committed; the records of that first commit are left out, as their start is unknown.
        Inputs that fit in one commit fall back to the time from ``started``.
        """
        first = next((s for s in self.samples if s[1] > 0), None)
        last = self.samples[-1]
        if first is None or first[1] >= total or last[0] <= first[0]:
            first = (started, 0, self.samples[0][2])
        seconds = last[0] - first[0]
        records = total - first[1]
        cpu = 100.0 * (last[2] - first[2]) / seconds
        return records / seconds, cpu, seconds


def throughput(progress: Progress, child: Child, total: int) -> dict[str, float]:
    """The figures of a job that processed ``total`` records: rate, CPU %, peak RSS, seconds."""
    rate, cpu, seconds = progress.rate(total, child.started)
    return {
        "rec_per_s": rate,
        "cpu_percent": cpu,
        "peak_rss_mib": child.peak_rss / 2**20,
        "seconds": seconds,
    }


async def follow(
    progress: GroupProgress,
    child: Child,
    total: int,
    timeout: float = 900.0,  # noqa: ASYNC109
    interval: float = 0.1,
) -> Progress:
    """Sample the group's commits and the child's CPU/RSS until ``total`` are committed."""
    seen = Progress()
    deadline = time.monotonic() + timeout
    while True:
        committed = await asyncio.to_thread(progress.committed)
        cpu = child.cpu_seconds()
        child.rss()
        seen.samples.append((time.monotonic(), committed, cpu))
        if committed >= total:
            return seen
        child.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{child.log.stem}: {committed} of {total} after {timeout} s")
        await asyncio.sleep(interval)  # polling a condition with a deadline
