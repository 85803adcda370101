"""``klaviyo-consumer integrations`` end to end: real broker, sandbox over HTTP."""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from consumer.cli.main import main
from consumer.integrations import (
    AuditAction,
    AuditRecord,
    DecryptError,
    IntegrationsTable,
    KeyChange,
    Keyring,
    decode_audit,
    generate_kek,
    parse_api_key,
    verify_api_key,
)
from consumer.klaviyo import GET_ACCOUNTS, RateLimit
from consumer.sandbox import Sandbox
from consumer.settings import KafkaSettings, KlaviyoSettings, TopicSettings
from tests.helpers.kafka import drain
from tests.helpers.secrets import SecretScanner
from tests.integration.integrations.conftest import CliEnv, CliRunner

DEADLINE = 30.0


def new_key() -> str:
    """A random private key, so no fragment of it can occur anywhere by accident."""
    alphabet = string.ascii_letters + string.digits
    return "pk_" + "".join(secrets.choice(alphabet) for _ in range(34))


def key_file(tmp_path: Path, key: str, name: str = "key") -> Path:
    path = tmp_path / name
    path.write_text(key + "\n")
    return path


async def load_table(
    kafka_settings: KafkaSettings, topics: TopicSettings, keyring: Keyring
) -> IntegrationsTable:
    table = IntegrationsTable(kafka_settings, topics.integrations, keyring)
    async with asyncio.timeout(DEADLINE):
        await table.load()
    return table


def read_audit(kafka_settings: KafkaSettings, topics: TopicSettings) -> list[AuditRecord]:
    return [decode_audit(m.value or b"") for m in drain(kafka_settings, topics.integrations_audit)]


async def test_cli_flow_never_shows_the_plaintext_key(
    sandbox: Sandbox,
    run_cli: CliRunner,
    cli_env: CliEnv,
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    integration_topics: TopicSettings,
    klaviyo_settings: KlaviyoSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guarantee 5: set, load, show, list, verify (valid, then revoked), errors: no key anywhere."""
    caplog.set_level(logging.DEBUG)
    key = new_key()
    scanner = SecretScanner(key)
    sandbox.add_account("shop-1", key)

    result = await run_cli(
        "integrations", "set", "shop-1", "--api-key-file", str(key_file(tmp_path, key)),
        "--order-tracking", "--tracking-page-url-template", "https://t.example/{order_name}",
        "--operator", "alice",
    )  # fmt: skip
    scanner.add("set", result.out + result.err)
    assert result.code == 0, result.err
    assert "is valid" in result.out
    assert "events_write" in result.out

    table = await load_table(kafka_settings, integration_topics, cli_env.keyring())
    try:
        settings = table.get("shop-1")
        assert settings is not None
        assert settings.api_key.get_secret_value() == key
        assert settings.order_tracking_enabled
        assert not settings.marketing_enabled
        scanner.add("merchant settings repr", repr(settings) + str(settings))
    finally:
        await table.close()

    for argv in (
        ("integrations", "show", "shop-1"),
        ("integrations", "show", "shop-1", "--json"),
        ("integrations", "list"),
        ("integrations", "list", "--json"),
        ("config", "show"),
    ):
        result = await run_cli(*argv)
        assert result.code == 0, (argv, result.err)
        scanner.add(" ".join(argv), result.out + result.err)
    shown = orjson.loads((await run_cli("integrations", "show", "shop-1", "--json")).out)
    assert shown["api_key"].startswith("kek k1 sha256:")
    assert shown["updated_by"] == "alice"

    sandbox.revoke_key(key)
    result = await run_cli("integrations", "verify", "shop-1")
    scanner.add("verify revoked", result.out + result.err)
    assert result.code == 1
    assert "revoked" in result.out
    verification = await verify_api_key(SecretStr(key), klaviyo_settings)
    scanner.add("verification repr", repr(verification))

    # Error paths: a malformed key file, a wrong KEK, a key that cannot be stored.
    result = await run_cli(
        "integrations", "set", "shop-1", "--api-key-file", str(key_file(tmp_path, key + "!", "bad"))
    )
    scanner.add("set malformed", result.out + result.err)
    assert result.code == 1
    result = await run_cli(
        "integrations", "set", "shop-1", "--api-key-file", str(key_file(tmp_path, key))
    )
    scanner.add("set revoked", result.out + result.err)
    assert result.code == 1
    assert "not saved" in result.err
    with pytest.raises(Exception) as malformed:
        parse_api_key(key + " trailing words")
    scanner.add_exception("parse_api_key", malformed.value)
    records = drain(kafka_settings, integration_topics.integrations)
    table = await load_table(kafka_settings, integration_topics, cli_env.keyring())
    await table.close()
    stored = table.record("shop-1")
    assert stored is not None
    with pytest.raises(DecryptError) as wrong:
        Keyring({"k1": b"\x00" * 32}).decrypt(stored.api_key, merchant_id="shop-1")
    scanner.add_exception("decrypt with a wrong KEK", wrong.value)
    with pytest.raises(DecryptError) as moved:
        cli_env.keyring().decrypt(stored.api_key, merchant_id="shop-2")
    scanner.add_exception("decrypt for another merchant", moved.value)

    audit = drain(kafka_settings, integration_topics.integrations_audit)
    assert len(records) == 1  # the refused attempts wrote nothing
    assert len(audit) == 1
    scanner.add_messages("integrations topic", records)
    scanner.add_messages("audit topic", audit)
    scanner.add_logs(caplog.records)
    scanner.assert_clean()
    assert {"set", "verify revoked", "integrations topic", "audit topic"} <= {
        where.split(" [")[0] for where in scanner.scanned
    }


async def test_cli_rotation_reencrypts_and_survives_removing_the_old_kek(
    run_cli: CliRunner,
    cli_env: CliEnv,
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    integration_topics: TopicSettings,
) -> None:
    keys = {m: new_key() for m in ("m1", "m2")}
    for merchant, key in keys.items():
        result = await run_cli(
            "integrations", "set", merchant, "--no-verify",
            "--api-key-file", str(key_file(tmp_path, key, merchant)),
        )  # fmt: skip
        assert result.code == 0, result.err
    k1 = cli_env.keys["k1"]

    cli_env.keys["k2"] = generate_kek()
    listed = orjson.loads((await run_cli("integrations", "list", "--json")).out)
    assert [row["api_key"].split()[:2] for row in listed] == [["kek", "k1"], ["kek", "k1"]]
    assert all(row["problem"] is None and "sha256:" in row["api_key"] for row in listed)

    result = await run_cli("integrations", "rotate", "--operator", "rotator")
    assert result.code == 0, result.err
    assert "re-encrypted 2 record(s) under kek k2" in result.out

    del cli_env.keys["k1"]
    listed = orjson.loads((await run_cli("integrations", "list", "--json")).out)
    assert [row["api_key"].split()[:2] for row in listed] == [["kek", "k2"], ["kek", "k2"]]
    table = await load_table(kafka_settings, integration_topics, cli_env.keyring())
    await table.close()
    assert table.problems() == {}
    for merchant, key in keys.items():
        settings = table.get(merchant)
        assert settings is not None
        assert settings.api_key.get_secret_value() == key
    result = await run_cli("integrations", "rotate")
    assert "re-encrypted 0 record(s)" in result.out
    assert "2 already current" in result.out

    audit = [
        decode_audit(m.value or b"")
        for m in drain(kafka_settings, integration_topics.integrations_audit)
    ]
    rotations = [a for a in audit if a.action is AuditAction.ROTATE]
    assert len(rotations) == 2
    assert all(a.api_key is KeyChange.REENCRYPTED and a.kek_id == "k2" for a in rotations)
    assert all(a.previous_kek_id == "k1" and a.operator == "rotator" for a in rotations)
    assert all(a.changes == () for a in rotations)
    assert k1 not in str(audit)


async def test_cli_order_tracking_off_reaches_running_table_without_restart(
    run_cli: CliRunner,
    cli_env: CliEnv,
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    integration_topics: TopicSettings,
) -> None:
    key = new_key()
    result = await run_cli(
        "integrations", "set", "shop", "--no-verify", "--order-tracking",
        "--api-key-file", str(key_file(tmp_path, key)),
    )  # fmt: skip
    assert result.code == 0, result.err
    table = await load_table(kafka_settings, integration_topics, cli_env.keyring())
    try:
        settings = table.get("shop")
        assert settings is not None
        assert settings.order_tracking_enabled

        result = await run_cli("integrations", "set", "shop", "--no-verify", "--no-order-tracking")
        assert result.code == 0, result.err
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(
                lambda t: (s := t.get("shop")) is not None and not s.order_tracking_enabled
            )
        settings = table.get("shop")
        assert settings is not None
        assert settings.enabled
        assert settings.api_key.get_secret_value() == key  # the key was kept

        result = await run_cli("integrations", "disable", "shop", "--operator", "bob")
        assert result.code == 0, result.err
        async with asyncio.timeout(DEADLINE):
            await table.wait_until(lambda t: (s := t.get("shop")) is not None and not s.enabled)
    finally:
        await table.close()

    audit = [
        decode_audit(m.value or b"")
        for m in drain(kafka_settings, integration_topics.integrations_audit)
    ]
    assert [a.action for a in audit] == [AuditAction.SET, AuditAction.SET, AuditAction.DISABLE]
    assert audit[0].api_key is KeyChange.ADDED
    assert [(c.field, c.old, c.new) for c in audit[1].changes] == [
        ("order_tracking_enabled", True, False)
    ]
    assert audit[1].api_key is None
    assert [(c.field, c.old, c.new) for c in audit[2].changes] == [("enabled", True, False)]
    assert audit[2].operator == "bob"
    assert audit[0].operator == "test-operator"  # from $USER


async def test_cli_set_refuses_key_without_events_scope(
    sandbox: Sandbox, run_cli: CliRunner, tmp_path: Path, integration_topics: TopicSettings
) -> None:
    key = new_key()
    sandbox.add_account("shop-scoped", key, scopes={"accounts:read"})
    result = await run_cli(
        "integrations", "set", "shop-scoped", "--api-key-file", str(key_file(tmp_path, key))
    )
    assert result.code == 1
    assert "missing_scope" in result.out
    assert "key cannot do events_write" in result.err
    shown = await run_cli("integrations", "show", "shop-scoped")
    assert shown.code == 1


async def test_cli_set_reads_key_from_stdin_and_marketing_needs_a_list(
    sandbox: Sandbox, run_cli: CliRunner
) -> None:
    key = new_key()
    sandbox.add_account("shop-stdin", key)
    refused = await run_cli(
        "integrations", "set", "shop-stdin", "--api-key-stdin", "--marketing", stdin=key
    )
    assert refused.code == 1
    assert "--email-list-id" in refused.err
    result = await run_cli(
        "integrations", "set", "shop-stdin", "--api-key-stdin", "--marketing",
        "--email-list-id", "L1", "--currency", "eur", stdin=key + "\n",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "subscriptions_write" in result.out
    shown = orjson.loads((await run_cli("integrations", "show", "shop-stdin", "--json")).out)
    assert shown["marketing_enabled"] is True
    assert shown["email_list_id"] == "L1"
    assert shown["default_currency"] == "EUR"


async def test_cli_set_unreachable_klaviyo_needs_no_verify(
    run_cli: CliRunner, cli_env: CliEnv, tmp_path: Path
) -> None:
    cli_env.monkeypatch.setenv("KLAVIYO_CONSUMER_KLAVIYO__BASE_URL", "http://127.0.0.1:9")
    path = str(key_file(tmp_path, new_key()))
    refused = await run_cli("integrations", "set", "offline", "--api-key-file", path)
    assert refused.code == 1
    assert "unreachable" in refused.out
    saved = await run_cli("integrations", "set", "offline", "--api-key-file", path, "--no-verify")
    assert saved.code == 0, saved.err


def test_cli_set_has_no_way_to_pass_the_key_in_argv(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["integrations", "set", "m", "--api-key", "pk_abcdefgh12345678"])
    assert exited.value.code == 2
    capsys.readouterr()


async def test_cli_new_merchant_without_key_is_refused(run_cli: CliRunner) -> None:
    result = await run_cli("integrations", "set", "nobody", "--no-verify")
    assert result.code == 1
    assert "--api-key-file" in result.err


async def test_cli_set_and_verify_leave_no_4xx_in_the_merchants_klaviyo_log(
    sandbox: Sandbox, run_cli: CliRunner, tmp_path: Path
) -> None:
    """A valid key checked by set (new key), set (stored key) and verify: only 2xx answers."""
    key = new_key()
    sandbox.add_account("shop-quiet", key)
    # Klaviyo allows GET /api/accounts once a second per account; three checks in well under
    # a second would meet that 429 (as an operator would), which is not what this is about.
    sandbox.set_rate_limit(GET_ACCOUNTS, RateLimit(10, 60))
    first = await run_cli(
        "integrations", "set", "shop-quiet", "--api-key-file", str(key_file(tmp_path, key))
    )
    assert first.code == 0, first.err
    again = await run_cli("integrations", "set", "shop-quiet", "--order-tracking")
    assert again.code == 0, again.err
    verified = await run_cli("integrations", "verify", "shop-quiet")
    assert verified.code == 0, verified.err
    stats = sandbox.stats
    assert stats.count(account_id="shop-quiet") == 9  # three checks of three probes
    assert (
        stats.count(200, account_id="shop-quiet") + stats.count(202, account_id="shop-quiet") == 9
    )
    assert sandbox.unique_event_count("shop-quiet") == 0
