"""Lag from librdkafka statistics documents (their shape as librdkafka writes them)."""

from __future__ import annotations

from typing import Any

import orjson

from consumer.kafka import ConsumedMessage, TopicPartitionOffset
from consumer.observability import LagMonitor, Metrics

NOW = 1_800_000_000.0


def partition(**fields: int | bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "desired": True,
        "lo_offset": 0,
        "ls_offset": 100,
        "next_offset": 100,
        "app_offset": 100,
        "committed_offset": 100,
    }
    return {**view, **fields}


def stats(topic: str, partitions: dict[int, dict[str, Any]]) -> str:
    views = {str(p): {"partition": p, **v} for p, v in partitions.items()}
    views["-1"] = {"partition": -1, "desired": False, "ls_offset": -1}  # librdkafka's UA partition
    return orjson.dumps({"type": "consumer", "topics": {topic: {"partitions": views}}}).decode()


def gauge(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(f"klaviyo_consumer_{name}", labels or None)


def record(topic: str, partition_: int, offset: int, at: float) -> ConsumedMessage:
    return ConsumedMessage(topic, partition_, offset, None, b"", (), int(at * 1000))


def monitor(backlog: str | None = None) -> tuple[LagMonitor, Metrics]:
    metrics = Metrics()
    return LagMonitor(metrics, "g", backlog_topic=backlog, clock=lambda: NOW), metrics


def test_lag_is_last_stable_offset_minus_committed_summed_over_partitions() -> None:
    lag, metrics = monitor()
    lag.read([record("orders", 0, 59, NOW - 30), record("orders", 1, 99, NOW - 5)])
    lag.on_stats(
        stats(
            "orders",
            {
                0: partition(committed_offset=40, app_offset=60, next_offset=100),
                1: partition(committed_offset=90),  # read to the end, not all committed
                2: partition(desired=False, committed_offset=0),  # not ours
            },
        )
    )
    assert gauge(metrics, "lag_records", group="g", topic="orders") == 60 + 10
    assert gauge(metrics, "lag_seconds", group="g", topic="orders") == 30.0


def test_commits_reported_by_the_stage_count_over_librdkafkas_stale_view() -> None:
    lag, metrics = monitor()
    # A transaction committed offset 100 for the group; the consumer still knows 10.
    lag.committed([TopicPartitionOffset("orders", 0, 100)])
    lag.on_stats(stats("orders", {0: partition(committed_offset=10, ls_offset=120)}))
    assert gauge(metrics, "lag_records", group="g", topic="orders") == 20


def test_a_trailing_commit_marker_is_not_lag() -> None:
    lag, metrics = monitor(backlog="outbox")
    lag.read([record("outbox", 0, 98, NOW - 600)])
    # Last record at 98, its transaction's marker at 99 (skipped: app_offset is past it).
    lag.on_stats(stats("outbox", {0: partition(committed_offset=99)}))
    assert gauge(metrics, "lag_records", group="g", topic="outbox") == 0
    assert gauge(metrics, "lag_seconds", group="g", topic="outbox") == 0
    assert gauge(metrics, "outbox_backlog_records") == 0


def test_a_group_without_commits_lags_from_the_log_start() -> None:
    lag, metrics = monitor(backlog="outbox")
    lag.on_stats(
        stats(
            "outbox",
            {0: partition(committed_offset=-1001, app_offset=-1001, next_offset=5, lo_offset=5)},
        )
    )
    assert gauge(metrics, "lag_records", group="g", topic="outbox") == 95
    assert gauge(metrics, "outbox_backlog_records") == 95


def test_an_unreadable_document_changes_nothing() -> None:
    lag, metrics = monitor()
    lag.on_stats("{not json")
    assert gauge(metrics, "lag_records", group="g", topic="orders") is None
