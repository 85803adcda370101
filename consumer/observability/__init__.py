"""Logs, metrics, health and the HTTP server that exposes them."""

from consumer.observability.health import Health
from consumer.observability.logs import JsonFormatter, configure_logging, scrub
from consumer.observability.metrics import Metrics
from consumer.observability.server import serve

__all__ = ["Health", "JsonFormatter", "Metrics", "configure_logging", "scrub", "serve"]
