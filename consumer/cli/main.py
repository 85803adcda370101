"""Entry point of ``klaviyo-consumer``: one sub-command per module in ``consumer/cli/``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from consumer.errors import ConfigError

__all__ = ["main"]

COMMAND_MODULES = (
    "backfill",
    "config",
    "dev",
    "integrations",
    "preview",
    "replay",
    "run",
    "sandbox",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="klaviyo-consumer",
        description="Order and return change streams (Kafka, Avro) into Klaviyo, per merchant.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"consumer.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; configuration errors print one line naming the setting and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        # One line, so it is the line an orchestrator shows as the reason of the exit.
        print(
            f"klaviyo-consumer: configuration error: {' '.join(str(exc).split())}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
