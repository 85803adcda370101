"""``klaviyo-consumer run`` with a configuration mistake: exit 2, one line naming the setting.

Real child processes (what an operator sees); each takes about a second (the wrong bootstrap
address waits out its 2 s start-up timeout first). Only the missing input topic needs the
session's broker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.devstack.broker import free_port
from consumer.integrations.crypto import generate_kek
from tests.helpers.kafka import unique_name
from tests.helpers.secrets import SecretScanner
from tests.integration.conftest import TopicFactory

ERROR_PREFIX = "klaviyo-consumer: configuration error: "


def run_service(extra: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KLAVIYO_CONSUMER_")}
    env |= {
        "KLAVIYO_CONSUMER_HTTP__HOST": "127.0.0.1",
        "KLAVIYO_CONSUMER_HTTP__PORT": "0",
        "KLAVIYO_CONSUMER_INTEGRATIONS__KEY_ENCRYPTION_KEYS": f'{{"k1": "{generate_kek()}"}}',
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "consumer.cli.main", "run", "--shutdown-seconds", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_config_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, no traceback, exactly one error line, naming every one of ``names``."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, output
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_run_unknown_top_level_variable_exits_2_naming_it() -> None:
    result = run_service({"KLAVIYO_CONSUMER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    line = assert_config_error(
        result,
        "KLAVIYO_CONSUMER_KAFKA_BOOTSTRAP_SERVERS",
        "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS",
    )
    assert result.stderr.strip() == line  # nothing else was printed


def test_run_unknown_nested_variable_exits_2_naming_it() -> None:
    result = run_service({"KLAVIYO_CONSUMER_DELIVERY__LINGER_SECOND": "1"})
    assert_config_error(
        result,
        "KLAVIYO_CONSUMER_DELIVERY__LINGER_SECOND",
        "KLAVIYO_CONSUMER_DELIVERY__LINGER_SECONDS",
    )


def test_run_unknown_toml_key_exits_2_naming_it(tmp_path: Path) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text("[derive]\ncheckpoint_interval = 2\n")
    result = run_service({"KLAVIYO_CONSUMER_SETTINGS_FILE": str(toml)})
    assert_config_error(result, "derive.checkpoint_interval", "derive.checkpoint_interval_seconds")


def test_run_invalid_toml_exits_2_naming_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text('[kafka]\nbootstrap_servers = "unterminated\n')
    result = run_service({"KLAVIYO_CONSUMER_SETTINGS_FILE": str(toml)})
    assert_config_error(result, "KLAVIYO_CONSUMER_SETTINGS_FILE", "not valid TOML", "line 2")


def test_run_sasl_without_mechanism_exits_2_naming_it() -> None:
    result = run_service({"KLAVIYO_CONSUMER_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"})
    assert_config_error(result, "kafka.sasl_mechanism", "KLAVIYO_CONSUMER_KAFKA__SASL_MECHANISM")


def test_run_busy_http_port_exits_2_naming_it(busy_port: int) -> None:
    # No broker is needed: the endpoints are bound before the broker is waited for.
    result = run_service(
        {
            "KLAVIYO_CONSUMER_HTTP__PORT": str(busy_port),
            "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        }
    )
    assert_config_error(result, "http.port", "KLAVIYO_CONSUMER_HTTP__PORT", str(busy_port))


def test_run_wrong_bootstrap_exits_2_after_the_startup_timeout() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = run_service(
        {
            "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS": address,
            "KLAVIYO_CONSUMER_KAFKA__STARTUP_TIMEOUT_SECONDS": "2",
        }
    )
    assert_config_error(
        result, "kafka.bootstrap_servers", "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", address
    )


def test_run_missing_input_topic_exits_2_naming_its_setting(
    bootstrap_servers: str, topic_factory: TopicFactory
) -> None:
    missing = unique_name("no-such-orders")
    kek = generate_kek()
    started = time.monotonic()
    result = run_service(
        {
            "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
            "KLAVIYO_CONSUMER_KAFKA__GROUP_ID": unique_name("missing-topic"),
            "KLAVIYO_CONSUMER_INTEGRATIONS__KEY_ENCRYPTION_KEYS": f'{{"k1": "{kek}"}}',
            "KLAVIYO_CONSUMER_TOPICS__RETURNS": topic_factory(),
            "KLAVIYO_CONSUMER_TOPICS__STOREFRONT_EVENTS": topic_factory(),
            "KLAVIYO_CONSUMER_TOPICS__ORDERS": missing,
        },
        timeout=30,
    )
    assert time.monotonic() - started < 20  # not waited out: a broker answered at once
    line = assert_config_error(result, "topics.orders", "KLAVIYO_CONSUMER_TOPICS__ORDERS", missing)
    assert "topics.returns" not in line and "topics.storefront_events" not in line
    scanner = SecretScanner(kek)
    scanner.add("run output", result.stdout + result.stderr)
    scanner.assert_clean()
