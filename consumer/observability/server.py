"""HTTP endpoints for Kubernetes and Prometheus: metrics, health, readiness, debug."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from consumer.errors import ConfigError
from consumer.observability.health import Health
from consumer.observability.metrics import Metrics
from consumer.settings import setting_name

__all__ = ["serve"]


def _app(metrics: Metrics, health: Health, debug: Callable[[], Any]) -> web.Application:
    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        live, loops = health.live()
        return web.json_response(
            {"live": live, "loop_age_seconds": loops}, status=200 if live else 503
        )

    async def readyz(_: web.Request) -> web.Response:
        ready, components = health.ready()
        return web.json_response(
            {"ready": ready, "components": components}, status=200 if ready else 503
        )

    async def debug_merchants(_: web.Request) -> web.Response:
        return web.json_response(debug())

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/debug/merchants", debug_merchants)
    return app


@asynccontextmanager
async def serve(
    host: str, port: int, metrics: Metrics, health: Health, debug: Callable[[], Any]
) -> AsyncIterator[str]:
    """Serve the endpoints until the context exits; yields the base URL (port 0 = any)."""
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as exc:  # port taken, address not on this host, no permission
        name = setting_name("http", "port")
        raise ConfigError(f"{name}: cannot listen on {host}:{port}: {exc.strerror}") from None
    runner = web.AppRunner(_app(metrics, health, debug), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    bound = sock.getsockname()
    try:
        yield f"http://{bound[0]}:{bound[1]}"
    finally:
        await runner.cleanup()
