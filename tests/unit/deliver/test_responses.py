"""``classify``: Klaviyo's answers, table-driven, including non-JSON edge responses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

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
from consumer.deliver.responses import classify, rate_limit_headers, retry_after

EVENT_3 = "/data/attributes/events-bulk-create/data/3/attributes/events/data/0/attributes/time"
JSONAPI = {"Content-Type": "application/vnd.api+json"}
HTML = {"Content-Type": "text/html; charset=UTF-8"}


def errors(*items: dict[str, Any]) -> bytes:
    return orjson.dumps({"errors": list(items)})


def error(code: str = "invalid", detail: str = "bad", **source: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "x", "code": code, "title": "Invalid input.", "detail": detail}
    if source:
        body["source"] = source
    return body


THROTTLED = errors(
    error("throttled", "Request was throttled. Expected available in 2 seconds.", pointer="/data")
)

# (status, headers, body, expected class, flags (retriable, parks_merchant, parks_endpoint, splits))
CASES: list[tuple[str, int, dict[str, str], bytes, type[DeliveryError] | None]] = [
    ("202 accepted", 202, {}, b"", None),
    ("200 accepted", 200, JSONAPI, b"{}", None),
    ("429 with Retry-After", 429, {"Retry-After": "3", **JSONAPI}, THROTTLED, Throttled),
    ("429 html", 429, HTML, b"<html>slow down</html>", Throttled),
    ("500 json", 500, JSONAPI, errors(error("error", "oops")), KlaviyoUnavailable),
    ("502 html", 502, HTML, b"<html>bad gateway</html>", KlaviyoUnavailable),
    ("503 empty", 503, {}, b"", KlaviyoUnavailable),
    ("504", 504, JSONAPI, errors(error("gateway_timeout", "slow")), KlaviyoUnavailable),
    ("524 cloudflare timeout", 524, HTML, b"<html>timeout</html>", KlaviyoUnavailable),
    ("408", 408, {}, b"", KlaviyoUnavailable),
    ("400 pointer", 400, JSONAPI, errors(error(pointer=EVENT_3)), InvalidOperations),
    ("400 no source", 400, JSONAPI, errors(error()), UnattributedRejection),
    ("400 /data pointer", 400, JSONAPI, errors(error(pointer="/data")), UnattributedRejection),
    ("400 revision", 400, JSONAPI, errors(error(parameter="revision")), RequestRejected),
    ("400 html edge", 400, HTML, b"<html>400 Bad Request cloudflare</html>", EdgeRejected),
    ("400 json garbage", 400, JSONAPI, b"{not json", EdgeRejected),
    ("400 json without errors", 400, JSONAPI, b'{"detail": "x"}', EdgeRejected),
    (
        "409 pointer",
        409,
        JSONAPI,
        errors(error("duplicate_profile", pointer=EVENT_3)),
        InvalidOperations,
    ),
    ("401 json", 401, JSONAPI, errors(error("not_authenticated", pointer="/data/")), Unauthorized),
    ("401 html", 401, HTML, b"<html>no</html>", Unauthorized),
    ("403 scope", 403, JSONAPI, errors(error("permission_denied", "missing scopes")), MissingScope),
    (
        "403 cf challenge",
        403,
        {"cf-mitigated": "challenge", **HTML},
        b"<html/>",
        KlaviyoUnavailable,
    ),
    ("403 html no challenge", 403, HTML, b"<html>forbidden</html>", EdgeRejected),
    ("404", 404, JSONAPI, errors(error("not_found")), RequestRejected),
    ("410 revision retired", 410, JSONAPI, errors(error("gone")), RequestRejected),
    ("413 html", 413, HTML, b"<html>too large</html>", UnattributedRejection),
    ("413 json", 413, JSONAPI, errors(error("too_large")), UnattributedRejection),
    ("415", 415, JSONAPI, errors(error("unsupported_media_type")), RequestRejected),
]


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify_table(
    status: int, headers: dict[str, str], body: bytes, expected: type[DeliveryError] | None
) -> None:
    result = classify(status, headers, body)
    if expected is None:
        assert result is None
    else:
        assert type(result) is expected
        assert result.status == status or isinstance(result, Throttled)


@pytest.mark.parametrize(
    ("error_class", "retriable", "parks_merchant", "parks_endpoint", "splits"),
    [
        (Throttled, True, False, False, False),
        (KlaviyoUnavailable, True, False, False, False),
        (Unauthorized, False, True, False, False),
        (MissingScope, False, False, True, False),
        (EdgeRejected, False, False, True, False),
        (RequestRejected, False, False, True, False),
        (UnattributedRejection, False, False, False, True),
        (InvalidOperations, False, False, False, False),
    ],
)
def test_error_policy_is_on_the_class(
    error_class: type[DeliveryError],
    retriable: bool,
    parks_merchant: bool,
    parks_endpoint: bool,
    splits: bool,
) -> None:
    flags = (error_class.retriable, error_class.parks_merchant, error_class.parks_endpoint)
    assert (*flags, error_class.splits) == (retriable, parks_merchant, parks_endpoint, splits)


def test_classify_400_pointers_carry_klaviyo_detail_per_pointer() -> None:
    other = "/data/attributes/events-bulk-create/data/5/attributes/profile/data/attributes/email"
    body = errors(
        error(detail="time must be after 1990", pointer=EVENT_3),
        error(detail="email is not a valid address", pointer=other),
        error(detail="also bad", pointer=EVENT_3),
    )
    result = classify(400, JSONAPI, body)
    assert isinstance(result, InvalidOperations)
    assert result.details == {
        EVENT_3: "invalid: time must be after 1990; invalid: also bad",
        other: "invalid: email is not a valid address",
    }


def test_classify_header_names_are_case_insensitive() -> None:
    result = classify(429, {"retry-after": "7"}, b"")
    assert isinstance(result, Throttled)
    assert result.retry_after == 7.0


@pytest.mark.parametrize(
    ("headers", "detail", "expected"),
    [
        ({"Retry-After": "3"}, "", 3.0),
        ({"Retry-After": "0"}, "", 0.0),
        ({"Retry-After": "1.5"}, "", 1.5),
        ({"Retry-After": "soon"}, "Expected available in 4 seconds.", 4.0),
        ({}, "Request was throttled. Expected available in 1 second.", 1.0),
        ({}, "", 1.0),
        ({"Retry-After": "-2"}, "", 1.0),
    ],
)
def test_retry_after(headers: dict[str, str], detail: str, expected: float) -> None:
    assert retry_after(headers, detail) == expected


def test_classify_429_uses_detail_hint_without_header() -> None:
    result = classify(429, JSONAPI, THROTTLED)
    assert isinstance(result, Throttled)
    assert result.retry_after == 2.0


def test_rate_limit_headers_parsed_or_none() -> None:
    parsed = rate_limit_headers(
        {"RateLimit-Limit": "150", "RateLimit-Remaining": "12", "RateLimit-Reset": "41"}
    )
    assert parsed is not None
    assert (parsed.limit, parsed.remaining, parsed.reset) == (150, 12, 41.0)
    assert rate_limit_headers({"RateLimit-Remaining": "1"}) is None
    assert rate_limit_headers({"RateLimit-Remaining": "x", "RateLimit-Reset": "1"}) is None


def test_classify_long_detail_is_bounded() -> None:
    result = classify(500, JSONAPI, errors(error(detail="x" * 10_000)))
    assert isinstance(result, KlaviyoUnavailable)
    assert len(result.detail) <= 500
