"""Ops fixtures: the pinned Prometheus and promtool, fetched into .cache/ on first use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "helm/klaviyo-consumer/files/alerts.yaml"
DASHBOARD = ROOT / "helm/klaviyo-consumer/files/dashboard.json"
RUNBOOK = ROOT / "docs/operations.md"


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """The directory holding ``prometheus`` and ``promtool`` (scripts/fetch-prometheus.sh)."""
    script = ROOT / "scripts/fetch-prometheus.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, f"fetching Prometheus failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])
