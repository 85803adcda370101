"""Helpers for sandbox tests: a manual clock and a small HTTP client speaking Klaviyo."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from consumer.klaviyo import REVISION
from consumer.sandbox import Sandbox

ACCOUNT = "merchant-1"
KEY = "pk_test_merchant_one_0001"
BULK = "/api/event-bulk-create-jobs"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
EVENTS = "/api/events"
ACCOUNTS = "/api/accounts/"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


class ManualClock:
    """A monotonic clock that moves only when told, so rate windows are deterministic."""

    def __init__(self, start: float = 1200.0) -> None:  # 1200 = start of a minute window
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Reply:
    """What the sandbox answered."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return orjson.loads(self.text)

    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.json()["errors"]
        return errors

    def pointers(self) -> list[str]:
        return [e["source"]["pointer"] for e in self.errors()]


class Client:
    """Sends Klaviyo-shaped requests to the sandbox, with the usual headers unless overridden."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox) -> None:
        self.session = session
        self.sandbox = sandbox

    def headers(self, key: str | None = KEY, **overrides: str | None) -> dict[str, str]:
        headers: dict[str, str | None] = {
            "Authorization": f"Klaviyo-API-Key {key}" if key is not None else None,
            "revision": REVISION,
            "Content-Type": "application/vnd.api+json",
            "Accept": "application/vnd.api+json",
        }
        headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
        return {k: v for k, v in headers.items() if v is not None}

    async def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = KEY,
    ) -> Reply:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        # aiohttp warns (an error under filterwarnings) about big raw bodies: stream them.
        payload = io.BytesIO(data) if data is not None and len(data) > 1_000_000 else data
        async with self.session.request(
            method,
            self.sandbox.url + path,
            data=payload,
            headers=dict(headers) if headers is not None else self.headers(key),
        ) as response:
            return Reply(response.status, dict(response.headers), await response.text())

    async def post(self, path: str, body: object, **kwargs: Any) -> Reply:
        return await self.request("POST", path, body, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def admin(self, method: str, path: str, body: object = None) -> Reply:
        return await self.request(method, path, body, headers={})
