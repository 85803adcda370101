"""Figures (median, min to max of the repeats), machine facts, targets; written as JSON and
Markdown to ``bench/results/<date>-<commit>.{json,md}``."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka
import orjson
import psutil

from bench.stack import ROOT

__all__ = ["TARGETS", "Figures", "machine_facts", "write_results"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Target:
    """A figure's target: ``value >= bound`` (or ``<=``)."""

    figure: str
    bound: float
    at_least: bool
    text: str

    def met(self, value: float) -> bool:
        """Whether ``value`` meets it."""
        return value >= self.bound if self.at_least else value <= self.bound


# p99 bound: checkpoint interval (1 s) + linger (0.5 s) + 0.5 s, with the default settings.
TARGETS = [
    Target("derive.ratio_to_decode", 0.35, True, "derive >= 0.35 x consume + decode"),
    Target("derive.ratio_to_peer", 1.5, True, "derive >= 1.5 x Quix Streams"),
    Target("state.rss_bytes_per_shipment", 300, False, "<= 300 B RSS per shipment"),
    Target("state.restore_s", 10.0, False, "restore of the state <= 10 s (1M shipments)"),
    Target("state.local_restart_s", 5.0, False, "ready <= 5 s after a clean restart, local store"),
    Target("deliver.events_per_request", 990, True, ">= 990 events per request under backlog"),
    Target("latency.p99_s", 2.0, False, "p99 produce -> Klaviyo <= 2.0 s at half load"),
    Target("produce.rec_per_s", 20_000, True, "dev produce >= 20k rec/s"),
]


@dataclass
class Figures:
    """Samples per figure name, one per repeat."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, prefix: str, values: dict[str, Any]) -> None:
        """Record one repeat's numeric values under ``prefix.name``."""
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.samples[f"{prefix}.{name}"].append(float(value))

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per figure: median, min, max, repeats and the samples in order."""
        return {
            name: {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "repeats": len(values),
                "samples": values,
            }
            for name, values in sorted(self.samples.items())
        }


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPU, memory, software versions, load."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "load_average": list(os.getloadavg()),
    }


def write_results(
    out_dir: Path,
    profile: str,
    parameters: dict[str, Any],
    figures: Figures,
    machine_before: dict[str, Any],
    phases: dict[str, float],
) -> tuple[Path, Path]:
    """Write the JSON and Markdown results (``phases``: wall seconds of the run's phases, to
    see where the time went); returns their paths."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    now = datetime.now(UTC)
    summary = figures.summary()
    targets = [
        {
            "figure": t.figure,
            "target": t.text,
            "median": summary[t.figure]["median"],
            "met": t.met(summary[t.figure]["median"]),
        }
        for t in TARGETS
        if t.figure in summary
    ]
    document = {
        "schema": SCHEMA_VERSION,
        "date": now.isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "profile": profile,
        "parameters": parameters,
        "machine": {
            **{k: v for k, v in machine_before.items() if k != "load_average"},
            "load_average_before": machine_before["load_average"],
            "load_average_after": list(os.getloadavg()),
        },
        "figures": summary,
        "targets": targets,
        "phases": {name: round(seconds, 2) for name, seconds in phases.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y-%m-%d}-{commit}{'-dirty' if dirty else ''}"
    if profile != "full":
        stem += f"-{profile}"
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    md_path.write_text(render_markdown(document))
    return json_path, md_path


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render_markdown(document: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    machine = document["machine"]
    lines = [
        f"# Benchmark {document['date']} ({document['profile']}, commit {document['commit']}"
        f"{', dirty' if document['dirty'] else ''})",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, "
        f"librdkafka {machine['librdkafka']}.",
        "Load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in machine["load_average_before"])
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in machine["load_average_after"])
        + ".",
        "",
        "Parameters: "
        + ", ".join(f"{k} {_parameter(v)}" for k, v in document["parameters"].items())
        + ". Each figure: median (min to max) of the interleaved repeats; ratios per repeat.",
        "",
        "| figure | median | min to max | repeats |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, fig in document["figures"].items():
        lines.append(
            f"| {name} | {_number(fig['median'])} | {_number(fig['min'])} to {_number(fig['max'])} "
            f"| {fig['repeats']} |"
        )
    lines += ["", "| target | median | met |", "| --- | ---: | --- |"]
    for target in document["targets"]:
        lines.append(
            f"| {target['target']} | {_number(target['median'])} | "
            f"{'yes' if target['met'] else 'no'} |"
        )
    # Children's own phases ("derive-0: stop") are in the JSON only.
    phases = [f"{k} {v:.1f}" for k, v in document["phases"].items() if ": " not in k]
    lines += ["", "Wall time (s, over all repeats): " + ", ".join(phases) + "."]
    return "\n".join(lines) + "\n"


def _parameter(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
