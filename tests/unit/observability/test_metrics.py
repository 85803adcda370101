"""Metric helpers and the correlation fields of log lines."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from consumer.observability import JsonFormatter, Metrics, bind_log_context
from consumer.observability.metrics import status_class


@pytest.mark.parametrize(
    ("status", "cls"), [(202, "2xx"), (429, "4xx"), (503, "5xx"), (0, "none"), (999, "none")]
)
def test_status_class(status: int, cls: str) -> None:
    assert status_class(status) == cls


def test_a_klaviyo_request_counts_its_class_latency_size_and_429() -> None:
    metrics = Metrics()
    metrics.klaviyo_request("bulk_create_events", 429, 0.2, 7)
    value = metrics.registry.get_sample_value
    labels = {"endpoint": "bulk_create_events"}
    assert value("klaviyo_consumer_klaviyo_requests_total", {**labels, "status_class": "4xx"}) == 1
    assert value("klaviyo_consumer_klaviyo_throttled_total", labels) == 1
    assert value("klaviyo_consumer_klaviyo_request_duration_seconds_sum", labels) == 0.2
    assert value("klaviyo_consumer_klaviyo_events_per_request_sum", labels) == 7
    # Label sets known up front exist at zero before anything happens.
    assert value("klaviyo_consumer_klaviyo_requests_total", {**labels, "status_class": "5xx"}) == 0


def test_build_info_names_the_version() -> None:
    text = Metrics().exposition().decode()
    assert 'klaviyo_consumer_build_info{python="' in text and 'version="' in text


def line(message: str, **extra: str) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    doc: dict[str, object] = orjson.loads(JsonFormatter().format(record))
    return doc


async def test_bound_fields_reach_lines_of_the_task_and_its_threads_only() -> None:
    async def stage() -> tuple[dict[str, object], dict[str, object]]:
        bind_log_context(stage="derive")
        return line("here"), await asyncio.to_thread(line, "in a thread")

    here, threaded = await asyncio.create_task(stage())
    assert here["stage"] == threaded["stage"] == "derive"
    assert "stage" not in line("outside the task")
    assert line("own field wins", stage="deliver")["stage"] == "deliver"


def test_key_shaped_text_is_scrubbed_from_fields() -> None:
    assert "pk_abcdef123456" not in orjson.dumps(line("x", detail="key pk_abcdef123456")).decode()
