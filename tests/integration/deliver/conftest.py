"""Fixtures: a sandbox on a free port (real clock), a recording client, a sink factory.

Every request a sink sends goes through ``RecordingClient``, so each test can assert that
all of them satisfy the vendored contract (``consumer.klaviyo.contract.validate_request``)
and can read when they were sent. ``Outcomes`` collects the sink's outcomes and lets a test
wait for them with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from consumer.deliver import (
    Accepted,
    DeadLettered,
    KlaviyoClient,
    Outcome,
    Parked,
    RetryPolicy,
    Sink,
)
from consumer.klaviyo import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES, validate_request
from consumer.merchant import MerchantSettings
from consumer.sandbox import Sandbox
from consumer.settings import DeliverySettings, KlaviyoSettings


@dataclass(frozen=True)
class SentRequest:
    """One request as the sink sent it."""

    path: str
    body: bytes
    sent_at: float  # time.monotonic()
    answered_at: float
    status: int | None  # None: no HTTP answer

    @property
    def operation_id(self) -> str:
        return BULK_CREATE_EVENTS if "event" in self.path else BULK_SUBSCRIBE_PROFILES

    def events(self) -> int:
        data = orjson.loads(self.body)["data"]["attributes"]
        if "events-bulk-create" in data:
            return sum(
                len(e["attributes"]["events"]["data"]) for e in data["events-bulk-create"]["data"]
            )
        return len(data["profiles"]["data"])


class RecordingClient(KlaviyoClient):
    """The real client, remembering every request it sent."""

    def __init__(self, settings: KlaviyoSettings) -> None:
        super().__init__(settings)
        self.sent: list[SentRequest] = []

    async def post(self, path: str, api_key: SecretStr, body: bytes) -> Any:
        sent_at = time.monotonic()
        try:
            response = await super().post(path, api_key, body)
        except Exception:
            self.sent.append(SentRequest(path, body, sent_at, time.monotonic(), None))
            raise
        self.sent.append(SentRequest(path, body, sent_at, time.monotonic(), response.status))
        return response

    def assert_contract(self, *, skip: int = 0) -> None:
        """Every request sent so far (after the first ``skip``) satisfies the contract."""
        now = datetime.now(UTC)
        for number, request in enumerate(self.sent[skip:], start=skip):
            violations = validate_request(request.operation_id, request.body, now=now)
            assert violations == [], f"request {number} breaks the contract: {violations[:3]}"


class Outcomes:
    """Collects a sink's outcomes; tests wait on them with deadlines."""

    def __init__(self) -> None:
        self.all: list[Outcome] = []
        self.by_token: dict[Hashable, list[Outcome]] = {}
        self._changed = asyncio.Event()

    def __call__(self, outcome: Outcome) -> None:
        self.all.append(outcome)
        self.by_token.setdefault(outcome.token, []).append(outcome)
        self._changed.set()

    def of(self, kind: type[Outcome]) -> list[Any]:
        return [o for o in self.all if isinstance(o, kind)]

    @property
    def accepted(self) -> list[Accepted]:
        return self.of(Accepted)

    @property
    def dead_lettered(self) -> list[DeadLettered]:
        return self.of(DeadLettered)

    @property
    def parked(self) -> list[Parked]:
        return self.of(Parked)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Return once ``predicate()`` holds; fail the test after ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"condition not met after {within} s; outcomes: {self.summary()}"
            ) from None

    async def wait_count(self, count: int, within: float = 10.0) -> None:
        """Wait until ``count`` outcomes were reported."""
        await self.wait_for(lambda: len(self.all) >= count, within)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.all:
            name = type(outcome).__name__
            if not isinstance(outcome, Accepted):
                name += f"({outcome.reason})"
            counts[name] = counts.get(name, 0) + 1
        return counts

    def assert_once_each(self, tokens: int) -> None:
        """Exactly one outcome for each of ``tokens`` submitted tokens."""
        assert len(self.by_token) == tokens
        repeated = {t: o for t, o in self.by_token.items() if len(o) != 1}
        assert not repeated, f"tokens with several outcomes: {list(repeated)[:5]}"


@dataclass
class Harness:
    """A sink wired to the sandbox, its client, outcomes and merchant table."""

    sink: Sink
    client: RecordingClient
    outcomes: Outcomes
    merchants: dict[str, MerchantSettings] = field(default_factory=dict)
    submitted: int = 0

    def submit(self, operations: list[Any]) -> None:
        for operation in operations:
            self.sink.submit(operation, ("p0", self.submitted))
            self.submitted += 1


SinkFactory = Callable[..., Harness]

# Fast defaults for tests: short linger and retries; everything else as in production.
FAST_DELIVERY: Mapping[str, Any] = {"linger_seconds": 0.05, "retry_budget_seconds": 5.0}
FAST_RETRY = RetryPolicy(initial_seconds=0.02, max_seconds=0.2)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.run(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
async def sink_factory(sandbox: Sandbox) -> AsyncIterator[SinkFactory]:
    harnesses: list[Harness] = []

    def make(
        merchants: Mapping[str, MerchantSettings],
        *,
        on: Sandbox | None = None,
        retry: RetryPolicy = FAST_RETRY,
        park_cooldown_seconds: float = 60.0,
        klaviyo: Mapping[str, Any] | None = None,
        **delivery: Any,
    ) -> Harness:
        client = RecordingClient(KlaviyoSettings(base_url=(on or sandbox).url, **(klaviyo or {})))
        outcomes = Outcomes()
        table = dict(merchants)
        sink = Sink(
            DeliverySettings(**{**FAST_DELIVERY, **delivery}),
            client,
            table.get,
            outcomes,
            retry=retry,
            park_cooldown_seconds=park_cooldown_seconds,
        )
        harness = Harness(sink, client, outcomes, table)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.sink.close(time.monotonic() + 5.0)
