"""Sandbox admin API, HTML page and ``klaviyo-consumer sandbox`` command."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest

from consumer.cli.main import build_parser
from consumer.cli.sandbox import parse_account
from consumer.sandbox import DEFAULT_SCOPES, Sandbox
from tests.unit.klaviyo import bodies

from .helpers import ACCOUNT, ACCOUNTS, BULK, KEY, SUBSCRIBE, Client, ManualClock


async def test_admin_create_account_with_scoped_keys_and_list_redacted(client: Client) -> None:
    created = await client.admin(
        "POST",
        "/sandbox/accounts",
        {
            "account_id": "shop-7",
            "organization_name": "Shop Seven",
            "keys": [{"key": "pk_shop_seven_secret_1", "scopes": ["events:write"]}],
        },
    )
    assert created.status == 201
    assert created.json()["keys"] == [
        {"key": "pk_…et_1", "scopes": ["events:write"], "revoked": False}
    ]
    body = bodies.bulk(bodies.entry([bodies.event()]))
    assert (await client.post(BULK, body, key="pk_shop_seven_secret_1")).status == 202
    assert (await client.get(ACCOUNTS, key="pk_shop_seven_secret_1")).status == 403
    listing = await client.admin("GET", "/sandbox/accounts")
    assert "pk_shop_seven_secret_1" not in listing.text
    assert KEY not in listing.text
    shop = next(a for a in listing.json()["data"] if a["account_id"] == "shop-7")
    assert (shop["organization_name"], shop["unique_event_count"]) == ("Shop Seven", 1)


async def test_admin_add_key_and_conflicts(client: Client) -> None:
    added = await client.admin(
        "POST", f"/sandbox/accounts/{ACCOUNT}/keys", {"key": "pk_second_key_of_one_1"}
    )
    assert added.status == 201
    assert sorted(added.json()["keys"][1]["scopes"]) == sorted(DEFAULT_SCOPES)
    await client.admin("POST", "/sandbox/accounts", {"account_id": "other"})
    taken = await client.admin("POST", "/sandbox/accounts/other/keys", {"key": KEY})
    assert taken.status == 409
    bad = await client.admin("POST", "/sandbox/accounts/other/keys", {"key": "k", "scopes": ["x"]})
    assert bad.status == 400
    missing = await client.admin("POST", "/sandbox/accounts/nobody/keys", {"key": "pk_x_1234"})
    assert missing.status == 404


async def test_admin_remove_account_makes_its_keys_unknown(client: Client) -> None:
    assert (await client.admin("DELETE", f"/sandbox/accounts/{ACCOUNT}")).status == 204
    assert (await client.get(ACCOUNTS)).status == 401
    assert (await client.admin("GET", f"/sandbox/accounts/{ACCOUNT}")).status == 404


async def test_admin_events_and_subscriptions_views(client: Client, clock: ManualClock) -> None:
    body = bodies.bulk(
        bodies.entry(
            [bodies.event("Return Created", "r1"), bodies.event("Return Created Item", "r1:i1")]
        )
    )
    await client.post(BULK, body)
    await client.post(BULK, body)
    await client.post(SUBSCRIBE, bodies.subscribe())
    events = (await client.admin("GET", f"/sandbox/accounts/{ACCOUNT}/events")).json()
    assert [e["metric"] for e in events["data"]] == ["Return Created", "Return Created Item"]
    assert (events["unique_event_count"], events["duplicates"]) == (2, 2)
    assert events["metrics"] == {"Return Created": 1, "Return Created Item": 1}
    only = await client.admin(
        "GET", f"/sandbox/accounts/{ACCOUNT}/events?metric=Return+Created+Item"
    )
    assert [e["unique_id"] for e in only.json()["data"]] == ["r1:i1"]
    last = await client.admin("GET", f"/sandbox/accounts/{ACCOUNT}/events?limit=1")
    assert [e["unique_id"] for e in last.json()["data"]] == ["r1:i1"]
    subs = (await client.admin("GET", f"/sandbox/accounts/{ACCOUNT}/subscriptions")).json()
    assert [s["phone_number"] for s in subs["data"]] == ["+15005550006"]


async def test_admin_stats_count_by_status_duplicates_and_429s(client: Client) -> None:
    body = bodies.bulk(bodies.entry([bodies.event()]))
    for _ in range(11):
        await client.post(BULK, body)
    await client.post(BULK, body, key=None)
    stats = (await client.admin("GET", "/sandbox/stats")).json()
    assert stats["requests"] == {"202": 10, "401": 1, "429": 1}
    assert (stats["throttled"], stats["duplicates"]) == (1, 9)
    assert stats["accounts"][ACCOUNT]["bulk_create_events"] == {"202": 10, "429": 1}
    assert stats["accounts"]["-"]["bulk_create_events"] == {"401": 1}


async def test_admin_rate_limits_and_reset(client: Client, sandbox: Sandbox) -> None:
    limits = (await client.admin("GET", "/sandbox/rate-limits")).json()
    assert limits["bulk_create_events"] == {"burst_per_second": 10, "steady_per_minute": 150}
    changed = await client.admin(
        "PUT",
        "/sandbox/rate-limits/bulk_create_events",
        {"burst_per_second": 1, "steady_per_minute": 2},
    )
    assert changed.status == 200
    body = bodies.bulk(bodies.entry([bodies.event()]))
    assert [(await client.post(BULK, body)).status for _ in range(2)] == [202, 429]
    bad = await client.admin(
        "PUT", "/sandbox/rate-limits/bulk_create_events", {"burst_per_second": 0}
    )
    assert bad.status == 400
    assert (await client.admin("POST", "/sandbox/reset", {})).status == 204
    assert sandbox.events(ACCOUNT) == [] and sandbox.stats.total_requests == 0
    assert (await client.post(BULK, body)).status == 202  # windows were forgotten too
    assert (await client.admin("POST", "/sandbox/reset", {"accounts": True})).status == 204
    assert (await client.post(BULK, body)).status == 401


async def test_admin_healthz_and_bad_json(client: Client) -> None:
    assert (await client.admin("GET", "/sandbox/healthz")).json() == {"status": "ok"}
    reply = await client.request("POST", "/sandbox/accounts", raw=b"{", headers={})
    assert reply.status == 400
    wrong = await client.admin("POST", "/sandbox/accounts", {"account_id": "x", "test_account": 1})
    assert (wrong.status, wrong.json()) == (400, {"error": "test_account has the wrong type"})


async def test_page_lists_accounts_metrics_counts_and_escapes(client: Client) -> None:
    body = bodies.bulk(
        bodies.entry(
            [
                bodies.event("Return Created", "a"),
                bodies.event("Return Created", "b"),
                bodies.event("<script>alert(1)</script>", "c"),
            ]
        )
    )
    assert (await client.post(BULK, body)).status == 202
    page = await client.admin("GET", "/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert ACCOUNT in page.text
    assert '<td>Return Created</td><td class="n">2</td>' in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert KEY not in page.text


async def test_page_renders_without_accounts() -> None:
    async with Sandbox.run() as sandbox:
        client = Client(aiohttp.ClientSession(), sandbox)
        async with client.session:
            page = await client.admin("GET", "/")
    assert page.status == 200
    assert "No accounts" in page.text


def test_cli_parse_account_with_and_without_scopes() -> None:
    assert parse_account("m1=pk_abc") == ("m1", "pk_abc", DEFAULT_SCOPES)
    assert parse_account("m1=pk_abc:events:write,accounts:read") == (
        "m1",
        "pk_abc",
        frozenset({"events:write", "accounts:read"}),
    )
    args = build_parser().parse_args(["sandbox", "--port", "0", "--account", "m=pk_1"])
    assert (args.port, args.account) == (0, [("m", "pk_1", DEFAULT_SCOPES)])


async def test_cli_sandbox_serves_until_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consumer.cli.main",
        "sandbox",
        "--port",
        "0",
        "--account",
        "m1=pk_cli_demo_key_01",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            url = ""
            while not url:
                line = (await process.stdout.readline()).decode()
                if not line:
                    pytest.fail("sandbox exited before printing its URL")
                if line.startswith("Klaviyo sandbox at "):
                    url = line.split()[3]
            async with aiohttp.ClientSession() as session:
                headers = {
                    "Authorization": "Klaviyo-API-Key pk_cli_demo_key_01",
                    "revision": "2026-07-15",
                }
                async with session.get(url + "/api/accounts/", headers=headers) as response:
                    assert response.status == 200
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
