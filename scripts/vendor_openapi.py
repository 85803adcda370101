"""Vendor the slice of Klaviyo's OpenAPI spec this service depends on.

Reads Klaviyo's published ``stable.json`` (OpenAPI 3.0.2) and writes
``consumer/klaviyo/openapi-subset.json``: the operations we call, their request and
response schemas, rate limits and scopes, plus only the components those schemas reach.

Schemas are rewritten from OpenAPI 3.0 dialect to JSON Schema 2020-12 so a stock
validator checks them the way Klaviyo does:

* ``nullable: true`` becomes ``type: [X, "null"]`` (and ``null`` joins any ``enum``); on a
  ``$ref`` or a ``oneOf`` it becomes an ``anyOf``/extra branch admitting ``null``. Without
  this, every optional-but-null field (``"time": null``) would be reported as invalid.
* ``example`` becomes ``examples: [...]`` (``example`` is not a 2020-12 keyword).

Output is deterministic (sorted keys, no timestamps, the source named by file name only), so
re-running on the same spec reproduces the committed file byte for byte; ``--check`` exits 1
when the committed file is stale.

Usage::

    python scripts/vendor_openapi.py [SPEC] [--output PATH] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO / ".." / "shared" / "klaviyo" / "openapi.json"
DEFAULT_OUTPUT = REPO / "consumer" / "klaviyo" / "openapi-subset.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# (method, path) of every operation the service or its sandbox speaks.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("post", "/api/event-bulk-create-jobs"),
    ("post", "/api/profile-subscription-bulk-create-jobs"),
    ("post", "/api/events"),
    ("get", "/api/accounts"),
)

# Operation keys copied verbatim (after $ref rewriting); everything else is dropped.
KEPT_OPERATION_KEYS = (
    "operationId",
    "summary",
    "description",
    "parameters",
    "requestBody",
    "responses",
    "x-klaviyo-operation-aliases",
    "x-klaviyo-ratelimit",
    "x-klaviyo-scopes",
)

SCHEMA_PREFIX = "#/components/schemas/"
RESPONSE_PREFIX = "#/components/responses/"


class VendorError(Exception):
    """The spec does not contain what the subset needs."""


def convert_schema(node: Any) -> Any:
    """Rewrite one OpenAPI 3.0 schema (recursively) into JSON Schema 2020-12."""
    if isinstance(node, list):
        return [convert_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key == "example":
            out["examples"] = [value]
        elif key in ("properties", "patternProperties", "$defs"):
            out[key] = {name: convert_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = convert_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [convert_schema(sub) for sub in value]
        else:
            # Annotations (description, default, enum, format, ...) are data, not schemas.
            out[key] = value
    if node.get("nullable") is True:
        out = _admit_null(out)
    return out


def _admit_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Make ``schema`` also accept JSON ``null`` (the meaning of OpenAPI ``nullable``)."""
    if "$ref" in schema:
        # In 2020-12 a $ref's siblings also apply, and the target says type: object, so
        # null has to be offered as an alternative rather than merged into the target.
        ref_only = {"$ref": schema["$ref"]}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return {**rest, "anyOf": [ref_only, {"type": "null"}]}
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        result = {**schema, "type": [*types, "null"] if "null" not in types else types}
        if "enum" in result and None not in result["enum"]:
            result["enum"] = [*result["enum"], None]
        return result
    if "oneOf" in schema:
        return {**schema, "oneOf": [*schema["oneOf"], {"type": "null"}]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    # Untyped schema: it already accepts null.
    return schema


def _refs(node: Any) -> Iterable[str]:
    """Every ``$ref`` value anywhere under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _closure(spec: dict[str, Any], roots: Iterable[Any]) -> tuple[set[str], set[str]]:
    """Names of the component schemas and responses reachable from ``roots``."""
    components = spec["components"]
    schemas: set[str] = set()
    responses: set[str] = set()
    pending = [ref for root in roots for ref in _refs(root)]
    while pending:
        ref = pending.pop()
        if ref.startswith(SCHEMA_PREFIX):
            name, bucket, table = ref[len(SCHEMA_PREFIX) :], schemas, components["schemas"]
        elif ref.startswith(RESPONSE_PREFIX):
            name, bucket, table = ref[len(RESPONSE_PREFIX) :], responses, components["responses"]
        else:
            raise VendorError(f"unsupported $ref {ref!r}")
        if name in bucket:
            continue
        if name not in table:
            raise VendorError(f"dangling $ref {ref!r}")
        bucket.add(name)
        pending.extend(_refs(table[name]))
    return schemas, responses


def _convert_operation(operation: dict[str, Any]) -> dict[str, Any]:
    """Keep the useful keys of one operation, converting every embedded schema."""
    out: dict[str, Any] = {}
    for key in KEPT_OPERATION_KEYS:
        if key in operation:
            out[key] = operation[key]
    if "parameters" in out:
        out["parameters"] = [
            {**param, "schema": convert_schema(param["schema"])} if "schema" in param else param
            for param in out["parameters"]
        ]
    if "requestBody" in out:
        out["requestBody"] = _convert_content_holder(out["requestBody"])
    if "responses" in out:
        out["responses"] = {
            status: _convert_content_holder(response)
            for status, response in out["responses"].items()
        }
    return out


def _convert_content_holder(holder: dict[str, Any]) -> dict[str, Any]:
    """Convert the schemas inside a request body or response object (``content.*.schema``)."""
    if "content" not in holder:
        return holder
    content = {
        media: {**entry, "schema": convert_schema(entry["schema"])} if "schema" in entry else entry
        for media, entry in holder["content"].items()
    }
    return {**holder, "content": content}


def build_subset(spec: dict[str, Any], spec_bytes: bytes, spec_name: str) -> dict[str, Any]:
    """The subset document for ``spec`` (pure: same input, same output)."""
    operations: dict[str, Any] = {}
    for method, path in OPERATIONS:
        try:
            raw = spec["paths"][path][method]
        except KeyError:
            raise VendorError(f"{method.upper()} {path} is not in the spec") from None
        converted = _convert_operation(raw)
        converted["method"] = method.upper()
        converted["path"] = path
        operations[raw["operationId"]] = converted
    schema_names, response_names = _closure(spec, operations.values())
    components = spec["components"]
    return {
        "source": {
            "file": spec_name,
            "sha256": hashlib.sha256(spec_bytes).hexdigest(),
            "size_bytes": len(spec_bytes),
            "openapi": spec["openapi"],
            "revision": spec["info"]["version"],
            "servers": [server["url"] for server in spec.get("servers", [])],
            "security_schemes": components.get("securitySchemes", {}),
            "generator": "scripts/vendor_openapi.py",
            "schema_dialect": DIALECT,
            "note": (
                "Generated; do not edit. Schemas are converted from OpenAPI 3.0 to JSON Schema "
                "2020-12 (nullable -> null type or branch, example -> examples)."
            ),
        },
        "operations": operations,
        "components": {
            "schemas": {name: convert_schema(components["schemas"][name]) for name in schema_names},
            "responses": {
                name: _convert_content_holder(components["responses"][name])
                for name in response_names
            },
        },
    }


def render(subset: dict[str, Any]) -> str:
    """The committed text form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(subset, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the vendored subset; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="stable.json")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="subset to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is not up to date"
    )
    args = parser.parse_args(argv)
    spec_bytes = args.spec.read_bytes()
    try:
        text = render(build_subset(json.loads(spec_bytes), spec_bytes, args.spec.name))
    except VendorError as exc:
        print(f"vendor_openapi: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(
                f"vendor_openapi: {args.output} is stale; re-run without --check", file=sys.stderr
            )
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
