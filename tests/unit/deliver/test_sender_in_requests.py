"""What the sink tells the runtime for back-pressure and linger: operations in a request per
token group (a lane's batch in hand), and lingering from when an operation was produced."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from consumer.deliver import Accepted, KlaviyoResponse
from tests.unit.deliver import factories
from tests.unit.deliver.test_sender import KEY, FakeClient, Run, always, reply
from tests.unit.deliver.test_sender_revoke import OTHER, in_partition, two_merchants

OTHER_KEY = "pk_test_merchant_b_0001"


def partition(token: Any) -> Any:
    return token[0]


class Gate(FakeClient):
    """A client whose requests hang until ``opened``; counts requests entered."""

    def __init__(self, run: Run) -> None:
        super().__init__(always(reply(202)))
        self.opened = asyncio.Event()
        self.entered = 0
        self.changed = asyncio.Event()
        run.client = self
        run.sink._client = self

    async def post(self, path: str, api_key: SecretStr, body: bytes) -> KlaviyoResponse:
        self.entered += 1
        self.changed.set()
        await self.opened.wait()
        self.requests.append(orjson.loads(body))
        return reply(202)

    async def wait_entered(self, count: int) -> None:
        async with asyncio.timeout(5):
            while self.entered < count:
                self.changed.clear()
                await self.changed.wait()


async def test_in_requests_counts_each_lanes_batch_in_hand_per_group_not_what_waits() -> None:
    run = two_merchants(batch_max_events=3, token_group=partition)
    gate = Gate(run)
    for n in range(5):
        run.sink.submit(factories.event(n), (0, n))
    run.sink.submit(factories.event(10, merchant=OTHER), (1, 0))
    await gate.wait_entered(2)

    assert run.sink.in_requests(0) == 3  # one full batch out, two operations wait behind it
    assert run.sink.in_requests(1) == 1
    gate.opened.set()
    await run.settle(6)
    assert all(isinstance(o, Accepted) for o in run.outcomes)
    assert (run.sink.in_requests(0), run.sink.in_requests(1)) == (0, 0)
    await run.close()


async def test_in_requests_drops_what_a_revoke_takes_or_puts_back_in_the_queue() -> None:
    run = two_merchants(linger_seconds=0.05, token_group=partition)
    gate = Gate(run)
    for n in range(4):
        run.sink.submit(factories.event(n), (n % 2, n))  # one lane, two partitions
    await gate.wait_entered(1)
    assert (run.sink.in_requests(0), run.sink.in_requests(1)) == (2, 2)

    run.sink.revoke(in_partition(0))

    assert (run.sink.in_requests(0), run.sink.in_requests(1)) == (0, 0)  # 1's are queued again
    gate.opened.set()
    await run.settle(2)
    assert run.sink.in_requests(1) == 0
    await run.close()


async def test_in_requests_is_zero_after_close_parks_the_batch_in_hand() -> None:
    run = two_merchants(token_group=partition)
    gate = Gate(run)
    run.sink.submit(factories.event(0), (0, 0))
    await gate.wait_entered(1)
    assert run.sink.in_requests(0) == 1
    await run.sink.close(time.monotonic() + 0.1)
    assert run.sink.in_requests(0) == 0


async def test_linger_counts_from_when_the_operation_was_produced() -> None:
    run = Run(always(reply(202)), linger_seconds=30.0)
    # Produced a linger ago (it waited upstream): sent at once, not 30 s from now.
    run.sink.submit(factories.event(0), 0, time.monotonic() - 30.0)
    await run.settle(1, within=5.0)
    assert isinstance(run.outcomes[0], Accepted)
    await run.close()


async def test_a_production_time_ahead_of_the_clock_lingers_from_now() -> None:
    run = Run(always(reply(202)), linger_seconds=0.1)
    run.sink.submit(factories.event(0), 0, time.monotonic() + 3_600.0)
    await run.settle(1, within=5.0)
    await run.close()


async def test_under_backlog_a_stalled_groups_lane_sends_what_it_has_at_once() -> None:
    run = two_merchants(linger_seconds=1.0, token_group=partition)  # backlog wait: 20 s
    run.sink.set_backlog(True)
    run.sink.submit(factories.event(0), (0, 0))
    run.sink.submit(factories.event(1, merchant=OTHER), (1, 0))

    run.sink.set_backlog(True, stalled={0})  # partition 0 paused, nothing of it in a request

    await run.settle(1, within=5.0)
    assert [o.token for o in run.outcomes] == [(0, 0)]  # partition 1's lane still waits
    await run.close()


class Journal(FakeClient):
    """Requests hang until ``opened``; notes each request entering and being answered."""

    def __init__(self, run: Run) -> None:
        super().__init__(always(reply(202)))
        self.opened = asyncio.Event()
        self.entered = asyncio.Event()
        self.journal: list[tuple[str, str, int]] = []
        run.client = self
        run.sink._client = self

    async def post(self, path: str, api_key: SecretStr, body: bytes) -> KlaviyoResponse:
        entry = orjson.loads(body)["data"]["attributes"]["events-bulk-create"]["data"]
        merchant = "a" if api_key.get_secret_value() == KEY else "b"
        events = sum(len(e["attributes"]["events"]["data"]) for e in entry)
        self.journal.append(("enter", merchant, events))
        self.entered.set()
        await self.opened.wait()
        self.journal.append(("answer", merchant, events))
        return reply(202)


@pytest.mark.parametrize(
    "batch_max_events",
    [
        # The runtime marks a partition stalled in the turn it pauses, before any lane sent:
        # a full lane of it goes first, and the partial lanes send only once that request is
        # answered (the partition may resume and fill them meanwhile).
        pytest.param(3, id="a-full-lane-first-then-the-partial-ones"),
        # No lane full: each request of a stalled partition frees room upstream, so one goes
        # at a time, fullest first (all at once, every one would be partial).
        pytest.param(10, id="no-lane-full-the-fullest-alone-then-the-next"),
    ],
)
async def test_a_stalled_group_sends_one_lane_at_a_time_fullest_first(
    batch_max_events: int,
) -> None:
    merchants = {m: factories.merchant(m, key=KEY if m == factories.MERCHANT else OTHER_KEY)
                 for m in (factories.MERCHANT, OTHER)}  # fmt: skip
    run = Run(always(reply(202)), merchants, batch_max_events=batch_max_events,
              linger_seconds=1.0, token_group=partition)  # fmt: skip
    client = Journal(run)
    run.sink.set_backlog(True)
    produced = time.monotonic() - 60.0  # a backlog: long past its linger
    run.sink.submit(factories.event(0, merchant=OTHER), (0, 0), produced)
    for n in range(1, 4):
        run.sink.submit(factories.event(n), (0, n), produced)

    run.sink.set_backlog(True, stalled={0})
    async with asyncio.timeout(5):
        await client.entered.wait()
    client.opened.set()
    await run.settle(4)

    assert client.journal == [
        ("enter", "a", 3),
        ("answer", "a", 3),
        ("enter", "b", 1),
        ("answer", "b", 1),
    ]
    await run.close()
