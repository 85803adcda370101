"""``klaviyo-consumer dev up`` (what ``make run`` runs): the whole thing, locally.

Starts a Kafka broker, the Klaviyo sandbox, the local schema registry (with the input schemas
registered) and the service (both stages, reading both framings), onboards four demo
merchants, publishes sample traffic covering every event type and trigger, and prints where to
look. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from consumer.devstack import DevstackError, KafkaBroker
from consumer.devstack.publish import ensure_input_topics, publish
from consumer.devstack.registry import DEFAULT_REGISTRY_PORT, LocalSchemaRegistry, register_inputs
from consumer.devstack.stack import demo_merchants, local_settings, onboard
from consumer.devstack.traffic import sample_traffic
from consumer.observability import configure_logging
from consumer.runtime.service import Service
from consumer.sandbox import Sandbox

__all__ = ["register_action"]


def register_action(actions: Any) -> None:
    """Add ``dev up``."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "up", help="Run broker + Klaviyo sandbox + service with sample traffic (make run)."
    )
    parser.add_argument("--kafka-port", type=int, default=9092, help="Broker port (0 = any).")
    parser.add_argument("--sandbox-port", type=int, default=8090, help="Sandbox port.")
    parser.add_argument("--http-port", type=int, default=8080, help="Service metrics/health port.")
    parser.add_argument(
        "--registry-port", type=int, default=DEFAULT_REGISTRY_PORT, help="Schema registry port."
    )
    parser.add_argument("--orders", type=int, default=30, help="Sample orders per merchant.")
    parser.add_argument("--log-level", default="WARNING", help="Service log level.")
    parser.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    broker = KafkaBroker(port=args.kafka_port)
    print("Starting the local Kafka broker ...", flush=True)
    try:
        broker.start()
    except DevstackError as exc:
        print(f"klaviyo-consumer: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_stack(args, broker.bootstrap_servers))
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        print("Kafka broker stopped. Bye.", flush=True)
    return 0


async def _stack(args: argparse.Namespace, bootstrap: str) -> None:
    registry = LocalSchemaRegistry()
    async with (
        Sandbox.run(port=args.sandbox_port) as sandbox,
        registry.run(port=args.registry_port) as registry_url,
    ):
        settings = local_settings(
            bootstrap,
            sandbox.url,
            http={"host": "127.0.0.1", "port": args.http_port},
            logging={"format": "console", "level": args.log_level},
            topics={"internal_partitions": 3},
            schema_registry={"url": registry_url},
        )
        configure_logging(settings.logging)
        register_inputs(registry, settings)
        merchants = demo_merchants()
        await asyncio.to_thread(ensure_input_topics, settings, 3)
        await asyncio.to_thread(onboard, settings, sandbox, merchants)
        service = Service(settings, "all", "local-1")
        service.install_signal_handlers()
        running = asyncio.create_task(service.run(), name="service")
        while not service.health.ready()[0]:
            if running.done():
                await running  # raises what stopped it
            await asyncio.sleep(0.2)  # waiting for a person-facing start-up, not a test
        traffic = sample_traffic([m.merchant_id for m in merchants], args.orders, datetime.now(UTC))
        count = await asyncio.to_thread(publish, settings, traffic)
        print(
            f"""
klaviyo-consumer is running on a local stack.
  Klaviyo sandbox (what Klaviyo received): {sandbox.url}/
  sandbox JSON API:                        {sandbox.url}/sandbox/stats
  service metrics:                         {service.url}/metrics
  health / readiness:                      {service.url}/healthz  {service.url}/readyz
  per-merchant detail:                     {service.url}/debug/merchants
  Kafka bootstrap servers:                 {bootstrap}
  schema registry (Confluent framing):     {registry_url}
Published {count} sample records for {len(merchants)} merchants:
  merchant-1, merchant-2: every event and trigger; merchant-3: returns and storefront only
  (order tracking and marketing off); merchant-4: no integration (counted as skipped).
Publish more with:  KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS={bootstrap} \\
  KLAVIYO_CONSUMER_SCHEMA_REGISTRY__URL={registry_url} \\
  klaviyo-consumer dev produce --sample-merchants 2 [--framing confluent]
Press Ctrl-C to stop.""",
            flush=True,
        )
        await running
