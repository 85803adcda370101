"""The record error policy: expected vs unexpected errors, the metric, the log, the breaker."""

from __future__ import annotations

import logging

import pytest

from consumer.decode import CorruptAvro
from consumer.kafka import ConsumedMessage
from consumer.observability import Metrics
from consumer.runtime.record_errors import INTERNAL_ERROR, ErrorBreakerOpen, RecordErrors

MESSAGE = ConsumedMessage("orders", 2, 41, b"k", b"v", (), 0)


def policy(metrics: Metrics, percent: float = 20.0, window: int = 10) -> RecordErrors:
    return RecordErrors("derive", "derive", (CorruptAvro,), percent, window, metrics)


def errors_counted(metrics: Metrics, error: str) -> float | None:
    return metrics.registry.get_sample_value(
        "klaviyo_consumer_record_errors_total", {"stage": "derive", "error": error}
    )


def test_an_expected_error_dead_letters_with_its_reason_and_is_not_counted() -> None:
    metrics = Metrics()
    failure = policy(metrics).failure(CorruptAvro("3 unexpected trailing bytes"), MESSAGE)
    assert (failure.reason, failure.error_class) == ("corrupt_avro", "CorruptAvro")
    assert failure.message == "3 unexpected trailing bytes"
    assert errors_counted(metrics, "CorruptAvro") is None


def test_an_unexpected_error_is_internal_counted_and_logged_once_per_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    errors = policy(metrics, percent=100)
    with caplog.at_level(logging.ERROR, logger="consumer.runtime.record_errors"):
        first = errors.failure(KeyError("shipments"), MESSAGE)
        errors.failure(KeyError("items"), MESSAGE)
        errors.failure(ZeroDivisionError("division by zero"), MESSAGE)
    assert (first.reason, first.error_class, first.message) == (
        INTERNAL_ERROR,
        "KeyError",
        "'shipments'",
    )
    assert errors_counted(metrics, "KeyError") == 2
    assert errors_counted(metrics, "ZeroDivisionError") == 1
    logged = [r for r in caplog.records if r.exc_info]
    assert [r.exc_info[0] for r in logged if r.exc_info] == [KeyError, ZeroDivisionError]
    assert getattr(logged[0], "offset", None) == 41


def test_the_breaker_trips_past_the_share_of_a_window_naming_the_setting() -> None:
    errors = policy(Metrics(), percent=20, window=10)
    for _ in range(7):
        errors.passed()
    errors.failure(RuntimeError("bug"), MESSAGE)
    errors.failure(RuntimeError("bug"), MESSAGE)  # 2 of 10 is not more than 20 %
    with pytest.raises(ErrorBreakerOpen, match=r"derive\.error_breaker_percent=20 %"):
        errors.failure(RuntimeError("bug"), MESSAGE)


def test_failures_spread_over_windows_do_not_trip_the_breaker() -> None:
    errors = policy(Metrics(), percent=20, window=10)
    for _ in range(5):  # two unexpected errors in each window of ten records
        for _ in range(8):
            errors.passed()
        errors.failure(RuntimeError("bug"), MESSAGE)
        errors.failure(RuntimeError("bug"), MESSAGE)


def test_expected_errors_never_trip_the_breaker() -> None:
    errors = policy(Metrics(), percent=1, window=10)
    for _ in range(50):
        errors.failure(CorruptAvro("bad"), MESSAGE)


def test_at_100_percent_the_breaker_never_trips() -> None:
    errors = policy(Metrics(), percent=100, window=5)
    for _ in range(50):
        errors.failure(RuntimeError("bug"), MESSAGE)
