"""Klaviyo's answer to one request, classified: pure, table-tested, no I/O.

``classify(status, headers, body)`` returns ``None`` when Klaviyo accepted the request and
otherwise the ``DeliveryError`` whose class says what the sender does next (see
``consumer.deliver.errors``). ``rate_limit_headers`` reads the ``RateLimit-*`` headers Klaviyo
sends on every non-429 answer.

Klaviyo documents JSON:API ``errors[]`` bodies, but its Cloudflare edge answers some requests
with HTML (a 400 for a wrong auth scheme, a 403 with ``cf-mitigated: challenge``), so nothing
here assumes a 4xx body is JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from consumer.deliver.errors import (
    DeliveryError,
    EdgeRejected,
    InvalidOperations,
    KlaviyoUnavailable,
    MissingScope,
    RequestRejected,
    Throttled,
    UnattributedRejection,
    Unauthorized,
)

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "RateLimitHeaders",
    "classify",
    "error_details",
    "rate_limit_headers",
    "retry_after",
]

DEFAULT_RETRY_AFTER = 1.0
"""Wait after a 429 that names no time (Klaviyo's windows are 1 s and 60 s)."""

# Pointers naming the request as a whole, not one of its entries.
_REQUEST_POINTERS = frozenset({"", "/", "/data", "/data/", "/data/attributes"})
# Statuses whose JSON errors are about the body's content.
_CONTENT_STATUSES = frozenset({400, 409, 422})
_MAX_DETAIL = 500
_EXPECTED_IN = re.compile(r"available in (\d+(?:\.\d+)?) second")


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """Klaviyo's view of the steady window: ``remaining`` requests, resets in ``reset`` s."""

    limit: int | None
    remaining: int
    reset: float


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value >= 0 and value == value else None  # rejects NaN


def rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders | None:
    """The ``RateLimit-Remaining``/``-Reset`` pair (and ``-Limit``), or None if incomplete."""
    lowered = _lower(headers)
    remaining = _number(lowered.get("ratelimit-remaining"))
    reset = _number(lowered.get("ratelimit-reset"))
    if remaining is None or reset is None:
        return None
    limit = _number(lowered.get("ratelimit-limit"))
    return RateLimitHeaders(None if limit is None else int(limit), int(remaining), reset)


def _errors(body: bytes) -> list[Mapping[str, Any]] | None:
    """JSON:API ``errors[]`` of ``body``, or None when the body is not a JSON:API error."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, Mapping):
        return None
    errors = document.get("errors")
    if not isinstance(errors, list):
        return None
    return [error for error in errors if isinstance(error, Mapping)]


def _text(error: Mapping[str, Any]) -> str:
    """``code: detail`` of one error, bounded (a detail may echo a long input)."""
    parts = [str(error[k]) for k in ("code", "detail") if isinstance(error.get(k), str)]
    if len(parts) < 2 and isinstance(error.get("title"), str):
        parts.append(str(error["title"]))
    return ": ".join(parts)[:_MAX_DETAIL] or "no detail"


def _source(error: Mapping[str, Any]) -> Mapping[str, Any]:
    source = error.get("source")
    return source if isinstance(source, Mapping) else {}


def error_details(errors: list[Mapping[str, Any]]) -> str:
    """All errors' texts joined, for a log line or a dead-letter record."""
    return "; ".join(_text(error) for error in errors)[:_MAX_DETAIL]


def retry_after(headers: Mapping[str, str], detail: str = "") -> float:
    """Seconds to wait after a 429: ``Retry-After``, else the detail's hint, else 1 s."""
    seconds = _number(_lower(headers).get("retry-after"))
    if seconds is not None:
        return seconds
    hint = _EXPECTED_IN.search(detail)
    if hint is not None:
        return float(hint.group(1))
    return DEFAULT_RETRY_AFTER


def _classify_non_json(status: int, headers: Mapping[str, str]) -> DeliveryError:
    lowered = _lower(headers)
    kind = lowered.get("content-type", "unknown").split(";")[0].strip() or "unknown"
    message = f"HTTP {status} with a {kind} body"
    if lowered.get("cf-mitigated", "").lower() == "challenge":
        # A bot challenge at the edge: about our egress, not this merchant; it may lift.
        return KlaviyoUnavailable(f"{message} (edge challenge)", status=status)
    if status == 401:
        return Unauthorized(message, status=status)
    if status == 413:
        return UnattributedRejection(f"{message} (payload too large)", status=status)
    return EdgeRejected(message, status=status)


def _classify_content(status: int, errors: list[Mapping[str, Any]]) -> DeliveryError:
    """A 400-like answer: name the operations if pointers allow, else split or park."""
    details: dict[str, str] = {}
    about_request = False
    for error in errors:
        source = _source(error)
        pointer = source.get("pointer")
        if isinstance(pointer, str) and pointer not in _REQUEST_POINTERS:
            text = _text(error)
            details[pointer] = f"{details[pointer]}; {text}" if pointer in details else text
        elif isinstance(source.get("parameter"), str) and not isinstance(pointer, str):
            about_request = True  # a header or query parameter (e.g. revision), not the body
    detail = error_details(errors) or "no errors[] in body"
    if details:
        return InvalidOperations(
            f"HTTP {status}: {len(details)} pointer(s) rejected", status=status, details=details
        )
    if about_request:
        return RequestRejected(
            f"HTTP {status} about request parameters", status=status, detail=detail
        )
    return UnattributedRejection(f"HTTP {status} naming no operation", status=status, detail=detail)


def classify(status: int, headers: Mapping[str, str], body: bytes) -> DeliveryError | None:
    """What Klaviyo's answer means: None for accepted, else the error to act on.

    ``headers`` may be any mapping (names are compared case-insensitively); ``body`` is the
    raw response body, possibly empty or not JSON.
    """
    if 200 <= status < 300:
        return None
    errors = _errors(body) if body else None
    detail = error_details(errors) if errors else ""
    if status == 429:
        wait = retry_after(headers, detail)
        return Throttled(f"HTTP 429, retry after {wait:g} s", retry_after=wait, detail=detail)
    if status >= 500 or status == 408:
        return KlaviyoUnavailable(f"HTTP {status}", status=status, detail=detail)
    if errors is None:
        return _classify_non_json(status, headers)
    if status == 401:
        return Unauthorized("HTTP 401", status=status, detail=detail)
    if status == 403:
        return MissingScope("HTTP 403", status=status, detail=detail)
    if status == 413:
        return UnattributedRejection("HTTP 413", status=status, detail=detail)
    if status in _CONTENT_STATUSES:
        return _classify_content(status, errors)
    # 404, 405, 410 (revision retired), 415...: our request is wrong, not the data.
    return RequestRejected(f"HTTP {status}", status=status, detail=detail)
