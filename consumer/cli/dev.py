"""``klaviyo-consumer dev``: the local development stack.

- ``dev fetch-broker``: download and cache the Kafka broker jars (Maven Central).
- ``dev broker [--port N]``: run a real single-node Kafka 4 broker until Ctrl-C or SIGTERM.
- ``dev registry``: the local schema registry (``dev_registry``); ``dev kek new``: a fresh
  key-encryption key (``dev_kek``); ``dev produce`` and ``dev up``: their own modules.

More actions plug in without touching ``register``: add a function ``(actions) -> None`` that
calls ``actions.add_parser(...)`` and sets ``handler``, then list it in ``ACTION_REGISTRARS``
(or name its module in ``ACTION_MODULES``, which must expose ``register_action(actions)``).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from consumer.devstack import (
    DEFAULT_KAFKA_VERSION,
    DevstackError,
    KafkaBroker,
    fetch_broker_artifacts,
)

__all__ = ["ACTION_MODULES", "ACTION_REGISTRARS", "register"]

ActionRegistrar = Callable[[Any], None]
"""Adds one ``dev`` action to the ``actions`` sub-parsers."""

DEFAULT_BROKER_PORT = 9092


def _register_fetch_broker(actions: Any) -> None:
    parser: argparse.ArgumentParser = actions.add_parser(
        "fetch-broker", help="Download and cache the Kafka broker jars (needs mvn and java)."
    )
    parser.add_argument("--version", default=DEFAULT_KAFKA_VERSION, help="Kafka version.")
    parser.set_defaults(handler=_fetch_broker)


def _register_broker(actions: Any) -> None:
    parser: argparse.ArgumentParser = actions.add_parser(
        "broker", help="Run a local single-node Kafka broker until Ctrl-C."
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_BROKER_PORT,
        help=f"Client port (default {DEFAULT_BROKER_PORT}, which the default settings use).",
    )
    parser.add_argument("--version", default=DEFAULT_KAFKA_VERSION, help="Kafka version.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="Keep the broker's data here across runs (default: a temporary directory).",
    )
    parser.set_defaults(handler=_broker)


ACTION_REGISTRARS: tuple[ActionRegistrar, ...] = (_register_fetch_broker, _register_broker)
"""The built-in ``dev`` actions."""

ACTION_MODULES: tuple[str, ...] = (
    "consumer.cli.dev_produce",
    "consumer.cli.dev_up",
    "consumer.cli.dev_kek",
    "consumer.cli.dev_registry",
)
"""Modules (dotted names) that add ``dev`` actions through ``register_action(actions)``."""


def register(subparsers: Any) -> None:
    """Add the ``dev`` command and each of its actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev", help="Local development stack (Kafka broker, ...)."
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for registrar in ACTION_REGISTRARS:
        registrar(actions)
    for module in ACTION_MODULES:
        importlib.import_module(module).register_action(actions)


def _fetch_broker(args: argparse.Namespace) -> int:
    try:
        libs = fetch_broker_artifacts(args.version)
    except DevstackError as exc:
        print(f"klaviyo-consumer: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka {args.version} broker jars are in {libs}")
    return 0


def _broker(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker = KafkaBroker(port=args.port, version=args.version, data_dir=args.data_dir)
    try:
        return _serve(broker, args.version, stop)
    except DevstackError as exc:
        print(f"klaviyo-consumer: {exc}", file=sys.stderr)
        return 1
    finally:
        broker.stop()
        print("Kafka broker stopped.", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(broker: KafkaBroker, version: str, stop: threading.Event) -> int:
    """Start ``broker``, say how to use it, and wait for ``stop`` or for the JVM to exit."""
    print(f"Starting Kafka {version} (data in {broker.config.data_dir}) ...", flush=True)
    broker.start()
    print(
        f"Kafka broker started at {broker.bootstrap_servers} (pid {broker.pid}) "
        f"in {broker.startup_seconds:.1f} s\n"
        f"  bootstrap servers: {broker.bootstrap_servers}\n"
        f"  broker log:        {broker.log_file}\n"
        "Point other commands at it (the default settings already use 127.0.0.1:9092):\n"
        f"  export KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS={broker.bootstrap_servers}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    exited = threading.Event()

    def watch() -> None:
        broker.wait()
        exited.set()
        stop.set()

    threading.Thread(target=watch, name="broker-watch", daemon=True).start()
    stop.wait()
    if exited.is_set():
        print(f"Kafka broker exited unexpectedly; log: {broker.log_file}", file=sys.stderr)
        print(broker.log_tail(), file=sys.stderr)
        return 1
    return 0
