"""Prometheus metrics of one process: base units, ``_total`` counters, bounded labels.

Labels never carry a merchant, order or offset (unbounded cardinality); per-merchant detail is
on the ``/debug/merchants`` endpoint instead. ``topic`` and ``group`` are the configured
names (a handful per deployment); ``endpoint`` is a Klaviyo operation id; no partition label.
Label sets known up front are created at zero, so rates and ratios exist before the first
event. Each process (and each in-process test runtime) owns its own registry.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from consumer import __version__
from consumer.klaviyo.contract import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES

__all__ = ["STATUS_CLASSES", "Metrics", "status_class"]

_NS = "klaviyo_consumer"
ENDPOINTS = (BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES)
STAGES = ("derive", "deliver")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "none")
"""HTTP status classes of Klaviyo answers; ``none`` = no answer (refused, reset, timed out)."""
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_EVENTS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)


def status_class(status: int) -> str:
    """``2xx`` … ``5xx`` for an HTTP status, ``none`` for 0 (no answer)."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "none"


class Metrics:
    """Every metric the service exports, registered on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        for runtime in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(runtime)  # process_*, python_*: stateless, safe to share
        Info("build", "Version of this process.", namespace=_NS, registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )

        # -- input, derivation and outcomes ------------------------------------------------
        self.records_consumed = Counter(
            "records_consumed", "Records consumed, by stage and topic.", ["stage", "topic"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.operations_derived = Counter(
            "operations_derived", "Klaviyo operations written to the outbox.", ["kind", "metric"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.records_skipped = Counter(
            "records_skipped", "Records or operations skipped on purpose, by reason.", ["reason"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "dead_letters", "Records written to the dead-letter topic.", ["stage", "reason"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.record_errors = Counter(
            "record_errors", "Records dead-lettered after an unexpected error (a bug).",
            ["stage", "error"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.parked_operations = Counter(
            "parked_operations", "Operations written to the parked topic.", ["reason"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.operations_delivered = Counter(
            "operations_delivered", "Final outcome of each outbox operation.", ["outcome"],
            namespace=_NS, registry=r,
        )  # fmt: skip

        # -- Kafka: lag, transactions, rebalances, state ------------------------------------
        self.lag_records = Gauge(
            "lag_records", "Records not yet committed by the group (high watermark - committed).",
            ["group", "topic"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.lag_seconds = Gauge(
            "lag_seconds", "Age of the last record read from a partition with records left "
            "unread; 0 when caught up. Max over the topic's partitions.",
            ["group", "topic"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.outbox_backlog = Gauge(
            "outbox_backlog_records", "Outbox records the deliver stage has not committed yet.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.transactions = Counter(
            "transactions", "Derive-stage Kafka transactions.", ["outcome"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.checkpoint_duration = Histogram(
            "checkpoint_duration_seconds", "Time to commit one derive checkpoint (transaction).",
            namespace=_NS, registry=r, buckets=_SECONDS,
        )  # fmt: skip
        self.rebalances = Counter(
            "rebalances", "Rebalance callbacks, by stage and kind (assign, revoke, lost).",
            ["stage", "kind"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.partitions_assigned = Gauge(
            "partitions_assigned", "Partitions this process owns.", ["stage"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.state_entries = Gauge(
            "state_entries", "Orders in the tracking state, by changelog partition.",
            ["partition"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.state_bytes = Gauge(
            "state_bytes", "Encoded size of the tracking state, by changelog partition.",
            ["partition"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.state_restoring = Gauge(
            "state_restoring_partitions", "Partitions whose state is being restored.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.state_restore_duration = Histogram(
            "state_restore_duration_seconds", "Time to restore tracking state on an assignment.",
            namespace=_NS, registry=r, buckets=_SECONDS,
        )  # fmt: skip
        self.state_restored_entries = Counter(
            "state_restored_entries", "Tracking-state entries read back from the changelog.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.state_snapshots = Counter(
            "state_snapshots",
            "Local state snapshots by event: written, write_failed, loaded, rejected (invalid).",
            ["event"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.consume_loop_last_turn = Gauge(
            "consume_loop_last_turn_timestamp_seconds",
            "When each consume loop last completed a poll (successfully).",
            ["stage"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.stage_restarts = Counter(
            "stage_restarts", "Stages rebuilt in place after a Kafka client failed, by error.",
            ["stage", "error"], namespace=_NS, registry=r,
        )  # fmt: skip

        # -- Klaviyo --------------------------------------------------------------------------
        self.klaviyo_requests = Counter(
            "klaviyo_requests", "Requests to Klaviyo, by endpoint and status class.",
            ["endpoint", "status_class"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.klaviyo_request_duration = Histogram(
            "klaviyo_request_duration_seconds", "Klaviyo request latency.", ["endpoint"],
            namespace=_NS, registry=r, buckets=_SECONDS,
        )  # fmt: skip
        self.klaviyo_events_per_request = Histogram(
            "klaviyo_events_per_request", "Operations (events or profiles) in one request.",
            ["endpoint"], namespace=_NS, registry=r, buckets=_EVENTS,
        )  # fmt: skip
        self.klaviyo_throttled = Counter(
            "klaviyo_throttled", "Klaviyo answers 429 (rate limited).", ["endpoint"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.klaviyo_retries = Counter(
            "klaviyo_retries", "Requests sent again after a transient failure.", ["endpoint"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.klaviyo_rate_limit_wait = Counter(
            "klaviyo_rate_limit_wait_seconds", "Time lanes waited for the rate limiter.",
            ["endpoint"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.operations_in_flight = Gauge(
            "operations_in_flight", "Outbox operations submitted and not yet finished.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.operations_dropped = Counter(
            "operations_dropped",
            "Unfinished outbox operations given up with their partition (revoked or lost); "
            "the partition's next owner sends them again.",
            ["cause"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.merchants_parked = Gauge(
            "merchants_parked", "Merchants whose operations are being parked now.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.integrations_reader_up = Gauge(
            "integrations_reader_up",
            "1 while the integrations table follows its topic; 0 = settings may be stale.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.integrations_reader_failures = Counter(
            "integrations_reader_failures", "Deaths of the integrations table's reader, by error.",
            ["error"], namespace=_NS, registry=r,
        )  # fmt: skip
        self._initialise()

    def _initialise(self) -> None:
        for stage in STAGES:
            self.partitions_assigned.labels(stage)
        for outcome in ("committed", "aborted"):
            self.transactions.labels(outcome)
        for cause in ("revoked", "lost"):
            self.operations_dropped.labels(cause)
        for endpoint in ENDPOINTS:
            for cls in STATUS_CLASSES:
                self.klaviyo_requests.labels(endpoint, cls)
            for family in (
                self.klaviyo_request_duration,
                self.klaviyo_events_per_request,
                self.klaviyo_throttled,
                self.klaviyo_retries,
                self.klaviyo_rate_limit_wait,
            ):
                family.labels(endpoint)

    def klaviyo_request(self, endpoint: str, status: int, seconds: float, events: int) -> None:
        """Count one Klaviyo request and its answer (``status`` 0 = no answer)."""
        self.klaviyo_requests.labels(endpoint, status_class(status)).inc()
        self.klaviyo_request_duration.labels(endpoint).observe(seconds)
        self.klaviyo_events_per_request.labels(endpoint).observe(events)
        if status == 429:
            self.klaviyo_throttled.labels(endpoint).inc()

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
