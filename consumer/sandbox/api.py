"""The Klaviyo-facing half of the sandbox: ``/api/*`` answered the way Klaviyo answers.

One request goes through these steps, each of which may answer and stop:

1. route: unknown path 404, known path with another method 405;
2. faults armed for the key's account (latency, then reset / edge 403 / forced 429 / 5xx),
   before anything else because real faults happen in front of the API;
3. ``Authorization: Klaviyo-API-Key <key>``: 401 ``not_authenticated`` if missing, unknown
   or revoked;
4. rate limits per account and operation: 429 ``throttled`` with ``Retry-After`` only; every
   later answer carries ``RateLimit-*`` for the steady window (the request was counted);
5. scopes: 403 ``permission_denied`` naming the missing ones;
6. ``revision`` header: 400 with ``source.parameter = "revision"``;
7. content type and encoding (bodies only): 415;
8. body: the vendored contract (schema, sizes, counts, repeated unique ids): 400 with one
   error per violation, each with ``source.pointer``;
9. what Klaviyo checks against the account: a subscription to a list the account does not
   have, and events refused by an armed ``reject_events`` fault: 400 with pointers;
10. record and answer: 202 with no body, or 200 with the account list.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
from datetime import date
from typing import Any

import orjson
from aiohttp import web

from consumer.klaviyo import (
    BULK_SUBSCRIBE_PROFILES,
    JSONAPI_MEDIA_TYPE,
    MAX_PAYLOAD_BYTES,
    Operation,
    find_operation,
    iter_events,
    operations,
    subset,
    validate_request,
)
from consumer.sandbox.accounts import ApiKey
from consumer.sandbox.faults import Fault, FaultKind
from consumer.sandbox.jsonapi import (
    edge_challenge_response,
    error_object,
    errors_response,
    json_response,
    violation_errors,
)
from consumer.sandbox.ratelimit import Decision
from consumer.sandbox.state import SandboxState
from consumer.sandbox.stats import RESET

__all__ = ["CLIENT_MAX_SIZE", "KlaviyoApi"]

logger = logging.getLogger(__name__)

AUTH_SCHEME = "klaviyo-api-key"
ACCEPTED_MEDIA_TYPES = frozenset({JSONAPI_MEDIA_TYPE, "application/json"})
# aiohttp refuses bodies past this with its own 413; below it, oversize bodies get
# Klaviyo's 400 with a pointer, so clients see the answer they would get in production.
CLIENT_MAX_SIZE = 4 * MAX_PAYLOAD_BYTES
_MAX_ERRORS = 100
_LIST_POINTER = "/data/relationships/list/data/id"
_REVISION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")


class KlaviyoApi:
    """The ``/api/*`` request handler of a sandbox."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one ``/api/*`` request (see the module docstring for the steps)."""
        op = find_operation(request.method, request.path)
        if op is None:
            unrouted = self._unrouted(request)
            self._state.stats.record(None, "-", unrouted.status)
            return unrouted
        api_key = self._key(request)
        account_id = api_key.account_id if api_key is not None else None
        # Stays so only if the handler is cancelled (client gone) or fails.
        outcome: int | str = "aborted"
        try:
            response = await self._handle(request, op, api_key)
            outcome = RESET if response is None else response.status
            return response if response is not None else web.Response(status=500)
        finally:
            self._state.stats.record(account_id, op.operation_id, outcome)
            logger.debug(
                "klaviyo request",
                extra={"operation": op.operation_id, "account": account_id, "outcome": outcome},
            )

    async def _handle(
        self, request: web.Request, op: Operation, api_key: ApiKey | None
    ) -> web.StreamResponse | None:
        """The response, or None when the connection was reset instead."""
        if api_key is not None:
            fault = await self._next_fault(api_key.account_id)
            if fault is not None and fault.kind is FaultKind.RESET:
                _reset_connection(request)
                return None
            if fault is not None:
                return _fault_response(fault)
        if api_key is None or api_key.revoked:
            return self._unauthenticated(request, api_key)
        decision = self._state.limiter.check(api_key.account_id, op.operation_id)
        headers = decision.headers()
        if not decision.allowed:
            return _throttled(decision.retry_after)
        missing = sorted(set(op.scopes) - api_key.scopes)
        if missing:
            detail = f"This API key is missing required scopes: {', '.join(missing)}."
            return errors_response(403, [error_object(403, detail)], headers)
        revision_error = self._check_revision(request)
        if revision_error is not None:
            return errors_response(400, [revision_error], headers)
        if not op.has_body:
            return self._get_accounts(request, api_key, headers)
        media_error = _check_media(request)
        if media_error is not None:
            return errors_response(415, [media_error], headers)
        return await self._accept_body(request, op, api_key, decision)

    # -- steps -------------------------------------------------------------------------

    async def _next_fault(self, account_id: str) -> Fault | None:
        """Apply the account's latency, then draw its next fault (if any is armed)."""
        faults = self._state.armed_faults(account_id)
        if faults is None:
            return None
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        return faults.next_fault()

    def _key(self, request: web.Request) -> ApiKey | None:
        scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != AUTH_SCHEME or not key.strip():
            return None
        return self._state.accounts.resolve(key.strip())

    @staticmethod
    def _unauthenticated(request: web.Request, api_key: ApiKey | None) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith(AUTH_SCHEME + " "):
            detail = "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."
            title = None
        else:
            detail = "The API key is revoked." if api_key else "The API key is not valid."
            title = "Incorrect authentication credentials."
        return errors_response(401, [error_object(401, detail, title=title, pointer="/data/")])

    def _check_revision(self, request: web.Request) -> dict[str, Any] | None:
        value = request.headers.get("revision")
        accepted = self._state.options.revisions
        problem = None
        if not value:
            problem = "A revision header is required (format: YYYY-MM-DD[.suffix])."
        elif not _valid_revision(value):
            problem = f"{value!r} is not a valid revision (format: YYYY-MM-DD[.suffix])."
        elif accepted is not None and value not in accepted:
            known = ", ".join(sorted(accepted))
            problem = f"Revision {value!r} is not a supported revision (supported: {known})."
        if problem is None:
            return None
        return error_object(400, problem, parameter="revision")

    async def _accept_body(
        self, request: web.Request, op: Operation, api_key: ApiKey, decision: Decision
    ) -> web.Response:
        headers = decision.headers()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            detail = f"The maximum allowed payload size is {MAX_PAYLOAD_BYTES} bytes."
            return errors_response(400, [error_object(400, detail, pointer="/data")], headers)
        now = self._state.options.wall_clock()
        strict = self._state.options.strict_fields
        # Inline on the loop: the compiled contract checks 1,000 events in tens of ms.
        violations = validate_request(op.operation_id, body, now=now, strict=strict)
        if violations:
            return errors_response(400, violation_errors(violations[:_MAX_ERRORS]), headers)
        parsed = orjson.loads(body)
        refused = self._refusals(op, api_key.account_id, parsed)
        if refused:
            return errors_response(400, refused[:_MAX_ERRORS], headers)
        store = self._state.store
        if op.operation_id == BULK_SUBSCRIBE_PROFILES:
            store.record_subscriptions(api_key.account_id, parsed, now)
        else:
            store.record_events(
                api_key.account_id, op.operation_id, iter_events(op.operation_id, parsed), now
            )
        return web.Response(status=op.success_status, headers=headers)

    def _refusals(self, op: Operation, account_id: str, body: Any) -> list[dict[str, Any]]:
        """Errors for a valid body that the account's state refuses (empty: accept it)."""
        if op.operation_id == BULK_SUBSCRIBE_PROFILES:
            account = self._state.accounts.get(account_id)
            list_data = ((body["data"].get("relationships") or {}).get("list") or {}).get("data")
            list_id = list_data.get("id") if isinstance(list_data, dict) else None
            if account is None or list_id is None or account.has_list(list_id):
                return []
            detail = f"A list with id {list_id!r} does not exist."
            return [error_object(400, detail, pointer=_LIST_POINTER)]
        faults = self._state.armed_faults(account_id)
        if faults is None or not faults.rejections:
            return []
        errors = []
        for view in iter_events(op.operation_id, body):
            refusal = faults.rejection(view.attributes, view.metric_name)
            if refusal is not None:
                inner, detail = refusal
                errors.append(error_object(400, detail, pointer=view.pointer + inner))
        return errors

    def _get_accounts(
        self, request: web.Request, api_key: ApiKey, headers: dict[str, str]
    ) -> web.Response:
        account = self._state.accounts.get(api_key.account_id)
        if account is None:  # removed while a key still resolved: treat as unknown
            return self._unauthenticated(request, None)
        base = f"{request.scheme}://{request.host}"
        resource = account.resource(base)
        fields = request.query.get("fields[account]")
        if fields is not None:
            wanted = [f.strip() for f in fields.split(",") if f.strip()]
            unknown = sorted(set(wanted) - _account_fields())
            if unknown:
                detail = f"{', '.join(unknown)} is not a valid field for the resource 'account'."
                error = error_object(400, detail, parameter="fields[account]")
                return errors_response(400, [error], headers)
            tops = {f.split(".")[0] for f in wanted}
            resource["attributes"] = {k: v for k, v in resource["attributes"].items() if k in tops}
        document = {"data": [resource], "links": {"self": f"{base}/api/accounts/"}}
        return json_response(200, document, headers)

    @staticmethod
    def _unrouted(request: web.Request) -> web.Response:
        path = request.path.rstrip("/")
        if any(op.path == path for op in operations().values()):
            detail = f"Method {request.method!r} not allowed."
            return errors_response(405, [error_object(405, detail)])
        return errors_response(404, [error_object(404, f"No endpoint at {request.path}.")])


def _fault_response(fault: Fault) -> web.Response:
    """The answer a fault other than a connection reset gives."""
    if fault.kind is FaultKind.EDGE_CHALLENGE:
        return edge_challenge_response()
    if fault.kind is FaultKind.THROTTLE:
        return _throttled(fault.retry_after)
    detail = "Klaviyo is having trouble processing this request. Please try again later."
    return errors_response(fault.status, [error_object(fault.status, detail)])


def _reset_connection(request: web.Request) -> None:
    """Close the TCP connection with RST (SO_LINGER 0), so the client sees errno 104."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _throttled(retry_after: int) -> web.Response:
    detail = f"Request was throttled. Expected available in {retry_after} second" + (
        "" if retry_after == 1 else "s"
    )
    error = error_object(429, detail + ".", pointer="/data")
    error["links"] = {
        "type": "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits"
    }
    return errors_response(429, [error], {"Retry-After": str(retry_after)})


def _check_media(request: web.Request) -> dict[str, Any] | None:
    if request.content_type not in ACCEPTED_MEDIA_TYPES:
        detail = (
            f"Unsupported media type {request.content_type!r}; "
            f"use {JSONAPI_MEDIA_TYPE} (or application/json)."
        )
        return error_object(415, detail)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        # Klaviyo does not document compressed bodies; refusing keeps clients on what works.
        return error_object(415, f"Unsupported Content-Encoding {encoding!r}.")
    return None


def _valid_revision(value: str) -> bool:
    match = _REVISION.match(value)
    if match is None:
        return False
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return False
    return True


def _account_fields() -> set[str]:
    for parameter in subset()["operations"]["get_accounts"].get("parameters", []):
        if parameter.get("name") == "fields[account]":
            return set(parameter["schema"]["items"]["enum"])
    return set()
