"""The sandbox's own JSON API under ``/sandbox/``: configure it and see what it received.

Keys are only ever sent in request bodies (never in URLs, which end up in access logs) and
only ever shown redacted.

| Method | Path | Does |
|---|---|---|
| GET | /sandbox/healthz | liveness for compose health checks |
| GET, POST | /sandbox/accounts | list; create ``{"account_id", "keys": [{"key", "scopes"}],
"lists": [id]}`` (with lists, subscriptions to other list ids are refused) |
| GET, DELETE | /sandbox/accounts/{account} | show; remove with its keys |
| POST | /sandbox/accounts/{account}/keys | add ``{"key", "scopes"}`` |
| POST | /sandbox/keys/revoke | revoke ``{"key"}`` (later requests get 401) |
| GET | /sandbox/accounts/{account}/events | ``?metric=&limit=`` stored events, newest last |
| GET | /sandbox/accounts/{account}/subscriptions | stored subscription profiles |
| GET, POST, DELETE | /sandbox/accounts/{account}/faults | show; arm (see ``apply_faults``); clear |
| GET | /sandbox/rate-limits | limits per operation |
| PUT | /sandbox/rate-limits/{operation} | ``{"burst_per_second", "steady_per_minute"}`` |
| GET | /sandbox/stats | requests by status / account / operation, duplicates, 429s |
| POST | /sandbox/reset | ``{"accounts": false}`` forget data, counters, windows, faults |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import orjson
from aiohttp import web

from consumer.klaviyo import RateLimit
from consumer.sandbox.accounts import DEFAULT_SCOPES
from consumer.sandbox.faults import DEFAULT_REJECTION_DETAIL, EventRejection, Faults
from consumer.sandbox.state import SandboxState

__all__ = ["AdminApi", "apply_faults"]

# Account attributes the admin API may set, with their JSON types.
_ACCOUNT_ATTRIBUTES: dict[str, type] = {
    "organization_name": str,
    "test_account": bool,
    "timezone": str,
    "preferred_currency": str,
    "locale": str,
    "industry": str,
}


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(document, option=orjson.OPT_INDENT_2),
        content_type="application/json",
    )


def _fail(status: int, message: str) -> web.HTTPException:
    exc_class = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 409: web.HTTPConflict}[status]
    return exc_class(
        text=orjson.dumps({"error": message}).decode(), content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        value = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise _fail(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _fail(400, "body must be a JSON object")
    return value


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise _fail(400, f"{name} has the wrong type")
    if not isinstance(value, kind):
        raise _fail(400, f"{name} has the wrong type")
    return value


def _count(spec: Mapping[str, Any]) -> int | None:
    count = spec.get("count", 1)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise ValueError("count must be an integer or null")
    return count


def apply_faults(faults: Faults, spec: Mapping[str, Any]) -> None:
    """Arm faults from a JSON object; keys not given are left as they are.

    ``{"fail_next": {"count": 3, "status": 503}, "fail_ratio": {"ratio": 0.2, "status": 503,
    "seed": 7}, "latency_seconds": 0.5, "reset": {"count": 1}, "edge_challenge": {"count": 1},
    "throttle": {"retry_after": 30, "count": 2}, "reject_events": [{"metric": "Placed Order",
    "property": "OrderId", "value": "1001", "unique_id": "u-1", "detail": "..."}]}``; a
    ``count`` of null means until cleared; each ``reject_events`` rule needs one criterion.

    Raises:
        ValueError: a value is out of range or of the wrong type, or a key is unknown.
    """
    known = {
        "fail_next",
        "fail_ratio",
        "latency_seconds",
        "reset",
        "edge_challenge",
        "throttle",
        "reject_events",
    }
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"unknown fault kinds: {', '.join(unknown)}")
    try:
        if "fail_next" in spec:
            s = spec["fail_next"]
            faults.fail_next(count=_count(s), status=int(s.get("status", 503)))
        if "fail_ratio" in spec:
            s = spec["fail_ratio"]
            faults.fail_ratio(
                float(s["ratio"]), status=int(s.get("status", 503)), seed=int(s.get("seed", 0))
            )
        if "latency_seconds" in spec:
            faults.add_latency(float(spec["latency_seconds"]))
        if "reset" in spec:
            faults.reset_connections(count=_count(spec["reset"]))
        if "edge_challenge" in spec:
            faults.edge_challenge(count=_count(spec["edge_challenge"]))
        if "throttle" in spec:
            s = spec["throttle"]
            faults.throttle(int(s["retry_after"]), count=_count(s))
        for rule in spec.get("reject_events", []):
            faults.reject_events(_rejection(rule))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed fault specification: {exc!r}") from None


def _rejection(rule: Mapping[str, Any]) -> EventRejection:
    unknown = sorted(set(rule) - {"metric", "property", "value", "unique_id", "detail"})
    if unknown:
        raise ValueError(f"unknown reject_events fields: {', '.join(unknown)}")
    return EventRejection(
        metric=rule.get("metric"),
        property_name=rule.get("property"),
        property_value=rule.get("value"),
        unique_id=rule.get("unique_id"),
        detail=rule.get("detail") or DEFAULT_REJECTION_DETAIL,
    )


class AdminApi:
    """Route handlers of the admin API."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def add_routes(self, app: web.Application) -> None:
        """Register every admin route on ``app``."""
        app.router.add_routes(
            [
                web.get("/sandbox/healthz", self.healthz),
                web.get("/sandbox/accounts", self.list_accounts),
                web.post("/sandbox/accounts", self.create_account),
                web.get("/sandbox/accounts/{account}", self.show_account),
                web.delete("/sandbox/accounts/{account}", self.remove_account),
                web.post("/sandbox/accounts/{account}/keys", self.add_key),
                web.post("/sandbox/keys/revoke", self.revoke_key),
                web.get("/sandbox/accounts/{account}/events", self.events),
                web.get("/sandbox/accounts/{account}/subscriptions", self.subscriptions),
                web.get("/sandbox/accounts/{account}/faults", self.show_faults),
                web.post("/sandbox/accounts/{account}/faults", self.set_faults),
                web.delete("/sandbox/accounts/{account}/faults", self.clear_faults),
                web.get("/sandbox/rate-limits", self.rate_limits),
                web.put("/sandbox/rate-limits/{operation}", self.set_rate_limit),
                web.get("/sandbox/stats", self.stats),
                web.post("/sandbox/reset", self.reset),
            ]
        )

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness."""
        return _json({"status": "ok"})

    def _describe(self, account_id: str) -> dict[str, Any]:
        account = self._state.accounts.get(account_id)
        if account is None:
            raise _fail(404, f"no account {account_id!r}")
        store = self._state.store
        faults = self._state.armed_faults(account_id)
        return {
            **account.describe(),
            "metrics": store.metric_counts(account_id),
            "unique_event_count": store.unique_event_count(account_id),
            "duplicates": store.duplicate_count(account_id),
            "subscriptions": len(store.subscriptions(account_id)),
            "faults": faults.describe() if faults is not None else {},
        }

    async def list_accounts(self, request: web.Request) -> web.Response:
        """Every account with counts."""
        return _json({"data": [self._describe(a) for a in sorted(self._state.accounts.accounts())]})

    async def create_account(self, request: web.Request) -> web.Response:
        """Create an account (or update its attributes) and add the given keys."""
        body = await _body(request)
        account_id = _field(body, "account_id", str)
        if not account_id:
            raise _fail(400, "account_id is required")
        attributes = {
            name: _field(body, name, kind)
            for name, kind in _ACCOUNT_ATTRIBUTES.items()
            if body.get(name) is not None
        }
        keys = _field(body, "keys", list) or []
        lists = _field(body, "lists", list)
        if lists is not None and not all(isinstance(i, str) for i in lists):
            raise _fail(400, "lists must be a list of strings")
        try:
            account = self._state.accounts.add_account(account_id, **attributes)
            for entry in keys:
                self._add_key(account_id, entry)
            if lists is not None:
                account.add_lists(lists)
        except (ValueError, TypeError) as exc:
            raise _fail(409 if "another account" in str(exc) else 400, str(exc)) from None
        return _json(self._describe(account_id), status=201)

    def _add_key(self, account_id: str, entry: Any) -> None:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise TypeError("each key must be an object with a string 'key'")
        scopes = entry.get("scopes", sorted(DEFAULT_SCOPES))
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise TypeError("scopes must be a list of strings")
        self._state.accounts.add_key(account_id, entry["key"], scopes)

    async def show_account(self, request: web.Request) -> web.Response:
        """One account with counts."""
        return _json(self._describe(request.match_info["account"]))

    async def remove_account(self, request: web.Request) -> web.Response:
        """Delete an account and its keys (received data stays until reset)."""
        try:
            self._state.accounts.remove_account(request.match_info["account"])
        except KeyError:
            raise _fail(404, "no such account") from None
        return web.Response(status=204)

    async def add_key(self, request: web.Request) -> web.Response:
        """Add a key to an account."""
        account_id = request.match_info["account"]
        if self._state.accounts.get(account_id) is None:
            raise _fail(404, f"no account {account_id!r}")
        try:
            self._add_key(account_id, await _body(request))
        except (ValueError, TypeError) as exc:
            raise _fail(409 if "another account" in str(exc) else 400, str(exc)) from None
        return _json(self._describe(account_id), status=201)

    async def revoke_key(self, request: web.Request) -> web.Response:
        """Revoke a key given in the body."""
        key = _field(await _body(request), "key", str)
        if not key:
            raise _fail(400, "key is required")
        try:
            api_key = self._state.accounts.revoke_key(key)
        except KeyError:
            raise _fail(404, "no such key") from None
        return _json({"account_id": api_key.account_id, **api_key.describe()})

    async def events(self, request: web.Request) -> web.Response:
        """Stored events of an account, optionally of one metric, the last ``limit``."""
        account_id = request.match_info["account"]
        metric = request.query.get("metric")
        events = self._state.store.events(account_id, metric)
        limit = request.query.get("limit")
        if limit is not None:
            if not limit.isdigit():
                raise _fail(400, "limit must be a non-negative integer")
            events = events[-int(limit) :] if int(limit) else []
        store = self._state.store
        return _json(
            {
                "data": [e.to_json() for e in events],
                "unique_event_count": store.unique_event_count(account_id),
                "duplicates": store.duplicate_count(account_id),
                "metrics": store.metric_counts(account_id),
            }
        )

    async def subscriptions(self, request: web.Request) -> web.Response:
        """Stored subscription profiles of an account."""
        rows = self._state.store.subscriptions(request.match_info["account"])
        return _json({"data": [row.to_json() for row in rows]})

    async def show_faults(self, request: web.Request) -> web.Response:
        """What is armed for an account."""
        faults = self._state.armed_faults(request.match_info["account"])
        return _json(faults.describe() if faults is not None else {})

    async def set_faults(self, request: web.Request) -> web.Response:
        """Arm faults for an account (see ``apply_faults`` for the body)."""
        faults = self._state.faults(request.match_info["account"])
        try:
            apply_faults(faults, await _body(request))
        except ValueError as exc:
            raise _fail(400, str(exc)) from None
        return _json(faults.describe())

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Disarm every fault of an account."""
        faults = self._state.armed_faults(request.match_info["account"])
        if faults is not None:
            faults.clear()
        return web.Response(status=204)

    async def rate_limits(self, request: web.Request) -> web.Response:
        """The limits in force per operation."""
        limits = {
            op: asdict(self._state.limiter.limit(op))
            for op in sorted(self._state.limiter.operations())
        }
        return _json(limits)

    async def set_rate_limit(self, request: web.Request) -> web.Response:
        """Change one operation's burst and steady limits."""
        operation_id = request.match_info["operation"]
        if operation_id not in self._state.limiter.operations():
            raise _fail(404, f"no operation {operation_id!r}")
        body = await _body(request)
        burst = _field(body, "burst_per_second", int)
        steady = _field(body, "steady_per_minute", int)
        if not burst or not steady or burst < 1 or steady < 1:
            raise _fail(400, "burst_per_second and steady_per_minute must be integers >= 1")
        self._state.limiter.set_limit(operation_id, RateLimit(burst, steady))
        return _json(asdict(self._state.limiter.limit(operation_id)))

    async def stats(self, request: web.Request) -> web.Response:
        """Request counters."""
        snapshot = self._state.stats.snapshot(self._state.store.duplicates_by_account())
        return _json(snapshot.to_json())

    async def reset(self, request: web.Request) -> web.Response:
        """Forget data, counters, windows and faults; ``{"accounts": true}`` also accounts."""
        accounts = _field(await _body(request), "accounts", bool) or False
        self._state.reset(accounts=accounts)
        return web.Response(status=204)
