"""Ops fixtures: the pinned Prometheus and promtool, fetched into .cache/ on first use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.prometheus import prometheus_bin as fetch

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "helm/klaviyo-consumer/files/alerts.yaml"
DASHBOARD = ROOT / "helm/klaviyo-consumer/files/dashboard.json"
RUNBOOK = ROOT / "docs/operations.md"


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """The directory holding ``prometheus`` and ``promtool`` (scripts/tools/prometheus.sh)."""
    return fetch()
