"""``Sink`` with a scripted fake client: every path ends in exactly one outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from consumer.deliver import (
    Accepted,
    DeadLettered,
    KlaviyoClient,
    KlaviyoResponse,
    KlaviyoUnavailable,
    Outcome,
    Parked,
    RetryPolicy,
    Sink,
    SinkClosed,
)
from consumer.merchant import MerchantSettings
from consumer.settings import DeliverySettings, KlaviyoSettings
from tests.unit.deliver import factories

M = factories.MERCHANT
KEY = "pk_test_merchant_a_0001"
JSONAPI = {"content-type": "application/vnd.api+json"}
# No linger, short retries, and rate limits out of the way (the limiter has its own tests).
FAST: dict[str, Any] = {
    "linger_seconds": 0.0,
    "retry_budget_seconds": 2.0,
    "events_burst_per_second": 1_000,
    "events_steady_per_minute": 100_000,
}
Handler = Callable[[str, dict[str, Any], str], "KlaviyoResponse | Exception"]


def reply(status: int = 202, body: Any = b"", **headers: str) -> KlaviyoResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return KlaviyoResponse(
        status, {**JSONAPI, **{k.lower(): v for k, v in headers.items()}}, raw, 0.001
    )


def pointer_error(*pointers: str, detail: str = "bad value") -> KlaviyoResponse:
    errors = [{"id": "1", "code": "invalid", "title": "Invalid input.", "detail": detail,
               "source": {"pointer": p}} for p in pointers]  # fmt: skip
    return reply(400, {"errors": errors})


def event_pointer(entry: int, event: int = 0) -> str:
    return f"/data/attributes/events-bulk-create/data/{entry}/attributes/events/data/{event}"


class FakeClient(KlaviyoClient):
    """Answers with ``handler(path, body, key)``; remembers requests."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(KlaviyoSettings(base_url="http://klaviyo.invalid"))
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.closed = False

    async def post(self, path: str, api_key: SecretStr, body: bytes) -> KlaviyoResponse:
        parsed = orjson.loads(body)
        self.requests.append(parsed)
        await asyncio.sleep(0)
        answer = self.handler(path, parsed, api_key.get_secret_value())
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        self.closed = True


class Run:
    """A sink with a fake client and collected outcomes."""

    def __init__(self, handler: Handler, merchants: dict[str, MerchantSettings] | None = None,
                 **settings: Any) -> None:  # fmt: skip
        self.outcomes: list[Outcome] = []
        self.changed = asyncio.Event()
        self.client = FakeClient(handler)
        self.merchants = {M: factories.merchant(key=KEY)} if merchants is None else merchants
        self.cooldown = settings.pop("park_cooldown_seconds", 60.0)
        token_group = settings.pop("token_group", None)
        self.sink = Sink(
            DeliverySettings(**{**FAST, **settings}),
            self.client,
            self.merchants.get,
            self.record,
            retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.05),
            park_cooldown_seconds=self.cooldown,
            token_group=token_group,
        )
        self.n = 0

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.changed.set()

    def submit(self, *operations: Any) -> list[Hashable]:
        tokens = []
        for operation in operations:
            self.sink.submit(operation, self.n)
            tokens.append(self.n)
            self.n += 1
        return tokens

    async def settle(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.outcomes) < count:
                self.changed.clear()
                await self.changed.wait()

    def kinds(self) -> dict[Hashable, str]:
        return {o.token: type(o).__name__ for o in self.outcomes}

    async def close(self) -> None:
        await self.sink.close(time.monotonic() + 1)


def always(answer: KlaviyoResponse | Exception) -> Handler:
    return lambda path, body, key: answer


async def test_sink_accepts_and_reports_each_token_once() -> None:
    run = Run(always(reply(202)))
    run.submit(*[factories.event(n) for n in range(30)])
    await run.settle(30)
    assert all(isinstance(o, Accepted) for o in run.outcomes)
    assert sorted(o.token for o in run.outcomes) == list(range(30))
    assert run.sink.outstanding == 0
    assert run.sink.stats.accepted == 30
    await run.close()
    assert run.client.closed


async def test_sink_unknown_or_disabled_merchant_parked_without_request() -> None:
    run = Run(always(reply(202)), merchants={"off": factories.merchant("off", enabled=False)})
    run.submit(factories.event(0), factories.event(1, merchant="off"))
    await run.settle(2)
    assert [(type(o).__name__, getattr(o, "reason", "")) for o in run.outcomes] == [
        ("Parked", "merchant_not_integrated"),
        ("Parked", "merchant_disabled"),
    ]
    assert run.client.requests == []
    await run.close()


async def test_sink_merchant_removed_before_send_parks_its_batch() -> None:
    run = Run(always(reply(202)), linger_seconds=0.05)
    run.submit(factories.event(0))
    del run.merchants[M]
    await run.settle(1)
    assert isinstance(run.outcomes[0], Parked)
    assert run.outcomes[0].reason == "merchant_not_integrated"
    await run.close()


async def test_sink_400_without_pointer_splits_to_isolate_the_bad_event() -> None:
    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse:
        text = orjson.dumps(body).decode()
        if '"ret-13"' in text:
            return reply(400, {"errors": [{"id": "1", "code": "invalid", "title": "Invalid.",
                                           "detail": "something is wrong"}]})  # fmt: skip
        return reply(202)

    run = Run(handler)
    run.submit(*[factories.event(n) for n in range(64)])
    await run.settle(64)
    dead = [o for o in run.outcomes if isinstance(o, DeadLettered)]
    assert [(o.token, o.reason) for o in dead] == [(13, "klaviyo_rejected")]
    assert "something is wrong" in dead[0].detail
    assert len(run.outcomes) == 64
    assert run.sink.stats.splits == 6  # 64 → 32 → 16 → 8 → 4 → 2 → 1
    await run.close()


async def test_sink_400_pointers_dead_letter_named_events_and_resend_rest() -> None:
    calls = []

    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse:
        calls.append(body)
        if len(calls) == 1:
            # Shopper 0 holds events 0..9 in entry 0; entry 1 is shopper 1 (events 10..19).
            return pointer_error(event_pointer(0, 3) + "/attributes/time", event_pointer(1, 0))
        return reply(202)

    run = Run(handler)
    run.submit(*[factories.event(n) for n in range(20)])
    await run.settle(20)
    dead = sorted(o.token for o in run.outcomes if isinstance(o, DeadLettered))
    assert dead == [3, 10]
    second = calls[1]["data"]["attributes"]["events-bulk-create"]["data"]
    assert sum(len(e["attributes"]["events"]["data"]) for e in second) == 18
    await run.close()


async def test_sink_400_pointer_into_profile_dead_letters_all_its_events() -> None:
    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse:
        entries = body["data"]["attributes"]["events-bulk-create"]["data"]
        if len(entries) == 2:
            return pointer_error(
                "/data/attributes/events-bulk-create/data/1/attributes/profile/data/attributes/email"
            )
        return reply(202)

    run = Run(handler)
    run.submit(*[factories.event(n) for n in range(20)])
    await run.settle(20)
    dead = sorted(o.token for o in run.outcomes if isinstance(o, DeadLettered))
    assert dead == list(range(10, 20))
    await run.close()


async def test_sink_5xx_retried_then_parked_after_the_budget() -> None:
    run = Run(always(reply(503, b"")), retry_budget_seconds=0.3, park_cooldown_seconds=60.0)
    run.submit(factories.event(0), factories.event(1))
    await run.settle(2)
    assert {(type(o).__name__, getattr(o, "reason", "")) for o in run.outcomes} == {
        ("Parked", "klaviyo_unavailable")
    }
    assert len(run.client.requests) >= 3
    run.submit(factories.event(2))  # parked at once during the cool-down
    await run.settle(3)
    assert isinstance(run.outcomes[2], Parked)
    assert len(run.client.requests) == run.sink.stats.requests["bulk_create_events"]
    # The other endpoint of the merchant is not parked by an events outage.
    await run.close()


async def test_sink_park_cooldown_ends_and_merchant_is_tried_again() -> None:
    answers = iter([reply(401, {"errors": [{"code": "not_authenticated", "detail": "revoked"}]})])

    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse:
        return next(answers, reply(202))

    run = Run(handler, park_cooldown_seconds=60.0)
    clock = [time.monotonic()]
    run.sink._parks._clock = lambda: clock[0]
    run.submit(factories.event(0))
    await run.settle(1)
    assert isinstance(run.outcomes[0], Parked)
    [(merchant, endpoint, reason, _left)] = run.sink.parks()
    assert (merchant, endpoint, reason) == (M, None, "unauthorized")
    run.submit(factories.event(1))
    await run.settle(2)
    assert isinstance(run.outcomes[1], Parked)  # within the cool-down
    clock[0] += 60.0
    run.submit(factories.event(2))
    await run.settle(3)
    assert isinstance(run.outcomes[2], Accepted)
    await run.close()


async def test_sink_new_key_lifts_a_key_park_at_once() -> None:
    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse:
        if key == KEY:
            return reply(401, {"errors": [{"code": "not_authenticated", "detail": "revoked"}]})
        return reply(202)

    run = Run(handler)
    run.submit(factories.event(0))
    await run.settle(1)
    assert isinstance(run.outcomes[0], Parked)
    run.merchants[M] = factories.merchant(key="pk_test_rotated_0002")
    run.submit(factories.event(1))
    await run.settle(2)
    assert isinstance(run.outcomes[1], Accepted)
    await run.close()


async def test_sink_missing_scope_parks_subscriptions_only() -> None:
    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse:
        if "subscription" in path:
            return reply(403, {"errors": [{"code": "permission_denied", "detail": "scopes"}]})
        return reply(202)

    run = Run(handler)
    run.submit(factories.subscription(0), factories.event(0))
    await run.settle(2)
    run.submit(factories.subscription(1), factories.event(1))
    await run.settle(4)
    kinds = [(type(o.operation).__name__, type(o).__name__) for o in run.outcomes]
    assert sorted(kinds) == [
        ("EventOperation", "Accepted"),
        ("EventOperation", "Accepted"),
        ("SubscriptionOperation", "Parked"),
        ("SubscriptionOperation", "Parked"),
    ]
    await run.close()


async def test_sink_edge_challenge_and_resets_are_retried() -> None:
    edge = {"content-type": "text/html", "cf-mitigated": "challenge"}
    answers = iter(
        [
            reply(403, b"<html>challenge</html>", **edge),
            KlaviyoUnavailable("connection failed: ClientOSError (errno 104)"),
        ]
    )

    def handler(path: str, body: dict[str, Any], key: str) -> KlaviyoResponse | Exception:
        return next(answers, reply(202))

    run = Run(handler)
    run.submit(factories.event(0))
    await run.settle(1)
    assert isinstance(run.outcomes[0], Accepted)
    assert len(run.client.requests) == 3
    assert run.sink.stats.retries == 2
    await run.close()


async def test_sink_html_400_from_the_edge_parks_rather_than_dead_letters() -> None:
    run = Run(always(reply(400, b"<html>400 Bad Request</html>", **{"content-type": "text/html"})))
    run.submit(*[factories.event(n) for n in range(8)])
    await run.settle(8)
    assert {getattr(o, "reason", "") for o in run.outcomes} == {"edge_rejected"}
    assert len(run.client.requests) == 1
    await run.close()


async def test_sink_coalesced_repeat_gets_the_outcome_of_the_first() -> None:
    run = Run(always(reply(202)), linger_seconds=0.05)
    run.submit(factories.event(0), factories.event(0), factories.event(1))
    await run.settle(3)
    outcomes = {o.token: o for o in run.outcomes}
    assert outcomes[1] == Accepted(1, factories.event(0), duplicate=True)
    assert run.sink.stats.coalesced == 1
    [request] = run.client.requests
    events = request["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]
    assert len(events["data"]) == 2
    await run.close()


async def test_sink_close_parks_in_flight_work_at_the_deadline() -> None:
    release = asyncio.Event()

    class Stuck(FakeClient):
        async def post(self, path: str, api_key: SecretStr, body: bytes) -> KlaviyoResponse:
            self.requests.append(orjson.loads(body))
            await release.wait()
            return reply(202)

    run = Run(always(reply(202)))
    run.client = Stuck(always(reply(202)))
    run.sink._client = run.client
    run.submit(*[factories.event(n) for n in range(5)])
    await asyncio.sleep(0)  # let the lane start its request
    await run.sink.close(time.monotonic() + 0.1)
    assert {(type(o).__name__, getattr(o, "reason", "")) for o in run.outcomes} == {
        ("Parked", "shutdown")
    }
    assert len(run.outcomes) == 5
    with pytest.raises(SinkClosed):
        run.sink.submit(factories.event(9), 9)


async def test_sink_close_stops_a_lane_held_by_its_rate_limit_at_once() -> None:
    run = Run(always(reply(202)), batch_max_events=2, events_burst_per_second=1,
              events_steady_per_minute=1)  # fmt: skip
    run.submit(*[factories.event(n) for n in range(4)])
    await run.settle(2)  # the first request; the next may go in about a minute
    async with asyncio.timeout(5):
        await run.sink.close(time.monotonic() + 60)
    assert [(type(o).__name__, getattr(o, "reason", "")) for o in run.outcomes] == [
        ("Accepted", ""),
        ("Accepted", ""),
        ("Parked", "shutdown"),
        ("Parked", "shutdown"),
    ]
    assert len(run.client.requests) == 1


async def test_sink_close_lets_the_request_in_flight_finish() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    class Held(FakeClient):
        async def post(self, path: str, api_key: SecretStr, body: bytes) -> KlaviyoResponse:
            entered.set()
            await release.wait()
            return await super().post(path, api_key, body)

    run = Run(always(reply(202)))
    run.client = Held(always(reply(202)))
    run.sink._client = run.client
    run.submit(factories.event(0), factories.event(1))
    await entered.wait()
    closing = asyncio.create_task(run.sink.close(time.monotonic() + 60))
    release.set()
    async with asyncio.timeout(5):
        await closing
    assert [type(o).__name__ for o in run.outcomes] == ["Accepted", "Accepted"]


async def test_sink_flush_sends_lingering_batches_now() -> None:
    run = Run(always(reply(202)), linger_seconds=30.0)
    run.submit(factories.event(0))
    assert await run.sink.flush(time.monotonic() + 2)
    assert len(run.outcomes) == 1
    await run.close()


async def test_sink_callback_error_is_counted_not_fatal() -> None:
    run = Run(always(reply(202)))

    def explode(outcome: Outcome) -> None:
        run.record(outcome)
        raise RuntimeError("runtime bug")

    run.sink._on_outcome = explode
    run.submit(factories.event(0), factories.event(1))
    await run.settle(2)
    assert run.sink.stats.callback_errors == 2
    assert all(isinstance(o, Accepted) for o in run.outcomes)
    await run.close()


async def test_sink_unexpected_bug_parks_the_lane_with_internal_error() -> None:
    run = Run(always(RuntimeError("bug in the client")))
    run.submit(factories.event(0), factories.event(1))
    await run.settle(2)
    assert {getattr(o, "reason", "") for o in run.outcomes} == {"internal_error"}
    await run.close()


async def test_sink_log_line_has_no_key_or_payload(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="consumer.deliver")
    run = Run(always(reply(202)))
    run.submit(factories.event(0))
    await run.settle(1)
    [record] = [r for r in caplog.records if r.getMessage() == "klaviyo request"]
    fields = {
        k: getattr(record, k) for k in ("merchant_id", "endpoint", "status", "events", "bytes")
    }
    assert fields["merchant_id"] == M and fields["status"] == 202 and fields["events"] == 1
    assert KEY not in repr(vars(record))
    assert "shopper0@example.com" not in repr(vars(record))
    await run.close()
