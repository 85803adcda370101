"""The one place that talks HTTP to Klaviyo: a shared session and one small POST coroutine.

``KlaviyoClient.post`` sends bytes and returns what came back, status and all; deciding what
an answer means is ``responses.classify``'s job. Transport failures (connection refused or
reset, timeouts, a dropped response) become ``KlaviyoUnavailable``.

The API key goes into the ``Authorization`` header and nowhere else: it is scrubbed from
response bodies (an error detail could echo it), and aiohttp exceptions, whose request info
carries the headers, are never chained onto ours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from pydantic import SecretStr

from consumer.deliver.errors import KlaviyoUnavailable
from consumer.klaviyo.contract import JSONAPI_MEDIA_TYPE
from consumer.settings import KlaviyoSettings

__all__ = ["MAX_RESPONSE_BYTES", "KlaviyoClient", "KlaviyoResponse"]

MAX_RESPONSE_BYTES = 1_000_000
"""Longest response body read; Klaviyo's bulk answers are empty or a short error document."""

_REDACTED = b"[redacted]"


@dataclass(frozen=True, slots=True)
class KlaviyoResponse:
    """One answer: status, headers (lower-case names), body (key scrubbed), seconds taken."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    duration: float


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


class KlaviyoClient:
    """A pooled HTTP client for Klaviyo's API (one per process; close it on shutdown).

    The session is created on first use, inside the running loop, as aiohttp requires.
    """

    def __init__(self, settings: KlaviyoSettings, *, user_agent: str = "klaviyo-consumer") -> None:
        self._base_url = settings.base_url
        self._revision = settings.revision
        self._timeout = aiohttp.ClientTimeout(
            total=settings.request_timeout_seconds,
            # Failing to connect is cheap to detect; do not spend the whole budget on it.
            connect=min(10.0, settings.request_timeout_seconds),
        )
        self._max_connections = settings.max_connections
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    @property
    def revision(self) -> str:
        """The pinned ``revision`` header value."""
        return self._revision

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={
                    "revision": self._revision,
                    "Accept": JSONAPI_MEDIA_TYPE,
                    "Content-Type": JSONAPI_MEDIA_TYPE,
                    "User-Agent": self._user_agent,
                },
                # Responses are read as bytes; nothing should try to guess encodings or
                # decompress on our behalf beyond what Klaviyo announces.
                raise_for_status=False,
            )
        return self._session

    async def post(self, path: str, api_key: SecretStr, body: bytes) -> KlaviyoResponse:
        """POST ``body`` to ``path`` with the merchant's key; any HTTP status is returned.

        Raises:
            KlaviyoUnavailable: no HTTP answer (refused, reset, timed out, cut short).
        """
        session = self._ensure_session()
        secret = api_key.get_secret_value()
        started = time.monotonic()
        failure: str | None = None
        try:
            async with session.post(
                self._base_url + path,
                data=body,
                headers={"Authorization": f"Klaviyo-API-Key {secret}"},
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES)
                status, headers = response.status, _headers(response)
        except TimeoutError:
            failure = "request timed out"
        except aiohttp.ClientConnectionError as exc:
            # Name the failure by type and errno only: aiohttp's messages and request info
            # can carry the URL and headers.
            errno = getattr(exc, "errno", None) or getattr(exc.__cause__, "errno", None)
            failure = f"connection failed: {type(exc).__name__}" + (
                f" (errno {errno})" if errno else ""
            )
        except aiohttp.ClientPayloadError as exc:
            failure = f"response cut short: {type(exc).__name__}"
        if failure is not None:
            # "from None": the aiohttp exception must not ride along in tracebacks.
            raise KlaviyoUnavailable(failure) from None
        if secret and secret.encode() in raw:
            raw = raw.replace(secret.encode(), _REDACTED)
        return KlaviyoResponse(status, headers, raw, time.monotonic() - started)

    async def close(self) -> None:
        """Close the session and its connections (safe to call twice)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
