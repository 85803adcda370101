"""``klaviyo-consumer run``: the service (both stages by default)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import signal
import socket
from typing import Any

from consumer.kafka import KafkaError
from consumer.observability import configure_logging
from consumer.runtime.service import Service
from consumer.settings import load_settings

__all__ = ["register"]

log = logging.getLogger("consumer.run")


def register(subparsers: Any) -> None:
    """Add the ``run`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="Run the service: derive and deliver (or one of them)."
    )
    parser.add_argument(
        "--stage",
        choices=("derive", "deliver", "all"),
        default="all",
        help="Run one stage only, so each scales on its own consumer group (default: all).",
    )
    parser.add_argument(
        "--instance-id",
        default=None,
        help="Stable id of this replica (static membership, transactional id); default: "
        "kafka.group_instance_id or the host name.",
    )
    parser.add_argument(
        "--shutdown-seconds",
        type=float,
        default=25.0,
        help="Graceful shutdown budget; keep it under the pod's termination grace period.",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.logging)
    instance = args.instance_id or settings.kafka.group_instance_id or socket.gethostname()
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what a stuck process waits on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    async def main() -> None:
        service = Service(settings, args.stage, instance, args.shutdown_seconds)
        service.install_signal_handlers()
        await service.run()

    try:
        asyncio.run(main())
    except KafkaError as exc:
        log.critical(
            "Kafka error the service cannot ride out, exiting for a restart",
            extra={"error": str(exc)},
        )
        return 1
    except TimeoutError:
        log.critical("shutdown did not finish in time, exiting")
        return 1
    log.info("stopped cleanly")
    return 0
