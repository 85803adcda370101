"""Prometheus metrics of one process: base units, ``_total`` counters, bounded labels.

Labels never carry a merchant, order or offset (unbounded cardinality); per-merchant detail is
on the ``/debug/merchants`` endpoint instead. Each process (and each in-process test runtime)
owns its own registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_NS = "klaviyo_consumer"


class Metrics:
    """Every metric the service exports, registered on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records_consumed = Counter(
            "records_consumed", "Input records consumed, by topic role.", ["stage", "topic"],
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
        self.parked_operations = Counter(
            "parked_operations", "Operations written to the parked topic.", ["reason"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.transactions = Counter(
            "transactions", "Derive-stage Kafka transactions.", ["outcome"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.checkpoint_duration = Histogram(
            "checkpoint_duration_seconds", "Time to commit one derive checkpoint.",
            namespace=_NS, registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.klaviyo_requests = Counter(
            "klaviyo_requests", "Requests to Klaviyo, by HTTP status (0 = no answer).",
            ["status"], namespace=_NS, registry=r,
        )  # fmt: skip
        self.klaviyo_request_duration = Histogram(
            "klaviyo_request_duration_seconds", "Klaviyo request latency.", ["endpoint"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.operations_delivered = Counter(
            "operations_delivered", "Final outcome of each outbox operation.", ["outcome"],
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.operations_in_flight = Gauge(
            "operations_in_flight", "Outbox operations submitted and not yet finished.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.merchants_parked = Gauge(
            "merchants_parked", "Merchants whose operations are being parked now.",
            namespace=_NS, registry=r,
        )  # fmt: skip
        self.stage_restarts = Counter(
            "stage_restarts", "Stages rebuilt in place after a Kafka client failed, by error.",
            ["stage", "error"], namespace=_NS, registry=r,
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
        self.consume_loop_last_turn = Gauge(
            "consume_loop_last_turn_timestamp_seconds", "When each consume loop last turned.",
            ["stage"], namespace=_NS, registry=r,
        )  # fmt: skip

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
