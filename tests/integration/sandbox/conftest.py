"""Fixtures: a sandbox on a free port with a manual clock, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from consumer.sandbox import Sandbox

from .helpers import ACCOUNT, KEY, Client, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sandbox(clock: ManualClock) -> AsyncIterator[Sandbox]:
    async with Sandbox.run(host="127.0.0.1", port=0, clock=clock) as running:
        running.add_account(ACCOUNT, KEY)
        yield running


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, sandbox)
