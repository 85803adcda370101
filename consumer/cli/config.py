"""``klaviyo-consumer config show``: the effective settings, secrets redacted."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from consumer.settings import load_settings

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``config`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser("config", help="Inspect settings.")
    actions = parser.add_subparsers(dest="action", required=True)
    show = actions.add_parser(
        "show", help="Print the effective settings as JSON, secrets redacted."
    )
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(orjson.dumps(settings.redacted(), option=orjson.OPT_INDENT_2).decode())
    return 0
