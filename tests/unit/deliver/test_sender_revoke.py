"""``Sink.revoke``: a rebalance takes partitions away; their work stops and gets no outcome."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import orjson

from consumer.deliver import Accepted, KlaviyoResponse
from tests.unit.deliver import factories
from tests.unit.deliver.test_sender import KEY, Run, always, reply

OTHER = "merchant-b"


def two_merchants(**settings: Any) -> Run:
    merchants = {m: factories.merchant(m, key=KEY) for m in (factories.MERCHANT, OTHER)}
    return Run(always(reply(202)), merchants=merchants, **settings)


def sent_unique_ids(run: Run) -> list[str]:
    text = [orjson.dumps(body).decode() for body in run.client.requests]
    return [f"ret-{n}" for n in range(100) if any(f'"ret-{n}"' in t for t in text)]


def in_partition(partition: int) -> Any:
    return lambda token: token[0] == partition


def tokens(run: Run) -> list[tuple[int, int]]:
    """Tokens with an outcome, each as often as reported, in order."""
    return sorted(cast(tuple[int, int], o.token) for o in run.outcomes)


async def test_revoke_drops_queued_work_of_the_partition_and_keeps_the_rest() -> None:
    run = two_merchants(linger_seconds=0.2)
    for n in range(5):
        run.sink.submit(factories.event(n), (0, n))
        run.sink.submit(factories.event(10 + n, merchant=OTHER), (1, n))

    assert run.sink.revoke(in_partition(0)) == 5

    assert run.sink.outstanding == 5
    assert await run.sink.flush(time.monotonic() + 5)
    assert tokens(run) == [(1, n) for n in range(5)]
    assert all(isinstance(o, Accepted) for o in run.outcomes)
    assert sent_unique_ids(run) == [f"ret-{10 + n}" for n in range(5)]
    assert run.sink.stats.revoked == 5
    await run.close()


async def test_revoke_stops_a_lane_with_its_request_in_flight() -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(path: str, api_key: Any, body: bytes) -> KlaviyoResponse:
        entered.set()
        await gate.wait()  # never set: only cancelling the lane ends this request
        raise AssertionError("the revoked lane's request went on")

    run = two_merchants()
    run.client.post = stuck  # type: ignore[method-assign]
    run.sink.submit(factories.event(0), (0, 0))
    async with asyncio.timeout(5):
        await entered.wait()

    assert run.sink.revoke(in_partition(0)) == 1

    assert run.sink.outstanding == 0
    assert await run.sink.flush(time.monotonic() + 1)  # idle at once: no lane waits on it
    lanes = [t for t in asyncio.all_tasks() if t.get_name().startswith("klaviyo-lane")]
    await asyncio.wait(lanes, timeout=5)
    assert all(lane.cancelled() for lane in lanes)
    assert run.outcomes == []
    await run.close()


async def test_revoke_requeues_the_kept_part_of_a_stopped_lanes_batch() -> None:
    # One lane holding two partitions' operations (not how the outbox is keyed, but the
    # sink does not rely on it): the revoked half goes, the other half is still delivered.
    never = asyncio.Event()
    entered = asyncio.Event()
    run = two_merchants(linger_seconds=0.05)

    async def first_stuck(path: str, api_key: Any, body: bytes) -> KlaviyoResponse:
        if not entered.is_set():
            entered.set()
            await never.wait()  # the first request hangs until its lane is stopped
        run.client.requests.append(orjson.loads(body))
        return reply(202)

    run.client.post = first_stuck  # type: ignore[method-assign]
    for n in range(4):
        run.sink.submit(factories.event(n), (n % 2, n))
    async with asyncio.timeout(5):
        await entered.wait()

    assert run.sink.revoke(in_partition(0)) == 2
    await run.settle(2)

    assert tokens(run) == [(1, 1), (1, 3)]
    assert sent_unique_ids(run) == ["ret-1", "ret-3"]
    assert run.sink.outstanding == 0
    await run.close()


async def test_revoke_keeps_a_repeat_whose_first_copy_was_revoked() -> None:
    run = two_merchants(linger_seconds=0.1)
    run.sink.submit(factories.event(0), (0, 0))
    run.sink.submit(factories.event(0), (1, 0))  # same key: coalesced into the first
    run.sink.submit(factories.event(1), (0, 1))
    run.sink.submit(factories.event(1), (1, 1))

    assert run.sink.revoke(lambda token: token in {(0, 0), (1, 1)}) == 2
    await run.settle(2)

    assert tokens(run) == [(0, 1), (1, 0)]
    assert all(isinstance(o, Accepted) for o in run.outcomes)
    assert sent_unique_ids(run) == ["ret-0", "ret-1"]
    await run.close()
