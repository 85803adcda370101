"""Klaviyo's response shapes: JSON:API error documents and the edge proxy's HTML page.

Error objects carry what the spec lists (``id``, ``code``, ``title``, ``detail``, ``source``)
plus what real responses add (``status``, ``links``, ``meta``), so clients are tested against
the shape they will meet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from consumer.klaviyo import JSONAPI_MEDIA_TYPE, ContractViolation

__all__ = [
    "edge_challenge_response",
    "error_object",
    "errors_response",
    "json_response",
    "violation_errors",
]

# code and title per status, as Klaviyo (a Django REST framework service) words them.
_TITLES: dict[int, tuple[str, str]] = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    415: ("unsupported_media_type", "Unsupported media type."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service unavailable."),
    504: ("gateway_timeout", "Gateway timeout."),
}


def error_object(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    pointer: str | None = None,
    parameter: str | None = None,
) -> dict[str, Any]:
    """One JSON:API error object."""
    default_code, default_title = _TITLES.get(status, ("error", "Error."))
    source: dict[str, str] = {}
    if pointer is not None:
        source["pointer"] = pointer
    if parameter is not None:
        source["parameter"] = parameter
    error: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code or default_code,
        "title": title or default_title,
        "detail": detail,
        "links": {},
        "meta": {},
    }
    if source:
        error["source"] = source
    return error


def json_response(
    status: int, document: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A ``application/vnd.api+json`` response."""
    return web.Response(
        status=status,
        body=orjson.dumps(document),
        content_type=JSONAPI_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def errors_response(
    status: int, errors: Iterable[Mapping[str, Any]], headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error document with ``errors``."""
    return json_response(status, {"errors": list(errors)}, headers)


def violation_errors(violations: Iterable[ContractViolation]) -> list[dict[str, Any]]:
    """One 400 error object per contract violation, pointing where it is."""
    return [error_object(400, v.message, pointer=v.pointer) for v in violations]


_CHALLENGE_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head>
<body><noscript>Enable JavaScript and cookies to continue</noscript>
<div id="challenge-body-text">a.klaviyo.com needs to review the security of your connection
before proceeding.</div></body></html>
"""


def edge_challenge_response() -> web.Response:
    """The 403 an edge proxy answers before the request reaches Klaviyo (not JSON:API)."""
    return web.Response(
        status=403,
        text=_CHALLENGE_PAGE,
        content_type="text/html",
        charset="UTF-8",
        headers={
            "cf-mitigated": "challenge",
            "Server": "cloudflare",
            "cf-ray": uuid.uuid4().hex[:16] + "-BOS",
        },
    )
