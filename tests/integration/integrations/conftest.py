"""Fixtures for the integrations tests: the Klaviyo sandbox, KEKs and a CLI runner.

The CLI runs in-process (``consumer.cli.main.main``) on a worker thread, so the sandbox keeps
serving on the test's event loop while the command makes its HTTP calls; its settings come
from environment variables, exactly as in production.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from consumer.cli.main import main
from consumer.integrations import Keyring, generate_kek
from consumer.sandbox import Sandbox
from consumer.settings import KlaviyoSettings, TopicSettings
from tests.helpers.kafka import unique_name


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A fresh Klaviyo sandbox on a free loopback port."""
    async with Sandbox.run(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def klaviyo_settings(sandbox: Sandbox) -> KlaviyoSettings:
    """Klaviyo settings pointed at the sandbox."""
    return KlaviyoSettings(base_url=sandbox.url, request_timeout_seconds=5.0)


@pytest.fixture
def integration_topics() -> TopicSettings:
    """Unique integrations and audit topic names (the CLI creates them on first write)."""
    return TopicSettings(
        integrations=unique_name("integrations"), integrations_audit=unique_name("audit")
    )


@dataclass
class CliResult:
    """What one CLI invocation printed and returned."""

    code: int
    out: str
    err: str


CliRunner = Callable[..., Awaitable[CliResult]]


@dataclass
class CliEnv:
    """The environment the CLI reads its settings from; KEKs may change between runs."""

    monkeypatch: pytest.MonkeyPatch
    keys: dict[str, str]
    primary: str | None = None

    def keyring(self) -> Keyring:
        """The keyring the CLI builds from this environment."""
        raw = {key_id: base64.b64decode(value) for key_id, value in self.keys.items()}
        return Keyring(raw, self.primary)

    def apply(self) -> None:
        """Write the KEK settings into the environment."""
        prefix = "KLAVIYO_CONSUMER_INTEGRATIONS__"
        self.monkeypatch.setenv(prefix + "KEY_ENCRYPTION_KEYS", json.dumps(self.keys))
        if self.primary:
            self.monkeypatch.setenv(prefix + "PRIMARY_KEY_ID", self.primary)
        else:
            self.monkeypatch.delenv(prefix + "PRIMARY_KEY_ID", raising=False)


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    bootstrap_servers: str,
    integration_topics: TopicSettings,
    sandbox: Sandbox,
) -> CliEnv:
    """Environment for the CLI: the session broker, unique topics, the sandbox, KEK ``k1``."""
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", bootstrap_servers)
    monkeypatch.setenv("KLAVIYO_CONSUMER_TOPICS__INTEGRATIONS", integration_topics.integrations)
    monkeypatch.setenv(
        "KLAVIYO_CONSUMER_TOPICS__INTEGRATIONS_AUDIT", integration_topics.integrations_audit
    )
    monkeypatch.setenv("KLAVIYO_CONSUMER_KLAVIYO__BASE_URL", sandbox.url)
    monkeypatch.setenv("KLAVIYO_CONSUMER_KLAVIYO__REQUEST_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("USER", "test-operator")
    env = CliEnv(monkeypatch, {"k1": generate_kek()})
    env.apply()
    return env


@pytest.fixture
def run_cli(cli_env: CliEnv, capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``await run_cli("integrations", "list", stdin=None)`` → ``CliResult``."""
    lock = asyncio.Lock()

    async def run(*argv: str, stdin: str | None = None) -> CliResult:
        async with lock:  # stdout capture and stdin are process-wide
            cli_env.apply()
            capsys.readouterr()
            saved = sys.stdin
            sys.stdin = io.StringIO(stdin or "")
            try:
                code = await asyncio.to_thread(main, list(argv))
            finally:
                sys.stdin = saved
            captured = capsys.readouterr()
            return CliResult(code, captured.out, captured.err)

    return run
