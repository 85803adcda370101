"""The bench harness end to end on tiny input, so ``make bench`` cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.results import TARGETS
from bench.runner import JOBS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
FIGURES = {
    "ceiling.consume_rec_per_s",
    "ceiling.decode_rec_per_s",
    "derive.rec_per_s",
    "derive.ratio_to_consume",
    "derive.ratio_to_decode",
    "derive.ratio_to_peer",
    "derive.cpu_percent",
    "derive.peak_rss_mib",
    "peer.rec_per_s",
    "deliver.events_per_s",
    "deliver.events_per_request",
    "latency.p50_s",
    "latency.p99_s",
    "state.rss_bytes_per_shipment",
    "state.restore_s",
    "state.first_record_delay_s",
    "state.local_restart_s",
    "produce.rec_per_s",
}


def _bench(bootstrap_servers: str, out: Path, *args: str) -> tuple[dict[str, Any], str]:
    """``python -m bench --profile tiny ARGS``: its JSON document and Markdown page."""
    argv = [sys.executable, "-m", "bench", "--profile", "tiny", "--records", "1500", *args]
    argv += ["--bootstrap-servers", bootstrap_servers, "--out", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    [json_path] = out.glob("*.json")
    [md_path] = out.glob("*.md")
    assert json_path.stem == md_path.stem
    assert json_path.stem.endswith("-tiny")
    return orjson.loads(json_path.read_bytes()), md_path.read_text()


def test_bench_runs_end_to_end_on_tiny_input(bootstrap_servers: str, tmp_path: Path) -> None:
    document, page = _bench(bootstrap_servers, tmp_path)
    assert document["profile"] == "tiny"
    assert document["parameters"]["records"] == 1500
    assert document["parameters"]["jobs"] == list(JOBS)
    assert {f"job {job}" for job in JOBS} <= set(document["phases"])
    machine = document["machine"]
    assert machine["cpu_count"] >= 1
    assert len(machine["load_average_before"]) == len(machine["load_average_after"]) == 3
    figures = document["figures"]
    assert set(figures) >= FIGURES, FIGURES - set(figures)
    for name in FIGURES - {"deliver.events_per_request"}:  # tiny: no request before a tail
        figure = figures[name]
        assert figure["repeats"] == len(figure["samples"]) == 1, name
        assert figure["min"] <= figure["median"] <= figure["max"], name
    assert figures["derive.rec_per_s"]["median"] > 0
    assert figures["latency.probes"]["median"] > 0
    assert figures["latency.lost_probes"]["median"] == 0
    # dev produce published the whole sample it was asked for.
    assert figures["produce.records"]["median"] >= 1500
    assert {t["figure"] for t in document["targets"]} <= {t.figure for t in TARGETS}
    assert "| figure | median | min to max | repeats |" in page
    for name in FIGURES:
        assert f"| {name} |" in page


def test_a_subset_of_jobs_measures_only_those(bootstrap_servers: str, tmp_path: Path) -> None:
    document, page = _bench(bootstrap_servers, tmp_path, "--jobs", "ceiling")
    assert document["parameters"]["jobs"] == ["ceiling"]
    assert "jobs ceiling," in page
    assert set(document["figures"]) == {"ceiling.consume_rec_per_s", "ceiling.decode_rec_per_s"}
    assert document["figures"]["ceiling.decode_rec_per_s"]["median"] > 0
    assert document["targets"] == []
