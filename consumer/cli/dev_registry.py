"""``klaviyo-consumer dev registry``: run the local schema registry until Ctrl-C or SIGTERM.

It speaks the part of Confluent's Schema Registry REST API that producers and this service
use (``consumer.devstack.registry``) and starts with the shipped input schemas registered
under ``<topic>-value`` for the configured topics, so Confluent-framed records can be tried
locally: ``dev produce --framing confluent`` finds it at its default address.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from consumer.devstack.registry import DEFAULT_REGISTRY_PORT, LocalSchemaRegistry, register_inputs
from consumer.settings import load_settings

__all__ = ["register_action"]


def register_action(actions: Any) -> None:
    """Add ``dev registry``."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "registry", help="Run the local (Confluent-compatible) schema registry until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Bind address (default 127.0.0.1).")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_REGISTRY_PORT,
        help=f"Port (default {DEFAULT_REGISTRY_PORT}, Confluent's; 0 = any).",
    )
    parser.set_defaults(handler=lambda args: asyncio.run(_serve(args)))


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    registry = LocalSchemaRegistry()
    ids = register_inputs(registry, load_settings())
    async with registry.run(args.host, args.port) as url:
        print(f"Schema registry at {url}")
        for subject, subject_ids in sorted(ids.items()):
            print(f"  {subject}: schema ids {', '.join(map(str, subject_ids))}")
        print(f"Use it with:  export KLAVIYO_CONSUMER_SCHEMA_REGISTRY__URL={url}")
        print("Ctrl-C to stop.", flush=True)
        await stop.wait()
    return 0
