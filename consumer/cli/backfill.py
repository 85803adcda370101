"""``klaviyo-consumer backfill``: send a newly connected merchant's history to Klaviyo.

    klaviyo-consumer backfill --merchant shop-1 --since 2026-09-01 --dry-run   # counts only
    klaviyo-consumer backfill --merchant shop-1 --since 2026-09-01 [--until 2026-10-01]

Reads the input topics from ``--since`` (by record timestamp) to ``--until`` or to their end
when the run starts, keeps the merchant's records and writes what they derive to the outbox
flagged ``backfill`` (no flow fires), in Kafka transactions with its own checkpoint: run the
same command again after a crash and it resumes; after it finished, it writes nothing. The
running service delivers it, live traffic first. The merchant's settings (tracking and
marketing switches, lists) come from the integrations topic; its API key is not read.
Progress goes to stderr (a bar on a terminal, JSON lines otherwise), the summary to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from consumer.backfill import Backfill, BackfillRequest, Progress, ProgressReporter
from consumer.cli.preview_inputs import integration_record, keyless_settings
from consumer.kafka import KafkaError
from consumer.merchant import MerchantSettings
from consumer.settings import Settings, load_settings

__all__ = ["moment", "register", "run_backfill"]


def moment(text: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC if it names no offset)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(subparsers: Any) -> None:
    """Add the ``backfill`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backfill",
        help="Send a merchant's history (from the input topics) to Klaviyo without firing flows.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--merchant", required=True, help="The merchant id.")
    parser.add_argument("--since", required=True, type=moment, help="From this date or time.")
    parser.add_argument("--until", type=moment, help="Up to this date or time (default: now).")
    parser.add_argument("--dry-run", action="store_true", help="Count per metric; write nothing.")
    parser.add_argument(
        "--chunk", type=int, default=1000, help="Records read per transaction (default 1000)."
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="Seconds to read the integrations topic."
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.until is not None and args.until <= args.since:
        print("klaviyo-consumer backfill: --until must be after --since", file=sys.stderr)
        return 2
    if args.chunk < 1:
        print("klaviyo-consumer backfill: --chunk must be at least 1", file=sys.stderr)
        return 2
    settings = load_settings()
    try:
        record = integration_record(settings, args.merchant, args.timeout)
    except (KafkaError, TimeoutError) as exc:
        print(f"klaviyo-consumer backfill: cannot read the integrations: {exc}", file=sys.stderr)
        return 1
    if record is None or not record.enabled:
        state = "no integration" if record is None else "its integration disabled"
        print(
            f"klaviyo-consumer backfill: {args.merchant!r} has {state}; nothing would be sent "
            "(integrations set first)",
            file=sys.stderr,
        )
        return 2
    return run_backfill(
        settings,
        BackfillRequest(keyless_settings(record), args.since, args.until, args.chunk),
        dry_run=args.dry_run,
    )


def run_backfill(
    settings: Settings,
    request: BackfillRequest,
    *,
    dry_run: bool = False,
    out: Callable[[str], None] = print,
) -> int:
    """Run a backfill with progress on stderr and a JSON summary through ``out``."""
    merchant: MerchantSettings = request.merchant
    reporter = ProgressReporter(sys.stderr, merchant.merchant_id, dry_run=dry_run)
    runner = Backfill(settings, request)
    try:
        progress = runner.run(reporter, dry_run=dry_run)
    except KafkaError as exc:
        print(
            f"klaviyo-consumer backfill: {exc} (run the same command again to resume)",
            file=sys.stderr,
        )
        return 1
    out(
        orjson.dumps(
            _summary(runner.describe(), progress, dry_run), option=orjson.OPT_INDENT_2
        ).decode()
    )
    return 0


def _summary(request: dict[str, Any], progress: Progress, dry_run: bool) -> dict[str, Any]:
    def by(prefix: str) -> dict[str, int]:
        return {
            name.removeprefix(prefix): n
            for name, n in sorted(progress.derived.items())
            if name.startswith(prefix)
        }

    return {
        **request,
        "dry_run": dry_run,
        "records": progress.total,
        "merchant_records": progress.kept,
        "other_merchants_records": progress.other_merchants,
        "events": by("event:"),
        "subscriptions": by("subscription:"),
        "dead_letters": progress.dead_letters,
        "done": progress.done,
    }
