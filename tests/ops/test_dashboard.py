"""The Grafana dashboard: generated from scripts/dashboard.py, committed, and consistent."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

from consumer.observability import Metrics
from tests.ops.conftest import DASHBOARD, ROOT

ROWS = [
    "Freshness",
    "Throughput and outcomes",
    "Dead letters and parks",
    "Klaviyo",
    "Transactions and commits",
    "Rebalances and restores",
    "Runtime",
]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "scripts/dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


_SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "info": ["_info"]}


def exported_samples() -> set[str]:
    """Every sample name the service's registry can expose (``_bucket``, ``_total``, ...)."""
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in _SUFFIXES.get(family.type, [""])
    }


def test_committed_dashboard_is_what_the_generator_makes() -> None:
    assert DASHBOARD.read_text() == generator().render(), (
        "dashboard.json is stale: run .venv/bin/python scripts/dashboard.py"
    )


def test_dashboard_has_a_row_per_concern_and_the_variables() -> None:
    board = committed()
    assert [p["title"] for p in board["panels"] if p["type"] == "row"] == ROWS
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "label_values(" in variables["namespace"]["query"]
    assert "$namespace" in variables["pod"]["query"]


def test_every_query_is_scoped_and_names_an_exported_metric() -> None:
    exported = exported_samples()
    targets = [t for p in committed()["panels"] for t in p.get("targets", [])]
    assert len(targets) > 25
    for target in targets:
        expr = target["expr"]
        assert target["datasource"]["uid"] == "${datasource}", expr
        selectors = re.findall(r"([a-z_]+)\{([^}]*)\}", expr)
        assert selectors, expr
        for metric, labels in selectors:
            assert 'namespace=~"$namespace"' in labels and 'pod=~"$pod"' in labels, expr
            assert metric in exported, f"{metric} is not exported by the service"


def test_panels_with_several_queries_tell_them_apart() -> None:
    for panel in committed()["panels"]:
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(set(refs)) == len(refs) and all(refs), panel["title"]
