"""A compiled validator for the JSON Schema 2020-12 subset the vendored contract uses.

Why not ``jsonschema`` at run time: it resolves ``$ref`` and re-creates a validator per node
for every event, about 300 ms per 1,000-event request, which would make the sandbox (and any
sender that checks its batches) the bottleneck of every benchmark. Compiling each schema once
into nested closures is ~10x faster. The subset is small and closed: ``compile_schema``
refuses any keyword it does not implement, so re-vendoring a spec that starts using, say,
``maxLength`` fails loudly instead of silently validating less. The tests cross-check this
validator against ``jsonschema`` on generated bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, NamedTuple

from consumer.klaviyo.errors import ContractError
from consumer.klaviyo.events import parse_time

__all__ = ["SchemaError", "Validator", "compile_schema"]

Path = tuple[str | int, ...]


class SchemaError(NamedTuple):
    """One problem: where in the instance, what, and (for type errors) the types wanted."""

    path: Path
    message: str
    types: tuple[str, ...] = ()


Found = list[SchemaError]
Check = Callable[[Any, Path, Found], None]
"""Appends a ``SchemaError`` for each problem of the instance at ``path``."""

# Keywords that only annotate; everything else must be implemented below.
_ANNOTATIONS = frozenset(
    {"description", "default", "examples", "title", "$schema", "deprecated", "$comment"}
)
_REF_PREFIX = "#/components/schemas/"


def _is_type(value: Any, name: str) -> bool:
    # bool is an int in Python but not a number in JSON.
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise ContractError(f"unknown JSON type {name!r}")


def _same(a: Any, b: Any) -> bool:
    """JSON equality (``True`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": lambda v: parse_time(v) is not None,
    "date": _is_date,
    # URIs are only in responses; an absolute URI is all a client relies on.
    "uri": lambda v: re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", v) is not None,
}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Compiler:
    def __init__(self, components: Mapping[str, Any]) -> None:
        self._components = components
        self._compiled: dict[str, Check] = {}
        self._in_progress: set[str] = set()

    def ref(self, ref: str) -> Check:
        if not ref.startswith(_REF_PREFIX):
            raise ContractError(f"unsupported $ref {ref!r}")
        name = ref[len(_REF_PREFIX) :]
        if name in self._compiled:
            return self._compiled[name]
        if name in self._in_progress:
            raise ContractError(f"recursive schema {name!r} is not supported")
        if name not in self._components:
            raise ContractError(f"dangling $ref {ref!r}")
        self._in_progress.add(name)
        check = self.compile(self._components[name])
        self._in_progress.discard(name)
        self._compiled[name] = check
        return check

    def compile(self, schema: Mapping[str, Any]) -> Check:
        unknown = set(schema) - _ANNOTATIONS - set(_KEYWORDS)
        if unknown:
            raise ContractError(f"unsupported schema keywords: {', '.join(sorted(unknown))}")
        maybe = [_KEYWORDS[key](self, schema[key], schema) for key in _KEYWORDS if key in schema]
        checks = [c for c in maybe if c is not None]
        if len(checks) == 1:
            return checks[0]

        def check(value: Any, path: Path, found: Found) -> None:
            for one in checks:
                one(value, path, found)

        return check


def _type(_: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check:
    names = tuple(spec) if isinstance(spec, list) else (spec,)
    label = ", ".join(repr(n) for n in names)

    def check(value: Any, path: Path, found: Found) -> None:
        if not any(_is_type(value, n) for n in names):
            found.append(SchemaError(path, f"{_describe(value)} is not of type {label}", names))

    return check


def _enum(_: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check:
    allowed = list(spec)

    def check(value: Any, path: Path, found: Found) -> None:
        if not any(_same(value, a) for a in allowed):
            found.append(SchemaError(path, f"{_describe(value)} is not one of {allowed!r}"))

    return check


def _format(_: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check | None:
    test = _FORMATS.get(spec)
    if test is None:
        return None  # unknown formats only annotate, as in JSON Schema

    def check(value: Any, path: Path, found: Found) -> None:
        if isinstance(value, str) and not test(value):
            found.append(SchemaError(path, f"{_describe(value)} is not a {spec!r}"))

    return check


def _required(_: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check:
    names = tuple(spec)

    def check(value: Any, path: Path, found: Found) -> None:
        if isinstance(value, dict):
            for name in names:
                if name not in value:
                    found.append(SchemaError((*path, name), f"{name!r} is required"))

    return check


def _properties(compiler: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check:
    checks = {name: compiler.compile(sub) for name, sub in spec.items()}
    extra = schema.get("additionalProperties", True)
    closed = extra is False
    extra_check = compiler.compile(extra) if isinstance(extra, dict) else None

    def check(value: Any, path: Path, found: Found) -> None:
        if not isinstance(value, dict):
            return
        for name, item in value.items():
            sub = checks.get(name)
            if sub is not None:
                sub(item, (*path, name), found)
            elif closed:
                found.append(SchemaError((*path, name), f"{name!r} is not a valid field here"))
            elif extra_check is not None:
                extra_check(item, (*path, name), found)

    return check


def _additional(_: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check | None:
    if "properties" in schema:
        return None  # handled by _properties, which knows the declared names
    if spec is False:

        def check(value: Any, path: Path, found: Found) -> None:
            if isinstance(value, dict):
                for name in value:
                    found.append(SchemaError((*path, name), f"{name!r} is not a valid field here"))

        return check
    raise ContractError("additionalProperties without properties is not supported")


def _items(compiler: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check:
    item_check = compiler.compile(spec)

    def check(value: Any, path: Path, found: Found) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                item_check(item, (*path, index), found)

    return check


def _ref(compiler: _Compiler, spec: Any, schema: Mapping[str, Any]) -> Check:
    # Compiled depth-first and cached; cycles are refused, so this always terminates.
    return compiler.ref(spec)


def _branches(compiler: _Compiler, spec: Any, exactly_one: bool) -> Check:
    branches = [compiler.compile(sub) for sub in spec]
    keyword = "oneOf" if exactly_one else "anyOf"

    def check(value: Any, path: Path, found: Found) -> None:
        results: list[Found] = []
        for branch in branches:
            errors: Found = []
            branch(value, path, errors)
            results.append(errors)
        passing = sum(1 for errors in results if not errors)
        if passing == 1 or (passing > 1 and not exactly_one):
            return
        if passing > 1:
            message = f"{_describe(value)} is valid under more than one {keyword} branch"
            found.append(SchemaError(path, message))
            return
        found.extend(_explain(value, path, results))

    return check


def _explain(value: Any, path: Path, results: list[Found]) -> Found:
    """The errors of the branch the value was meant for, or one summary error.

    A branch that failed only because the value has another type was not meant (a string
    given where ``anyOf [object, null]`` is expected is a type error, nothing deeper). When
    exactly one branch failed for another reason, its (deeper) errors are the useful ones.
    """
    mismatched = [
        len(errors) == 1 and errors[0].path == path and bool(errors[0].types) for errors in results
    ]
    if all(mismatched):
        types = tuple(t for errors in results for t in errors[0].types)
        label = ", ".join(repr(t) for t in types)
        return [SchemaError(path, f"{_describe(value)} is not of type {label}", types)]
    meant = [errors for errors, skip in zip(results, mismatched, strict=True) if not skip]
    if len(meant) == 1:
        return meant[0]
    return [SchemaError(path, f"{_describe(value)} is not valid under any of the given schemas")]


_KEYWORDS: dict[str, Callable[[_Compiler, Any, Mapping[str, Any]], Check | None]] = {
    "$ref": _ref,
    "type": _type,
    "enum": _enum,
    "format": _format,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
    "anyOf": lambda c, spec, schema: _branches(c, spec, exactly_one=False),
    "oneOf": lambda c, spec, schema: _branches(c, spec, exactly_one=True),
}


class Validator:
    """One schema compiled against a set of components (``#/components/schemas/...``)."""

    def __init__(self, schema: Mapping[str, Any], components: Mapping[str, Any]) -> None:
        self._check = _Compiler(components).compile(schema)

    def errors(self, instance: Any) -> list[SchemaError]:
        """Every problem of ``instance``, in document order."""
        found: Found = []
        self._check(instance, (), found)
        return found


def compile_schema(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Validator:
    """Compile ``schema``; raises ContractError for keywords or refs this module lacks."""
    return Validator(schema, components)
