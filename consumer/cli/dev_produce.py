"""``klaviyo-consumer dev produce``: publish the example records (or sample traffic)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

from consumer.decode import SchemaCatalog
from consumer.devstack.publish import (
    ensure_input_topics,
    example_records,
    publish,
    publish_sample_traffic,
)
from consumer.devstack.registry import DEFAULT_REGISTRY_URL
from consumer.settings import load_settings

__all__ = ["register_action"]


def register_action(actions: Any) -> None:
    """Add ``dev produce``."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "produce",
        help="Publish schemas/examples (or generated sample traffic) to the input topics.",
    )
    parser.add_argument(
        "--framing",
        choices=("single-object", "confluent"),
        default="single-object",
        help="Avro single-object encoding (no registry) or Confluent framing (registers the "
        "schema first: KLAVIYO_CONSUMER_SCHEMA_REGISTRY__URL, --schema-registry-url, or the "
        f"local one of dev up / dev registry at {DEFAULT_REGISTRY_URL}).",
    )
    parser.add_argument("--schema-registry-url", default=None, help="Override the registry URL.")
    parser.add_argument(
        "--sample-merchants",
        type=int,
        default=0,
        help="Instead of the examples, publish generated traffic for this many merchants.",
    )
    parser.add_argument("--orders", type=int, default=20, help="Orders per sample merchant.")
    parser.add_argument("--partitions", type=int, default=3, help="Partitions of missing topics.")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Processes generating and publishing sample traffic (one per core).",
    )
    parser.set_defaults(handler=_produce)


def _produce(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.schema_registry_url:
        overrides["schema_registry"] = {"url": args.schema_registry_url}
    settings = load_settings(**overrides)
    if args.framing == "confluent" and settings.schema_registry.url is None:
        # Out of the box: the registry that dev up and dev registry run.
        settings = load_settings(schema_registry={"url": DEFAULT_REGISTRY_URL})
    catalog = SchemaCatalog()
    created = ensure_input_topics(settings, args.partitions)
    started = time.monotonic()
    try:
        if args.sample_merchants:
            merchants = [f"merchant-{i}" for i in range(1, args.sample_merchants + 1)]
            count = publish_sample_traffic(
                settings, merchants, args.orders, datetime.now(UTC), args.framing, args.workers
            )
        else:
            records = example_records(catalog.root / "examples", catalog)
            count = publish(settings, records, args.framing, catalog)
    except OSError as exc:  # urllib's URLError is one: the registry did not answer
        print(
            f"klaviyo-consumer: schema registry {settings.schema_registry.url} unreachable "
            f"({exc}); start one with `klaviyo-consumer dev registry` (or dev up)",
            file=sys.stderr,
        )
        return 1
    seconds = time.monotonic() - started
    if created:
        print(f"created topics: {', '.join(created)}")
    registry = f", schemas in {settings.schema_registry.url}" if args.framing == "confluent" else ""
    print(
        f"published {count} records to {settings.kafka.bootstrap_servers} "
        f"({args.framing}{registry}) in {seconds:.2f} s ({count / max(seconds, 1e-9):,.0f} rec/s)"
    )
    return 0
