"""``klaviyo-consumer integrations``: set, show, list, disable, verify and rotate merchants.

API keys are read from a file or stdin, never from the command line (argv is visible to
every user of the machine through ``ps`` and lands in shell history). Output never shows
characters of a key: only the id of the KEK that wraps it and a short fingerprint hash.
Every change is written together with an audit record naming the operator.

``set`` is quick (well under a second on a local broker): it reads the table, checks a new
key against Klaviyo and readies its transactional producer at the same time, then commits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from consumer.integrations import (
    AuditAction,
    AuditRecord,
    Capability,
    DecryptError,
    IntegrationPublisher,
    IntegrationRecord,
    IntegrationsError,
    IntegrationsTable,
    KeyChange,
    Keyring,
    KeyStatus,
    Verification,
    api_key_fingerprint,
    audit_change,
    ensure_integration_topics,
    parse_api_key,
    resolve_operator,
    verify_api_key,
)
from consumer.kafka import KafkaError, UnknownTopicError
from consumer.settings import Settings, load_settings

__all__ = ["register"]

_BLOCKING = (KeyStatus.REVOKED, KeyStatus.UNREACHABLE, KeyStatus.EDGE_BLOCKED)
# The table's poll waits this long for a full batch; a one-shot command reading a small
# topic would otherwise wait the table's default (0.5 s) on every poll.
_TABLE_POLL_SECONDS = 0.02

Changes = list[tuple[IntegrationRecord, AuditRecord]]


def register(subparsers: Any) -> None:
    """Add the ``integrations`` command and its actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "integrations", help="Manage merchants' Klaviyo integrations."
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="Seconds to read the integrations topic."
    )
    actions = parser.add_subparsers(dest="action", required=True)

    set_ = actions.add_parser("set", help="Create or update (and enable) a merchant.")
    set_.add_argument("merchant")
    source = set_.add_mutually_exclusive_group()
    source.add_argument("--api-key-file", type=Path, help="File holding the private key.")
    source.add_argument("--api-key-stdin", action="store_true", help="Read the key from stdin.")
    onoff = argparse.BooleanOptionalAction
    set_.add_argument("--order-tracking", action=onoff, help="Order Tracking Update events.")
    set_.add_argument("--marketing", action=onoff, help="Subscriptions from sign-ups.")
    set_.add_argument("--email-list-id", help="List for email sign-ups ('' clears).")
    set_.add_argument("--sms-list-id", help="List for SMS sign-ups ('' clears).")
    set_.add_argument("--tracking-page-url-template", help="TrackingPageLink template.")
    set_.add_argument("--currency", help="Default ISO 4217 currency, e.g. USD.")
    set_.add_argument("--country", help="Default ISO 3166 alpha-2 country, e.g. US.")
    set_.add_argument("--stall-threshold-hours", type=int, help="0 = the service default.")
    set_.add_argument("--no-verify", action="store_true", help="Skip the check against Klaviyo.")
    set_.add_argument(
        "--backfill-days",
        type=int,
        metavar="N",
        help="Then send the merchant's last N days of history (as `backfill --since`).",
    )
    _operator(set_)
    set_.set_defaults(handler=lambda a: _run(_set(a)))

    show = actions.add_parser("show", help="One merchant, key redacted.")
    show.add_argument("merchant")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=lambda a: _run(_show(a)))

    list_ = actions.add_parser("list", help="Every merchant, keys redacted.")
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(handler=lambda a: _run(_list(a)))

    disable = actions.add_parser("disable", help="Stop sending for a merchant (key kept).")
    disable.add_argument("merchant")
    _operator(disable)
    disable.set_defaults(handler=lambda a: _run(_disable(a)))

    verify = actions.add_parser("verify", help="Check a merchant's stored key against Klaviyo.")
    verify.add_argument("merchant")
    verify.set_defaults(handler=lambda a: _run(_verify(a)))

    rotate = actions.add_parser("rotate", help="Re-encrypt every key under the primary KEK.")
    rotate.add_argument("--dry-run", action="store_true", help="Only say what would change.")
    _operator(rotate)
    rotate.set_defaults(handler=lambda a: _run(_rotate(a)))


def _operator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--operator", help="Who makes the change (default: $USER).")


def _run(work: Coroutine[Any, Any, int]) -> int:
    """Run one action; expected failures print one line and exit 1."""
    try:
        return asyncio.run(work)
    except (IntegrationsError, KafkaError) as exc:
        print(f"klaviyo-consumer integrations: {exc}", file=sys.stderr)
    except TimeoutError:
        print(
            "klaviyo-consumer integrations: timed out reading the integrations topic "
            "(see --timeout)",
            file=sys.stderr,
        )
    return 1


class _Context:
    """Settings, keyring and the current table, loaded once per command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings: Settings = load_settings()
        self.keyring = Keyring.from_settings(self.settings.integrations)
        self.now = _now()

    async def load(self, *, create_topics: bool) -> IntegrationsTable:
        """Read the integrations topic to its end (the table is closed again afterwards)."""
        if create_topics:
            kafka, topics = self.settings.kafka, self.settings.topics
            await asyncio.to_thread(ensure_integration_topics, kafka, topics)
        table = IntegrationsTable(
            self.settings.kafka,
            self.settings.topics.integrations,
            self.keyring,
            poll_timeout=_TABLE_POLL_SECONDS,
        )
        try:
            async with asyncio.timeout(self.args.timeout):
                await table.load()
        except UnknownTopicError:
            pass  # nothing was ever written: an empty table
        finally:
            await table.close()
        return table

    async def publish(self, changes: Changes) -> None:
        """Write records and their audit records in one transaction."""
        async with self.publisher() as publish:
            await publish(changes)

    @contextlib.asynccontextmanager
    async def publisher(self) -> AsyncIterator[Callable[[Changes], Awaitable[None]]]:
        """A publisher readied in the background (``init_transactions`` takes a broker round
        trip or more) while the caller does other work; yields its ``publish``."""
        publisher = IntegrationPublisher(self.settings.kafka, self.settings.topics)
        ready = asyncio.ensure_future(asyncio.to_thread(publisher.prepare))

        async def publish(changes: Changes) -> None:
            await ready
            await asyncio.to_thread(publisher.publish, changes)

        try:
            yield publish
        finally:
            # Unused or failed: its outcome no longer matters, only that the thread is done.
            await asyncio.gather(ready, return_exceptions=True)
            await asyncio.to_thread(publisher.close)


def _now() -> datetime:
    # The record stores milliseconds; the audit record should show the same instant.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _read_key(args: argparse.Namespace) -> SecretStr | None:
    if args.api_key_stdin:
        return parse_api_key(sys.stdin.read())
    if args.api_key_file is not None:
        try:
            text = args.api_key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IntegrationsError(
                f"cannot read --api-key-file {str(args.api_key_file)!r}: {type(exc).__name__}"
            ) from None
        return parse_api_key(text)
    return None


def _settings_from_flags(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    values = dict(base, enabled=True)
    flags: dict[str, Callable[[Any], tuple[str, Any]]] = {
        "order_tracking": lambda v: ("order_tracking_enabled", v),
        "marketing": lambda v: ("marketing_enabled", v),
        "email_list_id": lambda v: ("email_list_id", v or None),
        "sms_list_id": lambda v: ("sms_list_id", v or None),
        "tracking_page_url_template": lambda v: ("tracking_page_url_template", v or None),
        "currency": lambda v: ("default_currency", v.upper()),
        "country": lambda v: ("default_country", v.upper()),
        "stall_threshold_hours": lambda v: ("stall_threshold_hours", v or None),
    }
    for flag, convert in flags.items():
        value = getattr(args, flag)
        if value is not None:
            name, converted = convert(value)
            values[name] = converted
    _check_values(values)
    return values


def _check_values(values: dict[str, Any]) -> None:
    problems = []
    if not (len(values["default_currency"]) == 3 and values["default_currency"].isalpha()):
        problems.append("--currency must be a 3-letter ISO 4217 code")
    if not (len(values["default_country"]) == 2 and values["default_country"].isalpha()):
        problems.append("--country must be a 2-letter ISO 3166 code")
    if (values["stall_threshold_hours"] or 0) < 0:
        problems.append("--stall-threshold-hours must not be negative")
    template = values["tracking_page_url_template"]
    if template and not template.startswith(("https://", "http://")):
        problems.append("--tracking-page-url-template must be an http(s) URL")
    if values["marketing_enabled"] and not (values["email_list_id"] or values["sms_list_id"]):
        problems.append("--marketing needs --email-list-id or --sms-list-id")
    if problems:
        raise IntegrationsError("; ".join(problems))


async def _set(args: argparse.Namespace) -> int:
    if not args.merchant.strip() or args.merchant != args.merchant.strip():
        raise IntegrationsError("MERCHANT must be a non-empty id without surrounding spaces")
    if args.backfill_days is not None and args.backfill_days < 1:
        raise IntegrationsError("--backfill-days must be at least 1")
    ctx = _Context(args)
    new_key = _read_key(args)
    operator = resolve_operator(args.operator)
    async with ctx.publisher() as publish:
        return await _set_with(ctx, args, new_key, operator, publish)


async def _set_with(
    ctx: _Context,
    args: argparse.Namespace,
    new_key: SecretStr | None,
    operator: str,
    publish: Callable[[Changes], Awaitable[None]],
) -> int:
    check_new_key = new_key is not None and not args.no_verify
    # A new key is checked while the table loads; a stored one can only be checked after.
    table, verification = await asyncio.gather(
        ctx.load(create_topics=True),
        _check(new_key, ctx.settings) if check_new_key else _nothing(),
    )
    before = table.record(args.merchant)
    if new_key is None and before is None:
        raise IntegrationsError("a new merchant needs --api-key-file or --api-key-stdin")
    base = before.settings_values() if before else IntegrationRecord.default_values()
    values = _settings_from_flags(args, base)
    old_key = _try_decrypt(ctx.keyring, before)
    key = new_key or old_key
    if not args.no_verify:
        if key is None:
            raise IntegrationsError(
                f"the stored key of {args.merchant!r} cannot be decrypted here to verify it; "
                "give it again or use --no-verify"
            )
        if verification is None:
            verification = await verify_api_key(key, ctx.settings.klaviyo)
        _print_verification(args.merchant, key, verification)
        problem = _unusable(verification, marketing=values["marketing_enabled"])
        if problem:
            print(f"not saved: {problem} (use --no-verify to save anyway)", file=sys.stderr)
            return 1
    key_change: KeyChange | None = None
    if new_key is not None:
        envelope = ctx.keyring.encrypt(new_key, merchant_id=args.merchant)
        if before is not None:
            same = old_key is not None and old_key == new_key
            key_change = KeyChange.UNCHANGED if same else KeyChange.CHANGED
    else:
        assert before is not None  # noqa: S101 -- new merchants were refused above
        envelope = before.api_key
    record = IntegrationRecord(
        merchant_id=args.merchant,
        api_key=envelope,
        updated_at=ctx.now,
        updated_by=operator,
        **values,
    )
    audit = audit_change(AuditAction.SET, before, record, key_change=key_change)
    await publish([(record, audit)])
    print(f"saved {args.merchant}: {_flags(record)}, key {_key_label(ctx.keyring, record)}")
    if args.backfill_days:
        return await _backfill(ctx, record, days=args.backfill_days)
    return 0


async def _backfill(ctx: _Context, record: IntegrationRecord, *, days: int) -> int:
    # Imported here: backfill pulls in the whole derive runtime (about a second of imports)
    # that every other `integrations` invocation does without.
    from consumer.backfill import BackfillRequest
    from consumer.cli.backfill import run_backfill
    from consumer.cli.preview_inputs import keyless_settings

    request = BackfillRequest(keyless_settings(record), ctx.now - timedelta(days=days))
    return await asyncio.to_thread(run_backfill, ctx.settings, request)


async def _check(key: SecretStr | None, settings: Settings) -> Verification | None:
    return None if key is None else await verify_api_key(key, settings.klaviyo)


async def _nothing() -> None:
    return None


def _try_decrypt(keyring: Keyring, record: IntegrationRecord | None) -> SecretStr | None:
    if record is None:
        return None
    try:
        return keyring.decrypt(record.api_key, merchant_id=record.merchant_id)
    except DecryptError:
        return None


def _unusable(verification: Verification, *, marketing: bool) -> str | None:
    if verification.status in _BLOCKING:
        return f"key check says {verification.status.value}"
    required = [Capability.EVENTS_WRITE] + ([Capability.SUBSCRIPTIONS_WRITE] if marketing else [])
    missing = [c.value for c in required if not verification.granted(c)]
    return f"key cannot do {', '.join(missing)}" if missing else None


def _print_verification(merchant: str, key: SecretStr, verification: Verification) -> None:
    account = ""
    if verification.account_id:
        account = f" (account {verification.account_id}"
        account += f" {verification.account_name!r})" if verification.account_name else ")"
    print(f"{merchant}: key {api_key_fingerprint(key)} is {verification.status.value}{account}")
    for probe in verification.probes:
        status = f" HTTP {probe.http_status}" if probe.http_status is not None else ""
        detail = f" {probe.detail}" if probe.detail else ""
        scopes = ", ".join(probe.capability.scopes)
        print(f"  {probe.capability.value:<20} {probe.result.value}{status}{detail} [{scopes}]")


def _flags(record: IntegrationRecord) -> str:
    on = {True: "on", False: "off"}
    return (
        f"enabled={on[record.enabled]} order_tracking={on[record.order_tracking_enabled]} "
        f"marketing={on[record.marketing_enabled]}"
    )


def _key_label(keyring: Keyring, record: IntegrationRecord) -> str:
    try:
        key = keyring.decrypt(record.api_key, merchant_id=record.merchant_id)
    except DecryptError as exc:
        return f"kek {record.api_key.kek_id} ({exc.reason})"
    return f"kek {record.api_key.kek_id} {api_key_fingerprint(key)}"


def _describe(keyring: Keyring, record: IntegrationRecord, problem: str | None) -> dict[str, Any]:
    return {
        "merchant_id": record.merchant_id,
        **record.settings_values(),
        "api_key": _key_label(keyring, record),
        "updated_at": record.updated_at.isoformat(),
        "updated_by": record.updated_by,
        "problem": problem,
    }


async def _show(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    table = await ctx.load(create_topics=False)
    record = table.record(args.merchant)
    if record is None:
        problem = table.problems().get(args.merchant)
        suffix = f" (latest record unusable: {problem})" if problem else ""
        print(f"no integration for merchant {args.merchant!r}{suffix}", file=sys.stderr)
        return 1
    described = _describe(ctx.keyring, record, table.problems().get(args.merchant))
    if args.json:
        print(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
    else:
        for name, value in described.items():
            print(f"{name:<28} {'-' if value is None else value}")
    return 0


async def _list(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    table = await ctx.load(create_topics=False)
    problems = table.problems()
    rows = [
        _describe(ctx.keyring, record, problems.get(merchant_id))
        for merchant_id, record in sorted(table.records().items())
    ]
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{'MERCHANT':<24} {'FLAGS':<48} {'API KEY':<32} UPDATED")
    for row in rows:
        flags = " ".join(
            name for name in ("enabled", "order_tracking_enabled", "marketing_enabled") if row[name]
        )
        updated = f"{row['updated_at']} by {row['updated_by']}"
        print(f"{row['merchant_id']:<24} {flags or '-':<48} {row['api_key']:<32} {updated}")
    return 0


async def _disable(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    operator = resolve_operator(args.operator)
    table = await ctx.load(create_topics=True)
    before = table.record(args.merchant)
    if before is None:
        print(f"no integration for merchant {args.merchant!r}", file=sys.stderr)
        return 1
    if not before.enabled:
        print(f"{args.merchant} is already disabled")
        return 0
    record = before.replace(enabled=False, updated_at=ctx.now, updated_by=operator)
    audit = audit_change(AuditAction.DISABLE, before, record, key_change=None)
    await ctx.publish([(record, audit)])
    print(f"disabled {args.merchant} (key kept)")
    return 0


async def _verify(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    table = await ctx.load(create_topics=False)
    record = table.record(args.merchant)
    if record is None:
        print(f"no integration for merchant {args.merchant!r}", file=sys.stderr)
        return 1
    key = ctx.keyring.decrypt(record.api_key, merchant_id=record.merchant_id)
    verification = await verify_api_key(key, ctx.settings.klaviyo)
    _print_verification(args.merchant, key, verification)
    return 1 if _unusable(verification, marketing=record.marketing_enabled) else 0


async def _rotate(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    operator = resolve_operator(args.operator)
    table = await ctx.load(create_topics=not args.dry_run)
    changes: list[tuple[IntegrationRecord, AuditRecord]] = []
    failed: dict[str, str] = {
        m: reason for m, reason in table.problems().items() if table.record(m) is None
    }
    current = 0
    for merchant_id, before in sorted(table.records().items()):
        if not ctx.keyring.needs_rotation(before.api_key):
            current += 1
            continue
        try:
            envelope = ctx.keyring.reencrypt(before.api_key, merchant_id=merchant_id)
        except DecryptError as exc:
            failed[merchant_id] = exc.reason
            continue
        record = before.replace(api_key=envelope, updated_at=ctx.now, updated_by=operator)
        audit = audit_change(AuditAction.ROTATE, before, record, key_change=KeyChange.REENCRYPTED)
        changes.append((record, audit))
    verb = "would re-encrypt" if args.dry_run else "re-encrypted"
    if changes and not args.dry_run:
        await ctx.publish(changes)
    print(
        f"{verb} {len(changes)} record(s) under kek {ctx.keyring.primary_key_id}; "
        f"{current} already current; {len(failed)} failed"
    )
    for merchant_id, reason in sorted(failed.items()):
        print(f"  {merchant_id}: {reason}", file=sys.stderr)
    return 1 if failed else 0
