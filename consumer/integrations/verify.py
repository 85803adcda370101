"""Check a merchant's API key against Klaviyo without creating data or logging errors.

Three probes, each answering "may this key do X?", and none of which leaves a 4xx in the
merchant's Klaviyo API log when the key is good:

- **account read** — ``GET /api/accounts`` (scope ``accounts:read``): Klaviyo's documented
  way "to test if a Private API Key belongs to the correct account" (api-notes §7.1). A 200
  also names the account, so the operator sees which Klaviyo account the key belongs to.
- **events write** — ``POST /api/event-bulk-create-jobs`` with a valid job of **no** events.
- **subscriptions write** — ``POST /api/profile-subscription-bulk-create-jobs`` with a valid
  job of **no** profiles and no list (scopes ``lists:write``, ``profiles:write``,
  ``subscriptions:write``).

Why empty jobs: no read-only operation of the stable spec needs a ``:write`` scope (checked
over every ``GET`` of the vendored revision), and the only endpoint listing a key's scopes is
beta (``GET /api/api-keys``, needing ``credentials:read``). An empty job is valid under the
vendored contract (the arrays have no ``minItems``), so a key that may write gets 202 and
nothing is created; a key without the scope gets 403. If Klaviyo ever refused an empty job
with 400, that still means "authenticated and allowed" (authentication, then scopes, then
the body, as every Django REST framework API checks) and is reported as granted.

Answers that are not JSON:API (an edge proxy's HTML challenge page, a 400 from the proxy for
a malformed header) are reported as ``edge_blocked``, never as a verdict about the key.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from pydantic import SecretStr

from consumer.klaviyo import (
    BULK_CREATE_EVENTS,
    BULK_SUBSCRIBE_PROFILES,
    GET_ACCOUNTS,
    JSONAPI_MEDIA_TYPE,
    operation,
)
from consumer.settings import KlaviyoSettings

__all__ = [
    "Capability",
    "KeyStatus",
    "Probe",
    "ProbeResult",
    "Verification",
    "classify_response",
    "summarise",
    "verify_api_key",
]

# Valid jobs with nothing in them: allowed keys get 202 and no data is created.
_PROBE_BODIES: Final = {
    BULK_CREATE_EVENTS: orjson.dumps(
        {
            "data": {
                "type": "event-bulk-create-job",
                "attributes": {"events-bulk-create": {"data": []}},
            }
        }
    ),
    BULK_SUBSCRIBE_PROFILES: orjson.dumps(
        {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {"profiles": {"data": []}},
            }
        }
    ),
}
_DETAIL_CHARS: Final = 120


class Capability(enum.StrEnum):
    """What a key may do, as far as this service cares."""

    ACCOUNT_READ = "account_read"
    EVENTS_WRITE = "events_write"
    SUBSCRIPTIONS_WRITE = "subscriptions_write"

    @property
    def operation_id(self) -> str:
        """The Klaviyo operation probed for this capability."""
        return _OPERATIONS[self]

    @property
    def scopes(self) -> tuple[str, ...]:
        """The Klaviyo scopes the probed operation needs."""
        return operation(self.operation_id).scopes


_OPERATIONS: Final = {
    Capability.ACCOUNT_READ: GET_ACCOUNTS,
    Capability.EVENTS_WRITE: BULK_CREATE_EVENTS,
    Capability.SUBSCRIPTIONS_WRITE: BULK_SUBSCRIBE_PROFILES,
}


class ProbeResult(enum.StrEnum):
    """The answer to one probe."""

    GRANTED = "granted"
    MISSING_SCOPE = "missing_scope"
    REVOKED = "revoked"
    EDGE_BLOCKED = "edge_blocked"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    UNREACHABLE = "unreachable"
    UNEXPECTED = "unexpected"


class KeyStatus(enum.StrEnum):
    """The overall verdict about a key."""

    VALID = "valid"
    """Every probed capability is granted."""
    MISSING_SCOPE = "missing_scope"
    """The key authenticates, but at least one capability is refused (403)."""
    REVOKED = "revoked"
    """401: revoked, deleted or never valid."""
    UNREACHABLE = "unreachable"
    """No HTTP answer (connection refused, DNS, timeout)."""
    EDGE_BLOCKED = "edge_blocked"
    """An edge proxy answered instead of Klaviyo (non-JSON:API body)."""
    INCONCLUSIVE = "inconclusive"
    """Klaviyo answered 429, 5xx or something unexpected: try again later."""


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe's outcome; ``detail`` is Klaviyo's error code/title or an exception type."""

    capability: Capability
    result: ProbeResult
    http_status: int | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Verification:
    """Everything ``verify_api_key`` learnt; contains nothing secret."""

    status: KeyStatus
    probes: tuple[Probe, ...]
    account_id: str | None = None
    account_name: str | None = None
    test_account: bool | None = None

    def granted(self, capability: Capability) -> bool:
        """True if the probe for ``capability`` ran and was granted."""
        return any(
            p.capability is capability and p.result is ProbeResult.GRANTED for p in self.probes
        )

    def missing(self) -> tuple[Capability, ...]:
        """Capabilities refused with 403."""
        return tuple(p.capability for p in self.probes if p.result is ProbeResult.MISSING_SCOPE)


def classify_response(
    capability: Capability, status: int, content_type: str, body: bytes
) -> tuple[ProbeResult, str]:
    """Turn one HTTP answer into a probe result and a short, secret-free detail.

    Pure: table-tested without a server.
    """
    document = _json_api(content_type, body)
    detail = _error_detail(document)
    if status >= 500:
        # An outage is an outage whether Klaviyo or the proxy in front of it says so.
        return ProbeResult.SERVER_ERROR, detail or f"HTTP {status}"
    if capability is not Capability.ACCOUNT_READ and 200 <= status < 300:
        return ProbeResult.GRANTED, ""  # the empty job was taken: nothing in it to create
    if document is None:
        return ProbeResult.EDGE_BLOCKED, f"non-JSON:API answer ({content_type or 'no type'})"
    if capability is Capability.ACCOUNT_READ and status == 200:
        return ProbeResult.GRANTED, ""
    if capability is not Capability.ACCOUNT_READ and status == 400:
        return ProbeResult.GRANTED, "empty job refused after the scope check"
    if status == 401:
        return ProbeResult.REVOKED, detail
    if status == 403:
        return ProbeResult.MISSING_SCOPE, detail
    if status == 429:
        return ProbeResult.RATE_LIMITED, detail
    return ProbeResult.UNEXPECTED, detail or f"HTTP {status}"


def _json_api(content_type: str, body: bytes) -> dict[str, Any] | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in (JSONAPI_MEDIA_TYPE, "application/json"):
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _error_detail(document: dict[str, Any] | None) -> str:
    # Only code and title: they are Klaviyo's fixed vocabulary, whereas "detail" may quote
    # parts of the request.
    errors = (document or {}).get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    parts = [str(first.get(name, "")) for name in ("code", "title") if first.get(name)]
    return ": ".join(parts)[:_DETAIL_CHARS]


def summarise(probes: tuple[Probe, ...]) -> KeyStatus:
    """The overall verdict: revoked, then edge, then unreachable win over partial answers."""
    results = {p.result for p in probes}
    if not results:
        return KeyStatus.INCONCLUSIVE
    for result, status in (
        (ProbeResult.REVOKED, KeyStatus.REVOKED),
        (ProbeResult.EDGE_BLOCKED, KeyStatus.EDGE_BLOCKED),
        (ProbeResult.UNREACHABLE, KeyStatus.UNREACHABLE),
    ):
        if result in results:
            return status
    if results == {ProbeResult.GRANTED}:
        return KeyStatus.VALID
    if results <= {ProbeResult.GRANTED, ProbeResult.MISSING_SCOPE}:
        return KeyStatus.MISSING_SCOPE
    return KeyStatus.INCONCLUSIVE


def _scrub(text: str, api_key: SecretStr) -> str:
    # Belt and braces: nothing a server or a library says may carry the key further.
    return text.replace(api_key.get_secret_value(), "[redacted]")


class _Prober:
    """Sends the probes over one session."""

    def __init__(
        self, session: aiohttp.ClientSession, settings: KlaviyoSettings, api_key: SecretStr
    ) -> None:
        self._session = session
        self._settings = settings
        self._api_key = api_key
        self.account: dict[str, Any] | None = None

    async def probe(self, capability: Capability) -> Probe:
        op = operation(capability.operation_id)
        headers = {
            "Authorization": f"Klaviyo-API-Key {self._api_key.get_secret_value()}",
            "revision": self._settings.revision,
            "Accept": JSONAPI_MEDIA_TYPE,
        }
        body: bytes | None = None
        if op.has_body:
            headers["Content-Type"] = JSONAPI_MEDIA_TYPE
            body = _PROBE_BODIES[op.operation_id]
        url = self._settings.base_url + op.path
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout_seconds)
        try:
            async with self._session.request(
                op.method, url, headers=headers, data=body, timeout=timeout
            ) as response:
                payload = await response.read()
                status, content_type = response.status, response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Probe(capability, ProbeResult.UNREACHABLE, None, type(exc).__name__)
        result, detail = classify_response(capability, status, content_type, payload)
        if capability is Capability.ACCOUNT_READ and result is ProbeResult.GRANTED:
            self.account = _first_account(payload)
        return Probe(capability, result, status, _scrub(detail, self._api_key))


def _first_account(payload: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(payload).get("data")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return None


async def verify_api_key(
    api_key: SecretStr,
    settings: KlaviyoSettings,
    *,
    session: aiohttp.ClientSession | None = None,
) -> Verification:
    """Probe what ``api_key`` may do; never raises for HTTP or network trouble.

    The account probe runs first; a revoked key, an unreachable API or an edge block ends
    the check there (the other probes could only repeat the same answer).
    """
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await verify_api_key(api_key, settings, session=own)
    prober = _Prober(session, settings, api_key)
    first = await prober.probe(Capability.ACCOUNT_READ)
    probes = [first]
    if first.result not in (ProbeResult.REVOKED, ProbeResult.UNREACHABLE, ProbeResult.EDGE_BLOCKED):
        probes += await asyncio.gather(
            prober.probe(Capability.EVENTS_WRITE), prober.probe(Capability.SUBSCRIPTIONS_WRITE)
        )
    account = prober.account or {}
    attributes = _mapping(account.get("attributes"))
    contact = _mapping(attributes.get("contact_information"))
    name = contact.get("organization_name")
    test_account = attributes.get("test_account")
    account_id = account.get("id")
    return Verification(
        status=summarise(tuple(probes)),
        probes=tuple(probes),
        account_id=account_id if isinstance(account_id, str) else None,
        account_name=name if isinstance(name, str) else None,
        test_account=test_account if isinstance(test_account, bool) else None,
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
