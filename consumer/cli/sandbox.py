"""``klaviyo-consumer sandbox``: run the local Klaviyo sandbox until Ctrl-C or SIGTERM.

    klaviyo-consumer sandbox --port 8089 --account merchant-1=pk_demo_1 \\
        --account merchant-2=pk_demo_2:events:write,accounts:read

Each ``--account ID=KEY[:SCOPE,SCOPE...]`` creates an account with one key (all scopes the
vendored operations need unless listed). Point ``KLAVIYO_CONSUMER_KLAVIYO__BASE_URL`` at the
printed URL; the page shows what arrived, ``/sandbox/...`` configures faults and keys.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from consumer.sandbox import DEFAULT_SCOPES, Sandbox
from consumer.sandbox.accounts import redact, validate_scopes

__all__ = ["DEFAULT_PORT", "parse_account", "register"]

DEFAULT_PORT = 8089


def parse_account(text: str) -> tuple[str, str, frozenset[str]]:
    """``ID=KEY[:SCOPE,SCOPE]`` as (account id, key, scopes); raises ArgumentTypeError."""
    account_id, sep, rest = text.partition("=")
    key, _, scope_text = rest.partition(":")
    if not sep or not account_id or not key:
        # The text may hold a key: name only the account part in the message.
        raise argparse.ArgumentTypeError(f"expected ID=KEY[:SCOPE,...] for {account_id!r}")
    try:
        scopes = validate_scopes(s.strip() for s in scope_text.split(",") if s.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return account_id, key, scopes or DEFAULT_SCOPES


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox", help="Run the local Klaviyo sandbox until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Bind address (default 127.0.0.1).")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT}; 0 = any)."
    )
    parser.add_argument(
        "--account",
        action="append",
        type=parse_account,
        default=[],
        metavar="ID=KEY[:SCOPES]",
        help="Create an account with a private key (repeatable).",
    )
    parser.add_argument(
        "--any-revision",
        action="store_true",
        help="Accept any well-formed revision header, not only the vendored one.",
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="Never throttle (benchmarks of the sender); responses keep their RateLimit-* headers.",
    )
    parser.add_argument("--access-log", action="store_true", help="Log every request.")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    options: dict[str, Any] = {"revisions": None} if args.any_revision else {}
    if args.no_rate_limits:
        options["enforce_rate_limits"] = False
    async with Sandbox.run(args.host, args.port, access_log=args.access_log, **options) as sandbox:
        for account_id, key, scopes in args.account:
            sandbox.add_account(account_id, key, scopes)
            print(f"account {account_id}: key {redact(key)} scopes {' '.join(sorted(scopes))}")
        url = sandbox.url
        print(f"Klaviyo sandbox at {url}  (page: {url}/, admin: {url}/sandbox/)")
        if args.no_rate_limits:
            print("rate limits lifted: no request is throttled")
        print("Ctrl-C to stop.", flush=True)
        await stop.wait()
    return 0
