"""``klaviyo-consumer replay``: republish parked or dead-lettered records."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson

from consumer.observability import configure_logging
from consumer.runtime.replay import replay
from consumer.settings import load_settings

__all__ = ["register"]


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(subparsers: Any) -> None:
    """Add the ``replay`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="Republish parked operations or dead-lettered records (idempotent).",
        description="Parked operations and Klaviyo rejections go back to the outbox (old events "
        "with backfill=true); input records that failed derivation go back to their topic.",
    )
    parser.add_argument("--from", dest="source", choices=("dead-letter", "parked"), required=True)
    parser.add_argument("--merchant", help="Only this merchant's records.")
    parser.add_argument(
        "--since", type=_aware, help="Only records that first failed at or after this ISO time."
    )
    parser.add_argument("--rate", type=float, default=500.0, help="Records per second at most.")
    parser.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.logging)
    report = replay(
        settings,
        args.source,
        datetime.now(UTC),
        merchant=args.merchant,
        since=args.since,
        rate=args.rate,
    )
    print(orjson.dumps(dataclasses.asdict(report)).decode())
    return 0
