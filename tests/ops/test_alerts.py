"""The alert rules: valid for promtool, unit-tested per alert, documented in the runbook."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.ops.conftest import ALERTS, RUNBOOK

TESTS = Path(__file__).with_name("alerts.test.yaml")
EXPECTED = {
    "KlaviyoConsumerLagHigh",
    "KlaviyoConsumerStalled",
    "KlaviyoConsumerDeadLetterRatio",
    "KlaviyoConsumerKlaviyoErrors",
    "KlaviyoConsumerRateLimited",
    "KlaviyoConsumerRecordErrors",
    "KlaviyoConsumerIntegrationsReaderDown",
    "KlaviyoConsumerMerchantsParked",
    "KlaviyoConsumerStageRestarting",
    "KlaviyoConsumerRebalanceStorm",
    "KlaviyoConsumerTargetAbsent",
}


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def promtool(prometheus_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_bin / "promtool"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_promtool_checks_the_rules(prometheus_bin: Path) -> None:
    done = promtool(prometheus_bin, "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in done.stdout


def test_promtool_unit_tests_pass(prometheus_bin: Path) -> None:
    done = promtool(prometheus_bin, "test", "rules", str(TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert {rule["alert"] for rule in rules()} == EXPECTED
    assert firing == EXPECTED
    assert quiet == EXPECTED


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    sections = anchors(RUNBOOK.read_text())
    for rule in rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        url, _, anchor = notes["runbook_url"].partition("#")
        assert url.endswith("/docs/operations.md"), name
        assert anchor in sections, f"{name}: docs/operations.md has no section #{anchor}"
