"""``verify_api_key`` against the sandbox over HTTP: each verdict a key can get."""

from __future__ import annotations

import socket

from pydantic import SecretStr

from consumer.integrations import Capability, KeyStatus, ProbeResult, verify_api_key
from consumer.sandbox import Sandbox
from consumer.settings import KlaviyoSettings

ALL_SCOPES = {
    "accounts:read",
    "events:write",
    "lists:write",
    "profiles:write",
    "subscriptions:write",
}


async def test_verify_valid_key_reports_every_capability(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    sandbox.add_account("acct-valid", "pk_validKey000000000001", scopes=ALL_SCOPES)
    result = await verify_api_key(SecretStr("pk_validKey000000000001"), klaviyo_settings)
    assert result.status is KeyStatus.VALID
    assert all(result.granted(c) for c in Capability)
    assert result.account_id
    assert result.account_name == "Sandbox acct-valid"
    assert sandbox.unique_event_count("acct-valid") == 0  # the probes created nothing


async def test_verify_revoked_key_is_revoked(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    sandbox.add_account("acct-revoked", "pk_revokedKey0000000001", scopes=ALL_SCOPES)
    sandbox.revoke_key("pk_revokedKey0000000001")
    result = await verify_api_key(SecretStr("pk_revokedKey0000000001"), klaviyo_settings)
    assert result.status is KeyStatus.REVOKED
    assert [(p.capability, p.result, p.http_status) for p in result.probes] == [
        (Capability.ACCOUNT_READ, ProbeResult.REVOKED, 401)
    ]


async def test_verify_unknown_key_is_revoked(klaviyo_settings: KlaviyoSettings) -> None:
    result = await verify_api_key(SecretStr("pk_neverIssued000000001"), klaviyo_settings)
    assert result.status is KeyStatus.REVOKED


async def test_verify_key_without_events_scope_is_missing_scope(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    scopes = ALL_SCOPES - {"events:write"}
    sandbox.add_account("acct-scoped", "pk_scopedKey00000000001", scopes=scopes)
    result = await verify_api_key(SecretStr("pk_scopedKey00000000001"), klaviyo_settings)
    assert result.status is KeyStatus.MISSING_SCOPE
    assert result.missing() == (Capability.EVENTS_WRITE,)
    assert result.granted(Capability.ACCOUNT_READ)
    assert result.granted(Capability.SUBSCRIPTIONS_WRITE)
    events = next(p for p in result.probes if p.capability is Capability.EVENTS_WRITE)
    assert events.http_status == 403


async def test_verify_events_only_key_cannot_subscribe_or_read_account(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    sandbox.add_account("acct-events", "pk_eventsOnly0000000001", scopes={"events:write"})
    result = await verify_api_key(SecretStr("pk_eventsOnly0000000001"), klaviyo_settings)
    assert result.status is KeyStatus.MISSING_SCOPE
    assert result.granted(Capability.EVENTS_WRITE)
    assert set(result.missing()) == {Capability.ACCOUNT_READ, Capability.SUBSCRIPTIONS_WRITE}


async def test_verify_unreachable_api_is_unreachable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = KlaviyoSettings(base_url=f"http://127.0.0.1:{port}", request_timeout_seconds=2)
    result = await verify_api_key(SecretStr("pk_anyKey000000000000001"), settings)
    assert result.status is KeyStatus.UNREACHABLE
    assert result.probes[0].http_status is None


async def test_verify_edge_challenge_is_edge_blocked(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    sandbox.add_account("acct-edge", "pk_edgeKey0000000000001", scopes=ALL_SCOPES)
    sandbox.faults("acct-edge").edge_challenge(count=1)
    result = await verify_api_key(SecretStr("pk_edgeKey0000000000001"), klaviyo_settings)
    assert result.status is KeyStatus.EDGE_BLOCKED
    assert result.probes[0].http_status == 403


async def test_verify_outage_is_inconclusive(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    sandbox.add_account("acct-down", "pk_downKey0000000000001", scopes=ALL_SCOPES)
    sandbox.faults("acct-down").fail_next(count=None, status=503)
    result = await verify_api_key(SecretStr("pk_downKey0000000000001"), klaviyo_settings)
    assert result.status is KeyStatus.INCONCLUSIVE


async def test_verify_valid_key_leaves_no_error_in_the_account_log(
    sandbox: Sandbox, klaviyo_settings: KlaviyoSettings
) -> None:
    """The write probes are valid, empty jobs: 202, nothing stored, no 4xx for the merchant."""
    sandbox.add_account("acct-quiet", "pk_quietKey000000000001", scopes=ALL_SCOPES)
    result = await verify_api_key(SecretStr("pk_quietKey000000000001"), klaviyo_settings)
    assert result.status is KeyStatus.VALID
    assert [(p.capability, p.http_status) for p in result.probes] == [
        (Capability.ACCOUNT_READ, 200),
        (Capability.EVENTS_WRITE, 202),
        (Capability.SUBSCRIPTIONS_WRITE, 202),
    ]
    stats = sandbox.stats
    assert all(stats.count(status, account_id="acct-quiet") == 0 for status in range(400, 500))
    assert sandbox.unique_event_count("acct-quiet") == 0
    assert sandbox.subscriptions("acct-quiet") == []
