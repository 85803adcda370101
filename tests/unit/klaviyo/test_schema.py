"""The compiled validator agrees with jsonschema, and refuses what it does not implement."""

from __future__ import annotations

import copy
import re
from datetime import date
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.klaviyo import ContractError, subset
from consumer.klaviyo.contract import _close_objects
from consumer.klaviyo.events import parse_time
from consumer.klaviyo.schema import compile_schema
from tests.unit.klaviyo import bodies

OPERATIONS = ("bulk_create_events", "create_event", "bulk_subscribe_profiles")


def push_profile() -> dict[str, Any]:
    return {
        "type": "profile",
        "id": "01GDDKASAP8TKDDA2GRZDSVP4H",
        "attributes": {
            "email": "a@example.com",
            "age_gated_date_of_birth": "1990-05-01",
            "subscriptions": {
                "email": {"marketing": {"consent": "SUBSCRIBED"}, "open_tracking": None},
                "push": {
                    "marketing": {"consent": "SUBSCRIBED", "consented_at": None},
                    "tokens": [
                        {
                            "token": "t",
                            "platform": "android",
                            "vendor": "fcm",
                            "background": "AVAILABLE",
                            "device_metadata": {"klaviyo_sdk": "swift", "os_version": "14"},
                        }
                    ],
                },
            },
        },
    }


SEEDS: dict[str, list[dict[str, Any]]] = {
    "bulk_create_events": [bodies.full_bulk(), bodies.bulk_of(3, per_profile=2)],
    "create_event": [bodies.single(value=3, value_currency=None)],
    "bulk_subscribe_profiles": [bodies.subscribe(push_profile(), historical_import=None)],
}
REPLACEMENTS: list[Any] = [None, 0, 1.5, True, "x", "SUBSCRIBED", [], {}]
REPLACEMENTS += ["2026-01-01T00:00:00Z", "2026-13-01", "2026-02-28"]  # formats: bad and good


def is_calendar_date(text: str) -> bool:
    """RFC 3339 ``full-date``: YYYY-MM-DD naming a real day."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def reference(operation_id: str, strict: bool) -> Any:
    """jsonschema's validator for the same schema, with the same format semantics."""
    raw = subset()["operations"][operation_id]["requestBody"]["content"]
    schema = next(iter(raw.values()))["schema"]
    schemas = subset()["components"]["schemas"]
    if strict:
        schema = _close_objects(schema)
        schemas = {name: _close_objects(sub) for name, sub in schemas.items()}
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(lambda v: not isinstance(v, str) or parse_time(v) is not None)
    checker.checks("date")(lambda v: not isinstance(v, str) or is_calendar_date(v))
    root = {**schema, "components": {"schemas": schemas}}
    return jsonschema.Draft202012Validator(root, format_checker=checker), compile_schema(
        schema, schemas
    )


VALIDATORS = {(op, strict): reference(op, strict) for op in OPERATIONS for strict in (True, False)}


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(paths(value, (*prefix, index)))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bool, Any]:
    operation_id = draw(st.sampled_from(OPERATIONS))
    body = copy.deepcopy(draw(st.sampled_from(SEEDS[operation_id])))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        candidates = paths(body)[1:]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = body
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent["unexpected_field"] = draw(st.sampled_from(REPLACEMENTS))
        else:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(REPLACEMENTS)))
    return operation_id, draw(st.booleans()), body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_compiled_validator_agrees_with_jsonschema(case: tuple[str, bool, Any]) -> None:
    operation_id, strict, body = case
    expected, compiled = VALIDATORS[(operation_id, strict)]
    reference_paths = {tuple(e.absolute_path) for e in expected.iter_errors(body)}
    ours = compiled.errors(body)
    assert bool(ours) == bool(reference_paths)
    # Each problem jsonschema sees is reported by us at that place or below it.
    our_paths = {e.path for e in ours}
    for path in reference_paths:
        assert any(p[: len(path)] == path for p in our_paths), (path, our_paths)


def test_seed_bodies_are_valid() -> None:
    for (operation_id, _), (_, compiled) in VALIDATORS.items():
        for body in SEEDS[operation_id]:
            assert compiled.errors(body) == []


def test_compile_schema_refuses_unknown_keywords_and_refs() -> None:
    with pytest.raises(ContractError, match="maxLength"):
        compile_schema({"type": "string", "maxLength": 3}, {})
    with pytest.raises(ContractError, match="dangling"):
        compile_schema({"$ref": "#/components/schemas/Nope"}, {})
    loop = {"A": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}}}
    with pytest.raises(ContractError, match="recursive"):
        compile_schema({"$ref": "#/components/schemas/A"}, loop)


def test_compile_schema_json_types_are_not_python_types() -> None:
    number = compile_schema({"type": "number"}, {})
    assert number.errors(True) and not number.errors(1) and not number.errors(1.5)
    integer = compile_schema({"type": "integer"}, {})
    assert integer.errors(1.5) and not integer.errors(2.0) and integer.errors(False)
    enum = compile_schema({"enum": [1, "a", None]}, {})
    assert enum.errors(True) and not enum.errors(1) and not enum.errors(None)


def test_compile_schema_one_of_rejects_more_than_one_match() -> None:
    both = compile_schema({"oneOf": [{"type": "number"}, {"type": "integer"}]}, {})
    assert [e.message for e in both.errors(3)] == ["3 is valid under more than one oneOf branch"]
    assert both.errors(3.5) == []
