"""``klaviyo-consumer dev kek new``: make a key-encryption key (KEK) for merchants' API keys.

    klaviyo-consumer dev kek new                 # prints the key (base64, 32 bytes)
    klaviyo-consumer dev kek new --id k2 --dir /etc/klaviyo-consumer/keks

Without ``--dir`` the key alone goes to stdout (pipe it into a secret store) and how to use it
goes to stderr. With ``--dir`` it is written to ``DIR/ID`` (mode 0600, never overwritten), the
layout ``integrations.key_encryption_keys_dir`` reads; only the path is printed.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import Any

from consumer.errors import ConfigError
from consumer.integrations.crypto import Keyring, generate_kek

__all__ = ["register_action"]

_ENV = "KLAVIYO_CONSUMER_INTEGRATIONS__KEY_ENCRYPTION_KEYS"


def register_action(actions: Any) -> None:
    """Add ``dev kek new``."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "kek", help="Key-encryption keys for the merchants' API keys."
    )
    kek_actions = parser.add_subparsers(dest="kek_action", required=True, metavar="ACTION")
    new = kek_actions.add_parser("new", help="Print (or write) a fresh key-encryption key.")
    new.add_argument("--id", default="k1", help="Key id (default k1; the greatest id is primary).")
    new.add_argument("--dir", type=Path, help="Write the key to DIR/ID instead of printing it.")
    new.set_defaults(handler=_new)


def _new(args: argparse.Namespace) -> int:
    kek = generate_kek()
    try:
        Keyring({args.id: base64.b64decode(kek)})  # the service's own rules for ids and keys
    except ConfigError as exc:
        print(f"klaviyo-consumer: --id: {exc}", file=sys.stderr)
        return 2
    if args.dir is None:
        print(kek)
        print(
            f'Use it as {_ENV}=\'{{"{args.id}": "<the key>"}}\' or as the file '
            f"<key_encryption_keys_dir>/{args.id}; keep it in your secret store.",
            file=sys.stderr,
        )
        return 0
    path = args.dir / args.id
    try:
        args.dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: an existing key is never replaced (that would orphan every key it wraps).
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        print(f"klaviyo-consumer: cannot create {path}: {exc.strerror}", file=sys.stderr)
        return 1
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(kek + "\n")
    print(f"wrote key-encryption key {args.id!r} to {path}")
    return 0
