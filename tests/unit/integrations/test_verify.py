"""Classifying Klaviyo's answers to the key probes (pure, no server)."""

from __future__ import annotations

import orjson
import pytest

from consumer.integrations import Capability, KeyStatus, Probe, ProbeResult, summarise
from consumer.integrations.verify import classify_response

JSONAPI = "application/vnd.api+json"
A, E, S = Capability.ACCOUNT_READ, Capability.EVENTS_WRITE, Capability.SUBSCRIPTIONS_WRITE


def error_body(status: int, code: str, detail: str = "whatever") -> bytes:
    return orjson.dumps(
        {"errors": [{"id": "x", "status": status, "code": code, "title": "T.", "detail": detail}]}
    )


@pytest.mark.parametrize(
    ("capability", "status", "content_type", "body", "expected"),
    [
        (A, 200, JSONAPI, b'{"data": []}', ProbeResult.GRANTED),
        (E, 400, JSONAPI, error_body(400, "invalid"), ProbeResult.GRANTED),
        (S, 400, "application/json", error_body(400, "invalid"), ProbeResult.GRANTED),
        (E, 202, "", b"", ProbeResult.GRANTED),
        (E, 202, JSONAPI, b"{}", ProbeResult.GRANTED),
        (A, 400, JSONAPI, error_body(400, "invalid"), ProbeResult.UNEXPECTED),
        (A, 401, JSONAPI, error_body(401, "not_authenticated"), ProbeResult.REVOKED),
        (E, 401, JSONAPI, error_body(401, "not_authenticated"), ProbeResult.REVOKED),
        (E, 403, JSONAPI, error_body(403, "permission_denied"), ProbeResult.MISSING_SCOPE),
        (A, 403, "text/html; charset=UTF-8", b"<html>Just a moment", ProbeResult.EDGE_BLOCKED),
        (A, 200, "text/html", b"<html>Just a moment</html>", ProbeResult.EDGE_BLOCKED),
        (E, 400, "text/html", b"<html>400 Bad Request cloudflare</html>", ProbeResult.EDGE_BLOCKED),
        (E, 403, JSONAPI, b"not json", ProbeResult.EDGE_BLOCKED),
        (E, 429, JSONAPI, error_body(429, "throttled"), ProbeResult.RATE_LIMITED),
        (E, 503, JSONAPI, error_body(503, "service_unavailable"), ProbeResult.SERVER_ERROR),
        (E, 502, "text/html", b"<html>bad gateway</html>", ProbeResult.SERVER_ERROR),
        (E, 404, JSONAPI, error_body(404, "not_found"), ProbeResult.UNEXPECTED),
    ],
)
def test_classify_response(
    capability: Capability, status: int, content_type: str, body: bytes, expected: ProbeResult
) -> None:
    result, _ = classify_response(capability, status, content_type, body)
    assert result is expected


def test_classify_response_detail_uses_code_and_title_only() -> None:
    body = error_body(403, "permission_denied", detail="pk_leaked_in_detail")
    _, detail = classify_response(E, 403, JSONAPI, body)
    assert detail == "permission_denied: T."


def probes(*results: ProbeResult) -> tuple[Probe, ...]:
    return tuple(Probe(cap, r, None) for cap, r in zip((A, E, S), results, strict=False))


G, M = ProbeResult.GRANTED, ProbeResult.MISSING_SCOPE


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ((G, G, G), KeyStatus.VALID),
        ((M, G, G), KeyStatus.MISSING_SCOPE),
        ((G, G, M), KeyStatus.MISSING_SCOPE),
        ((ProbeResult.REVOKED,), KeyStatus.REVOKED),
        ((ProbeResult.UNREACHABLE,), KeyStatus.UNREACHABLE),
        ((ProbeResult.EDGE_BLOCKED,), KeyStatus.EDGE_BLOCKED),
        ((ProbeResult.RATE_LIMITED, G, G), KeyStatus.INCONCLUSIVE),
        ((G, ProbeResult.SERVER_ERROR, M), KeyStatus.INCONCLUSIVE),
        ((), KeyStatus.INCONCLUSIVE),
    ],
)
def test_summarise(results: tuple[ProbeResult, ...], expected: KeyStatus) -> None:
    assert summarise(probes(*results)) is expected


def test_capability_scopes_come_from_the_contract() -> None:
    assert E.scopes == ("events:write",)
    assert set(S.scopes) == {"lists:write", "profiles:write", "subscriptions:write"}
    assert A.scopes == ("accounts:read",)
