"""The Avro contracts in ``schemas/``: every version of every subject, indexed by fingerprint.

Layout: ``schemas/<subject>/v<N>.avsc``. The newest version of a subject is its reader schema;
all versions are possible writers for single-object encoded data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from consumer.paths import schemas_dir

__all__ = ["SchemaCatalog", "SchemaVersion", "canonical_fingerprint"]


def canonical_fingerprint(schema: Any) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of a parsed schema, in single-object byte order."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One ``v<N>.avsc`` file, parsed."""

    subject: str
    version: int
    schema: Any
    fingerprint: bytes


class SchemaCatalog:
    """All schema versions found under a directory."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or schemas_dir()
        self._versions: dict[str, list[SchemaVersion]] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for path in sorted(self.root.glob("*/v*.avsc")):
            subject, version = path.parent.name, int(path.stem[1:])
            schema = parse_schema(json.loads(path.read_text(encoding="utf-8")))
            entry = SchemaVersion(subject, version, schema, canonical_fingerprint(schema))
            self._versions.setdefault(subject, []).append(entry)
            self._by_fingerprint[entry.fingerprint] = entry
        for entries in self._versions.values():
            entries.sort(key=lambda e: e.version)

    @property
    def subjects(self) -> list[str]:
        """Subject names (one per topic contract)."""
        return sorted(self._versions)

    def versions(self, subject: str) -> list[SchemaVersion]:
        """Every version of ``subject``, oldest first."""
        try:
            return list(self._versions[subject])
        except KeyError:
            raise KeyError(f"no schema subject {subject!r} under {self.root}") from None

    def latest(self, subject: str) -> SchemaVersion:
        """The reader schema of ``subject``."""
        return self.versions(subject)[-1]

    def by_fingerprint(self, value: bytes) -> SchemaVersion | None:
        """The version whose canonical form has this fingerprint, if any."""
        return self._by_fingerprint.get(value)
