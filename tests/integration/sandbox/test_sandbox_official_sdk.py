"""The official Klaviyo Python SDK (klaviyo-api) against the sandbox, with its own revision.

The SDK is synchronous (urllib3): its calls run in a worker thread while the sandbox serves
on the test's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException

from consumer.sandbox import Sandbox
from tests.unit.klaviyo import bodies

from .helpers import ACCOUNT, KEY

EVENTS_POINTER = "/data/attributes/events-bulk-create/data"


def _sdk(sandbox: Sandbox) -> KlaviyoAPI:
    return KlaviyoAPI(KEY, max_delay=0, max_retries=0, test_host=sandbox.url)


async def _call(function: Any, body: dict[str, Any]) -> Any:
    return await asyncio.to_thread(function, body)


async def test_sdk_bulk_event_job_with_its_default_revision_is_accepted(
    sandbox: Sandbox,
) -> None:
    sdk = _sdk(sandbox)
    body = bodies.bulk(
        bodies.entry([bodies.event(unique_id="sdk-1"), bodies.event(unique_id="sdk-2")])
    )
    await _call(sdk.Events.bulk_create_events, body)
    stored = await sandbox.wait_for_events(ACCOUNT, 2, timeout=5)
    assert sorted(e.unique_id for e in stored) == ["sdk-1", "sdk-2"]
    assert sdk._REVISION == "2026-10-15"
    assert sandbox.stats.count(202, account_id=ACCOUNT) == 1


async def test_sdk_subscription_job_is_accepted(sandbox: Sandbox) -> None:
    sandbox.add_lists(ACCOUNT, "Y6nRLr")
    sdk = _sdk(sandbox)
    await _call(sdk.Profiles.bulk_subscribe_profiles, bodies.subscribe(list_id="Y6nRLr"))
    [subscription] = await sandbox.wait_for_subscriptions(ACCOUNT, 1, timeout=5)
    assert subscription.phone_number == "+15005550006"


async def test_sdk_invalid_event_gets_400_with_a_pointer(sandbox: Sandbox) -> None:
    sdk = _sdk(sandbox)
    body = bodies.bulk(bodies.entry([bodies.event(metric="M" * 200)]))
    with pytest.raises(ApiException) as raised:
        await _call(sdk.Events.bulk_create_events, body)
    assert raised.value.status == 400
    assert f"{EVENTS_POINTER}/0/attributes/events/data/0/attributes/metric" in str(
        raised.value.body
    )
    assert sandbox.unique_event_count(ACCOUNT) == 0


async def test_sdk_subscription_to_unknown_list_gets_400_with_a_pointer(
    sandbox: Sandbox,
) -> None:
    sandbox.add_lists(ACCOUNT, "Y6nRLr")
    sdk = _sdk(sandbox)
    with pytest.raises(ApiException) as raised:
        await _call(sdk.Profiles.bulk_subscribe_profiles, bodies.subscribe(list_id="GONE01"))
    assert raised.value.status == 400
    assert "/data/relationships/list/data/id" in str(raised.value.body)
