"""The vendored OpenAPI subset: provenance, OpenAPI-to-JSON-Schema conversion, freshness."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from consumer.klaviyo import subset
from consumer.klaviyo.contract import SUBSET_PATH

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "vendor_openapi.py"
SPEC = REPO.parent / "shared" / "klaviyo" / "openapi.json"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_openapi", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(walk(item))
    return found


def test_subset_records_its_source() -> None:
    source = subset()["source"]
    assert source["revision"] == "2026-07-15"
    assert len(source["sha256"]) == 64
    assert source["openapi"] == "3.0.2"


def test_subset_has_the_four_operations_with_limits_and_scopes() -> None:
    operations = subset()["operations"]
    assert sorted(operations) == [
        "bulk_create_events",
        "bulk_subscribe_profiles",
        "create_event",
        "get_accounts",
    ]
    for raw in operations.values():
        assert set(raw["x-klaviyo-ratelimit"]) == {"burst", "steady"}
        assert raw["x-klaviyo-scopes"]


def test_subset_schemas_are_valid_json_schema_without_openapi_keywords() -> None:
    schemas = subset()["components"]["schemas"]
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert not any("nullable" in node for node in walk(schema)), name
        assert not any("example" in node for node in walk(schema)), name


def test_subset_every_ref_resolves() -> None:
    components = subset()["components"]
    for node in walk(subset()):
        ref = node.get("$ref")
        if isinstance(ref, str):
            _, kind, name = ref.removeprefix("#/").split("/")
            assert name in components[kind], ref


def test_convert_schema_nullable_forms() -> None:
    convert = load_script().convert_schema
    assert convert({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert convert({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert convert({"$ref": "#/x", "description": "d", "nullable": True}) == {
        "description": "d",
        "anyOf": [{"$ref": "#/x"}, {"type": "null"}],
    }
    assert convert({"oneOf": [{"type": "string"}], "nullable": True}) == {
        "oneOf": [{"type": "string"}, {"type": "null"}]
    }
    nested = convert({"type": "object", "properties": {"a": {"type": "number", "nullable": True}}})
    assert nested["properties"]["a"] == {"type": ["number", "null"]}
    assert convert({"type": "string", "example": "x"}) == {"type": "string", "examples": ["x"]}


def test_convert_schema_leaves_property_named_like_a_keyword_alone() -> None:
    convert = load_script().convert_schema
    schema = {"type": "object", "properties": {"nullable": {"type": "boolean"}}}
    assert convert(schema) == schema


@pytest.mark.skipif(not SPEC.is_file(), reason="the full Klaviyo spec is not checked out")
def test_vendor_script_reproduces_the_committed_subset() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(SPEC), "--output", str(SUBSET_PATH), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not SPEC.is_file(), reason="the full Klaviyo spec is not checked out")
def test_vendor_script_output_is_deterministic(tmp_path: Path) -> None:
    outputs = []
    for name in ("a.json", "b.json"):
        target = tmp_path / name
        subprocess.run(
            [sys.executable, str(SCRIPT), str(SPEC), "--output", str(target)],
            capture_output=True,
            check=True,
        )
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1] == SUBSET_PATH.read_bytes()
    assert json.loads(outputs[0])["source"]["file"] == "openapi.json"
