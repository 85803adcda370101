"""docker-compose.yml, checked by a real compose implementation (no Docker engine needed).

``scripts/tools/compose.sh`` (run by ``make test``) installs the pinned Python docker-compose,
which validates the file against the Compose JSON schema; its ``config`` output is then the
resolved model the assertions read.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / ".cache/tools/docker-compose/bin/docker-compose"
LONG_RUNNING = {"kafka", "schema-registry", "sandbox", "klaviyo-consumer", "prometheus", "grafana"}


def _compose(
    *args: str, file: Path = ROOT / "docker-compose.yml"
) -> subprocess.CompletedProcess[str]:
    assert COMPOSE.exists(), "compose not installed: run scripts/tools/compose.sh (make test does)"
    return subprocess.run(
        [str(COMPOSE), "--project-directory", str(ROOT), "-f", str(file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    result = _compose("config")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_config_quiet_passes() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_a_mistyped_key_fails_validation(tmp_path: Path) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("healthcheck:", "healtcheck:", 1))
    result = _compose("config", "-q", file=broken)
    assert result.returncode != 0
    assert "healtcheck" in result.stderr


def test_every_part_of_the_stack_is_there(model: dict[str, Any]) -> None:
    services = model["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "schema-registry" in services["schema-registry"]["image"]
    assert "kafka-topics.sh" in " ".join(services["topics"]["command"])
    assert services["klaviyo-consumer"]["command"] == ["run", "--stage", "all"]
    assert services["sandbox"]["command"][0] == "sandbox"
    assert services["traffic"]["command"][:4] == ["dev", "produce", "--framing", "confluent"]
    env = services["klaviyo-consumer"]["environment"]
    assert env["KLAVIYO_CONSUMER_SCHEMA_REGISTRY__URL"] == "http://schema-registry:8081"
    assert env["KLAVIYO_CONSUMER_KLAVIYO__BASE_URL"] == "http://sandbox:8090"


def test_long_running_services_have_health_checks_and_start_in_order(
    model: dict[str, Any],
) -> None:
    services = model["services"]
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], name
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"] in {
                "service_healthy",
                "service_started",
                "service_completed_successfully",
            }
    consumer = services["klaviyo-consumer"]["depends_on"]
    assert consumer["topics"]["condition"] == "service_completed_successfully"
    assert consumer["onboard"]["condition"] == "service_completed_successfully"


def test_service_containers_are_hardened_like_the_image(model: dict[str, Any]) -> None:
    for name in ("sandbox", "onboard", "klaviyo-consumer", "traffic"):
        service = model["services"][name]
        assert service["read_only"] is True, name
        assert service["user"] == "10001:10001", name
        assert service["cap_drop"] == ["ALL"], name


def test_mounted_files_exist_and_monitoring_uses_the_charts_rules_and_dashboard(
    model: dict[str, Any],
) -> None:
    mounts = {
        name: {Path(v.split(":")[0]) for v in s.get("volumes", [])}
        for name, s in model["services"].items()
    }
    for sources in mounts.values():
        for source in sources:
            assert source.exists(), source
    mounts = {
        name: {s.relative_to(ROOT).as_posix() for s in sources} for name, sources in mounts.items()
    }
    assert "helm/klaviyo-consumer/files/alerts.yaml" in mounts["prometheus"]
    assert "helm/klaviyo-consumer/files/dashboard.json" in mounts["grafana"]
    prometheus = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/alerts.yaml"]
    (job,) = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["klaviyo-consumer:8080"]


def _cli_invocations(model: dict[str, Any]) -> list[list[str]]:
    """Every ``klaviyo-consumer`` command line the stack runs (commands and shell scripts)."""
    found: list[list[str]] = []
    for service in model["services"].values():
        if service.get("image") != "klaviyo-consumer:local":
            continue
        command = service.get("command", [])
        if service.get("entrypoint"):  # a shell script: its klaviyo-consumer lines
            for line in " ".join(command).splitlines():
                words = shlex.split(line)
                if words[:1] == ["klaviyo-consumer"]:
                    found.append(words[1:])
        else:
            found.append(list(command))
    return found


def test_every_command_the_stack_runs_parses_with_the_real_cli(model: dict[str, Any]) -> None:
    invocations = _cli_invocations(model)
    assert len(invocations) >= 5  # sandbox, two onboardings, the service, traffic
    parser = build_parser()
    for argv in invocations:
        parser.parse_args(argv)  # exits (SystemExit) on an unknown or malformed argument
