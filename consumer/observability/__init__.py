"""Logs, metrics, health and the HTTP server that exposes them."""

from consumer.observability.health import Health
from consumer.observability.lag import LagMonitor
from consumer.observability.logs import JsonFormatter, bind_log_context, configure_logging, scrub
from consumer.observability.metrics import Metrics
from consumer.observability.server import serve

__all__ = [
    "Health",
    "JsonFormatter",
    "LagMonitor",
    "Metrics",
    "bind_log_context",
    "configure_logging",
    "scrub",
    "serve",
]
