"""``klaviyo-consumer dev``: the local development stack.

- ``dev fetch-broker``: download and cache the Kafka broker jars (Maven Central).
- ``dev broker [--port N] [--brokers N]``: run a real Kafka 4 broker (or a cluster of N nodes,
  replicated as in production) until Ctrl-C or SIGTERM.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from consumer.devstack import (
    DEFAULT_KAFKA_VERSION,
    DevstackError,
    KafkaBroker,
    KafkaCluster,
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
        "broker", help="Run a local Kafka broker (or a cluster) until Ctrl-C."
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_BROKER_PORT,
        help=f"Client port (default {DEFAULT_BROKER_PORT}, which the default settings use); "
        "the nodes of a cluster take this one and the next ones.",
    )
    parser.add_argument(
        "--brokers",
        type=_node_count,
        default=1,
        help="Nodes (default 1). More form one KRaft cluster, every topic replicated three "
        "times with min.insync.replicas 2, so failover can be tried as production runs it.",
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


def _node_count(text: str) -> int:
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return count


def _broker(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # One node stays a plain broker: same ports, data layout and start-up time as ever.
    cluster: KafkaBroker | KafkaCluster
    if args.brokers == 1:
        cluster = KafkaBroker(port=args.port, version=args.version, data_dir=args.data_dir)
        nodes = [cluster]
    else:
        cluster = KafkaCluster(
            args.brokers, port=args.port, version=args.version, data_dir=args.data_dir
        )
        nodes = cluster.nodes
    try:
        return _serve(cluster, nodes, args.version, stop)
    except DevstackError as exc:
        print(f"klaviyo-consumer: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        print("Kafka broker stopped.", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(
    cluster: KafkaBroker | KafkaCluster,
    nodes: Sequence[KafkaBroker],
    version: str,
    stop: threading.Event,
) -> int:
    """Start ``cluster``, say how to use it, and wait for ``stop`` or for a JVM to exit."""
    where = ", ".join(str(node.config.data_dir) for node in nodes)
    print(f"Starting Kafka {version} (data in {where}) ...", flush=True)
    cluster.start()
    if len(nodes) == 1:
        (node,) = nodes
        started = (
            f"Kafka broker started at {node.bootstrap_servers} (pid {node.pid}) "
            f"in {cluster.startup_seconds:.1f} s\n  broker log:        {node.log_file}\n"
        )
    else:
        started = (
            f"Kafka cluster of {len(nodes)} brokers started in {cluster.startup_seconds:.1f} s\n"
        )
        started += "".join(
            f"  broker {node.config.node_id}: {node.bootstrap_servers} (pid {node.pid}), "
            f"log {node.log_file}\n"
            for node in nodes
        )
        started += (
            "  Kafka's own topics have 3 replicas (min.insync.replicas 2); for the service's:\n"
            f"  export KLAVIYO_CONSUMER_TOPICS__REPLICATION_FACTOR={min(len(nodes), 3)}\n"
        )
    print(
        started + f"  bootstrap servers: {cluster.bootstrap_servers}\n"
        "Point other commands at it (the default settings already use 127.0.0.1:9092):\n"
        f"  export KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS={cluster.bootstrap_servers}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    exited: list[KafkaBroker] = []
    lock = threading.Lock()
    closing = threading.Event()  # from here on, JVMs exit because we stop them

    def watch(node: KafkaBroker) -> None:
        # A cluster outlives one node (that is what it is for); it ends with the last one.
        node.wait()
        with lock:
            if closing.is_set():
                return
            exited.append(node)
            print(f"Kafka broker exited unexpectedly; log: {node.log_file}", file=sys.stderr)
            print(node.log_tail(), file=sys.stderr)
            if len(exited) == len(nodes):
                stop.set()

    for node in nodes:
        threading.Thread(target=watch, args=(node,), name="broker-watch", daemon=True).start()
    stop.wait()
    with lock:
        closing.set()
        return 1 if len(exited) == len(nodes) else 0
