"""Records written as plain JSON (example files, ``preview`` input) → values fastavro can encode.

JSON has no decimals or timestamps, so example records write money as decimal strings
("49.95") and times as ISO-8601 strings; this walks the schema and converts them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastavro.schema import expand_schema

__all__ = ["record_from_json"]


def _convert(schema: Any, value: Any, path: str) -> Any:
    if isinstance(schema, list):  # union: null or the first branch that converts
        if value is None:
            return None
        errors = []
        for branch in schema:
            if branch == "null":
                continue
            try:
                return _convert(branch, value, path)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError(f"{path}: no union branch fits ({'; '.join(errors)})")
    if isinstance(schema, str):
        return value
    logical = schema.get("logicalType")
    kind = schema["type"]
    if logical == "decimal":
        return Decimal(str(value))
    if logical in ("timestamp-millis", "timestamp-micros"):
        if isinstance(value, int):
            return value
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "record":
        if not isinstance(value, dict):
            raise TypeError(f"{path}: expected an object")
        return {
            f["name"]: _convert(f["type"], value[f["name"]], f"{path}/{f['name']}")
            for f in schema["fields"]
            if f["name"] in value or "default" not in f
        }
    if kind == "array":
        return [_convert(schema["items"], v, f"{path}/{i}") for i, v in enumerate(value)]
    if kind == "map":
        return {k: _convert(schema["values"], v, f"{path}/{k}") for k, v in value.items()}
    return value


def record_from_json(schema: Any, value: Any) -> dict[str, Any]:
    """Convert one JSON record to Avro-ready Python values for ``schema`` (parsed or raw).

    Raises:
        ValueError: the JSON does not fit the schema (the message has a JSON pointer).
        KeyError: a required field is missing.
    """
    result: dict[str, Any] = _convert(expand_schema(schema), value, "")
    return result
