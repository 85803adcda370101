"""A small Confluent-compatible Schema Registry for local runs and tests.

Serves the part of Confluent's REST API that producers, this service and people poking at it
use, with Confluent's status codes and ``error_code`` values:

| Method | Path | Does |
|---|---|---|
| POST | /subjects/{subject}/versions | register ``{"schema": "<Avro JSON>"}``; ``{"id"}`` |
| GET | /schemas/ids/{id} | ``{"schema"}`` (what the service fetches for magic byte 0) |
| GET | /subjects | subject names |
| GET | /subjects/{subject}/versions | version numbers |
| GET | /subjects/{subject}/versions/{n or latest} | ``{"subject", "version", "id", "schema"}`` |

Ids are assigned in registration order and never change, as in the real registry; the same
schema text under another subject keeps its id. State lives in memory (``dev up`` registers
the shipped schemas again at every start). Compatibility checks are not modelled.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from fastavro import parse_schema
from fastavro.schema import SchemaParseException

from consumer.devstack.publish import topic_of
from consumer.devstack.traffic import Subject
from consumer.paths import schemas_dir
from consumer.settings import Settings

__all__ = [
    "DEFAULT_REGISTRY_PORT",
    "DEFAULT_REGISTRY_URL",
    "LocalSchemaRegistry",
    "register_catalog",
    "register_inputs",
]

DEFAULT_REGISTRY_PORT = 8081
"""Confluent's default port, so tools pointed at ``localhost:8081`` find it."""
DEFAULT_REGISTRY_URL = f"http://127.0.0.1:{DEFAULT_REGISTRY_PORT}"
"""Where ``dev registry`` and ``dev up`` serve it, and where ``dev produce`` looks by default."""
_MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


def _reply(document: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(document), content_type=_MEDIA_TYPE)


def _error(status: int, error_code: int, message: str) -> web.Response:
    return _reply({"error_code": error_code, "message": message}, status)


class LocalSchemaRegistry:
    """In-memory registry; ``run()`` serves it over HTTP."""

    def __init__(self) -> None:
        self._schemas: list[str] = []  # id = index + 1
        self._subjects: dict[str, list[int]] = {}  # subject → schema id per version
        self.url = ""
        self.lookups = 0
        """Schemas served by id: how often a consumer decoded through this registry."""

    def register(self, subject: str, schema: Any) -> int:
        """Register ``schema`` (dict or JSON text) under ``subject``; returns its id.

        Raises:
            ValueError: the text is not an Avro schema.
        """
        try:
            document = orjson.loads(schema) if isinstance(schema, str) else schema
            parse_schema(document)
        except (ValueError, SchemaParseException, TypeError, KeyError) as exc:
            raise ValueError(f"not an Avro schema: {exc!r}") from None
        # One text per schema however it was spelt, so re-registering finds the same id.
        text = orjson.dumps(document).decode()
        if text in self._schemas:
            schema_id = self._schemas.index(text) + 1
        else:
            self._schemas.append(text)
            schema_id = len(self._schemas)
        versions = self._subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def subjects(self) -> list[str]:
        """Registered subject names, sorted."""
        return sorted(self._subjects)

    # -- HTTP ------------------------------------------------------------------------------

    async def _get_by_id(self, request: web.Request) -> web.Response:
        schema_id = int(request.match_info["schema_id"])
        if not 1 <= schema_id <= len(self._schemas):
            return _error(404, 40403, "Schema not found")
        self.lookups += 1
        return _reply({"schema": self._schemas[schema_id - 1]})

    async def _register(self, request: web.Request) -> web.Response:
        try:
            document = orjson.loads(await request.read())
            schema_id = self.register(request.match_info["subject"], document["schema"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error(422, 422, 'Unprocessable entity: expected {"schema": "..."}')
        except ValueError as exc:
            return _error(422, 42201, f"Invalid schema: {exc}")
        return _reply({"id": schema_id})

    async def _list_subjects(self, request: web.Request) -> web.Response:
        return _reply(self.subjects())

    async def _versions(self, request: web.Request) -> web.Response:
        versions = self._subjects.get(request.match_info["subject"])
        if versions is None:
            return _error(404, 40401, "Subject not found.")
        return _reply(list(range(1, len(versions) + 1)))

    async def _version(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        versions = self._subjects.get(subject)
        if versions is None:
            return _error(404, 40401, "Subject not found.")
        wanted = request.match_info["version"]
        number = len(versions) if wanted == "latest" else int(wanted) if wanted.isdigit() else 0
        if not 1 <= number <= len(versions):
            return _error(404, 40402, "Version not found.")
        schema_id = versions[number - 1]
        return _reply(
            {
                "subject": subject,
                "version": number,
                "id": schema_id,
                "schema": self._schemas[schema_id - 1],
            }
        )

    @asynccontextmanager
    async def run(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the context exits; yields the base URL."""
        app = web.Application()
        app.router.add_get("/schemas/ids/{schema_id:\\d+}", self._get_by_id)
        app.router.add_get("/subjects", self._list_subjects)
        app.router.add_post("/subjects/{subject}/versions", self._register)
        app.router.add_get("/subjects/{subject}/versions", self._versions)
        app.router.add_get("/subjects/{subject}/versions/{version}", self._version)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # Bind first so port 0 yields a known free port.
        sock = socket.create_server((host, port))
        await web.SockSite(runner, sock).start()
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        try:
            yield self.url
        finally:
            await runner.cleanup()


def register_catalog(
    registry: LocalSchemaRegistry, schemas_root: Path, subjects: Iterable[tuple[str, str]]
) -> dict[str, list[int]]:
    """Register every shipped version of each ``(contract, registry subject)``, oldest first.

    ``schemas_root`` holds ``<contract>/v<N>.avsc``; returns the ids per registry subject.
    """
    ids: dict[str, list[int]] = {}
    for contract, subject in subjects:
        paths = sorted((schemas_root / contract).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
        ids[subject] = [registry.register(subject, path.read_text()) for path in paths]
    return ids


def register_inputs(registry: LocalSchemaRegistry, settings: Settings) -> dict[str, list[int]]:
    """Register the shipped input schemas under ``<topic>-value`` (Confluent's default
    TopicNameStrategy) for the configured input topics; returns the ids per subject."""
    contracts: tuple[Subject, ...] = ("returns", "orders", "storefront-events")
    subjects = [(contract, f"{topic_of(settings, contract)}-value") for contract in contracts]
    return register_catalog(registry, schemas_dir(), subjects)
