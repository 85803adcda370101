"""The entry point: ``--help`` lists every command, a command imports only its own module."""

from __future__ import annotations

import argparse
import subprocess
import sys

from consumer.cli.main import COMMANDS, build_parser

# What `integrations` does not need: the service runtime, backfill, the sandbox, the dev stack.
NOT_FOR_INTEGRATIONS = (
    "consumer.backfill",
    "consumer.runtime",
    "consumer.derive",
    "consumer.observability",
    "consumer.sandbox",
    "consumer.devstack",
    "prometheus_client",
    "phonenumbers",
)


def help_lines(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action.help for action in commands._choices_actions}


def test_the_static_help_lines_are_the_commands_own() -> None:
    assert help_lines(build_parser()) == COMMANDS
    assert help_lines(build_parser([])) == COMMANDS


def test_a_command_imports_only_what_it_needs() -> None:
    probe = (
        "import sys\n"
        "from consumer.cli.main import build_parser\n"
        "build_parser(['integrations']).parse_args(['integrations', 'list'])\n"
        "print('\\n'.join(sys.modules))\n"
    )
    run = subprocess.run(  # a fresh interpreter: earlier imports must not count
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(run.stdout.split())
    assert "consumer.cli.integrations" in loaded
    assert not [m for m in loaded for prefix in NOT_FOR_INTEGRATIONS if m.startswith(prefix)]
