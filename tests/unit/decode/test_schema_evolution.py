"""Every schema version in schemas/ reads data written with every earlier version (transitive)."""

from __future__ import annotations

import io
import itertools

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from consumer.decode import SchemaCatalog

CATALOG = SchemaCatalog()
PAIRS = [
    (subject, older.version, newer.version)
    for subject in CATALOG.subjects
    for older, newer in itertools.combinations(CATALOG.versions(subject), 2)
]


def test_catalog_has_an_evolved_subject() -> None:
    """Guards the test below against passing vacuously with one version per subject."""
    assert PAIRS, "expected at least one subject with two versions"


@pytest.mark.parametrize(("subject", "older", "newer"), PAIRS)
def test_schema_version_reads_data_of_earlier_version(subject: str, older: int, newer: int) -> None:
    versions = {v.version: v for v in CATALOG.versions(subject)}
    writer, reader = versions[older].schema, versions[newer].schema
    for record in generate_many(writer, 50):
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer, record)
        as_written = schemaless_reader(io.BytesIO(buffer.getvalue()), writer, None)
        as_read = schemaless_reader(io.BytesIO(buffer.getvalue()), writer, reader)
        assert contains(as_read, as_written)


def contains(newer: object, older: object) -> bool:
    """Every value the older schema wrote is present, unchanged, in what the newer one read."""
    if isinstance(older, dict):
        return isinstance(newer, dict) and all(
            key in newer and contains(newer[key], value) for key, value in older.items()
        )
    if isinstance(older, list):
        return (
            isinstance(newer, list)
            and len(newer) == len(older)
            and all(contains(n, o) for n, o in zip(newer, older, strict=True))
        )
    return newer == older


def test_every_field_has_a_doc() -> None:
    def undocumented(schema: object, path: str) -> list[str]:
        missing: list[str] = []
        if isinstance(schema, list):
            for branch in schema:
                missing += undocumented(branch, path)
        elif isinstance(schema, dict) and schema.get("type") == "record":
            for field in schema["fields"]:
                if not field.get("doc"):
                    missing.append(f"{path}.{field['name']}")
                missing += undocumented(field["type"], f"{path}.{field['name']}")
        elif isinstance(schema, dict) and schema.get("type") == "array":
            missing += undocumented(schema["items"], path)
        return missing

    for subject in CATALOG.subjects:
        for version in CATALOG.versions(subject):
            assert undocumented(version.schema, f"{subject}/v{version.version}") == []
