"""``KlaviyoClient`` over real HTTP: headers, scrubbed bodies, transport failures."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from pydantic import SecretStr

from consumer.deliver import KlaviyoClient, KlaviyoUnavailable
from consumer.settings import KlaviyoSettings

KEY = "pk_test_secret_key_0123456789"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/api/event-bulk-create-jobs", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_client_sends_klaviyo_headers_and_body(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    seen: dict[str, str] = {}
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        seen.update(request.headers)
        received.append(await request.read())
        return web.Response(status=202, headers={"RateLimit-Remaining": "149"})

    url = await serve(handler)
    client = KlaviyoClient(KlaviyoSettings(base_url=url, revision="2026-07-15"))
    response = await client.post("/api/event-bulk-create-jobs", SecretStr(KEY), b'{"data":{}}')
    await client.close()
    assert response.status == 202
    assert response.headers["ratelimit-remaining"] == "149"
    assert received == [b'{"data":{}}']
    assert seen["Authorization"] == f"Klaviyo-API-Key {KEY}"
    assert seen["revision"] == "2026-07-15"
    assert seen["Content-Type"] == "application/vnd.api+json"
    assert seen["Accept"] == "application/vnd.api+json"


async def test_client_scrubs_the_key_from_response_bodies(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def echo(request: web.Request) -> web.Response:
        detail = f'{{"errors":[{{"detail":"bad key {request.headers["Authorization"]}"}}]}}'
        return web.Response(status=401, text=detail, content_type="application/vnd.api+json")

    url = await serve(echo)
    client = KlaviyoClient(KlaviyoSettings(base_url=url))
    response = await client.post("/api/event-bulk-create-jobs", SecretStr(KEY), b"{}")
    await client.close()
    assert KEY.encode() not in response.body
    assert b"[redacted]" in response.body


async def test_client_timeout_is_klaviyo_unavailable_without_the_key(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=202)

    url = await serve(slow)
    client = KlaviyoClient(KlaviyoSettings(base_url=url, request_timeout_seconds=0.1))
    with pytest.raises(KlaviyoUnavailable) as caught:
        await client.post("/api/event-bulk-create-jobs", SecretStr(KEY), b"{}")
    release.set()
    await client.close()
    assert caught.value.retriable
    rendered = "".join(traceback.format_exception(caught.value))
    assert KEY not in rendered
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_client_connection_refused_is_klaviyo_unavailable() -> None:
    client = KlaviyoClient(KlaviyoSettings(base_url="http://127.0.0.1:9"))
    with pytest.raises(KlaviyoUnavailable, match="connection failed"):
        await client.post("/api/event-bulk-create-jobs", SecretStr(KEY), b"{}")
    await client.close()
