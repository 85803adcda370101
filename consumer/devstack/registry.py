"""A minimal Confluent-compatible Schema Registry for local runs and tests.

Serves the two calls that producers and this service make: register a schema under a subject
(``POST /subjects/{subject}/versions``) and fetch a schema by id (``GET /schemas/ids/{id}``).
Ids are assigned in registration order and never change, as in the real registry.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

__all__ = ["LocalSchemaRegistry"]


class LocalSchemaRegistry:
    """In-memory registry; ``run()`` serves it over HTTP on loopback."""

    def __init__(self) -> None:
        self._schemas: list[str] = []  # id = index + 1
        self._subjects: dict[str, list[int]] = {}
        self.url = ""

    def register(self, subject: str, schema: Any) -> int:
        """Register ``schema`` (dict or JSON text) under ``subject``; returns its id."""
        text = schema if isinstance(schema, str) else orjson.dumps(schema).decode()
        if text in self._schemas:
            schema_id = self._schemas.index(text) + 1
        else:
            self._schemas.append(text)
            schema_id = len(self._schemas)
        versions = self._subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    async def _get_by_id(self, request: web.Request) -> web.Response:
        schema_id = int(request.match_info["schema_id"])
        if not 1 <= schema_id <= len(self._schemas):
            body = {"error_code": 40403, "message": "Schema not found"}
            return web.json_response(body, status=404)
        return web.json_response({"schema": self._schemas[schema_id - 1]})

    async def _register(self, request: web.Request) -> web.Response:
        document = orjson.loads(await request.read())
        schema_id = self.register(request.match_info["subject"], document["schema"])
        return web.json_response({"id": schema_id})

    @asynccontextmanager
    async def run(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve until the context exits; yields the base URL."""
        app = web.Application()
        app.router.add_get("/schemas/ids/{schema_id:\\d+}", self._get_by_id)
        app.router.add_post("/subjects/{subject}/versions", self._register)
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
