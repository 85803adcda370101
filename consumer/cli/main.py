"""Entry point of ``klaviyo-consumer``: one sub-command per module in ``consumer/cli/``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` to a function ``(args) -> int`` (the exit code).

Only the module of the command being run is imported: the others pull in the runtime, the
sandbox and the dev stack, which would otherwise cost every invocation a second or more of
imports. Their help lines live in ``COMMANDS`` so ``--help`` still lists every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable, Sequence

from consumer.errors import ConfigError

__all__ = ["main"]

# Command (= module in consumer/cli/) → the help line its ``register`` gives it.
COMMANDS: dict[str, str] = {
    "backfill": "Send a merchant's history (from the input topics) to Klaviyo without firing "
    "flows.",
    "config": "Inspect settings.",
    "dev": "Local development stack (Kafka broker, ...).",
    "integrations": "Manage merchants' Klaviyo integrations.",
    "preview": "Print the Klaviyo requests that input records would produce (sends nothing).",
    "replay": "Republish parked operations or dead-lettered records (idempotent).",
    "run": "Run the service: derive and deliver (or one of them).",
    "sandbox": "Run the local Klaviyo sandbox until Ctrl-C.",
}
COMMAND_MODULES = tuple(COMMANDS)


def build_parser(loaded: Iterable[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The argument parser; commands in ``loaded`` get their full parser, the rest a stub."""
    parser = argparse.ArgumentParser(
        prog="klaviyo-consumer",
        description="Order and return change streams (Kafka, Avro) into Klaviyo, per merchant.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    full = set(loaded)
    for name, help_line in COMMANDS.items():
        if name in full:
            importlib.import_module(f"consumer.cli.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_line)
    return parser


def _command_of(argv: Sequence[str]) -> str:
    """The command named in ``argv`` (the top level has no options taking a value)."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; configuration errors print one line naming the setting and exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    command = _command_of(argv)
    args = build_parser([command] if command in COMMANDS else []).parse_args(argv)
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
