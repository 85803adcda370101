"""One error policy for a record, in both stages.

Like Kafka Streams' deserialization and processing exception handlers (or Kafka Connect's
``errors.tolerance=all``), an exception while decoding, deriving, encoding or building the
request for one record dead-letters that record and the stage goes on; the record's offset
commits with the rest. A stage calls ``failure`` for such an exception and ``passed`` for
every other record, so each record is counted once.

- *Expected* errors are the stage's own record errors (``expected``): the record breaks a
  contract, and its ``reason`` says how.
- Anything else is *unexpected*: a bug meeting odd data. The record is dead-lettered with the
  reason ``internal_error`` (the one a deliver lane parks with on a bug), the exception's class
  and message; the first one of each class is logged with its traceback (the rest carry their
  coordinates in the dead-letter headers), and each is counted in
  ``klaviyo_consumer_record_errors_total{stage,error}``.
- The breaker: when more than ``percent`` % of a window of ``window`` consecutive records fail
  unexpectedly, ``failure`` raises ``ErrorBreakerOpen`` and the stage stops (and with it the
  process). A bug should page someone, not dead-letter the whole stream; derive's open
  transaction is aborted, so its dead letters of that window are not even written.
"""

from __future__ import annotations

import logging

from consumer.deliver.sender import INTERNAL_ERROR
from consumer.errors import ConsumerError
from consumer.kafka import ConsumedMessage
from consumer.observability import Metrics
from consumer.runtime.dead_letter import FailedRecord

__all__ = ["INTERNAL_ERROR", "ErrorBreakerOpen", "OutputTooLarge", "RecordErrors"]

log = logging.getLogger(__name__)


class ErrorBreakerOpen(ConsumerError):
    """Too many records failed unexpectedly in one window: the stage stops."""


class OutputTooLarge(ConsumerError):
    """A record made from this one would not fit under ``kafka.max_message_bytes``."""

    reason = "output_too_large"


class RecordErrors:
    """Classifies one stage's record failures, counts them and trips the breaker.

    Args:
        stage: ``derive`` or ``deliver`` (metric label, log field).
        section: the settings section holding the breaker's settings.
        expected: the stage's record errors; each has a string ``reason``.
        percent: breaker threshold (100 = never trips).
        window: records per breaker window.
        metrics: where ``record_errors`` is counted.
    """

    def __init__(
        self,
        stage: str,
        section: str,
        expected: tuple[type[ConsumerError], ...],
        percent: float,
        window: int,
        metrics: Metrics,
    ) -> None:
        self._stage = stage
        self._setting = f"{section}.error_breaker_percent"
        self._expected = expected
        self._percent = percent
        self._window = window
        self._limit = window * percent / 100
        self._metrics = metrics
        self._seen = 0
        self._failed = 0
        self._logged: set[str] = set()

    def passed(self) -> None:
        """One record done without an unexpected error."""
        self._count()

    def failure(self, error: Exception, source: ConsumedMessage) -> FailedRecord:
        """What to dead-letter ``source`` with, after ``error`` stopped its processing.

        Raises:
            ErrorBreakerOpen: this unexpected error took the window past the threshold.
        """
        reason = getattr(error, "reason", None)
        if isinstance(error, self._expected) and isinstance(reason, str):
            self._count()
            return FailedRecord(reason, type(error).__name__, str(error))
        name = type(error).__name__
        self._metrics.record_errors.labels(self._stage, name).inc()
        if name not in self._logged:
            self._logged.add(name)
            log.error(
                "unexpected error on one record; it is dead-lettered",
                exc_info=error,
                extra={
                    "stage": self._stage,
                    "error": name,
                    "topic": source.topic,
                    "partition": source.partition,
                    "offset": source.offset,
                },
            )
        self._failed += 1
        if self._failed > self._limit:
            raise ErrorBreakerOpen(
                f"{self._stage}: {self._failed} of the last {self._seen + 1} records failed "
                f"with unexpected errors, more than {self._setting}="
                f"{self._percent:g} % of a window of {self._window}; stopping the stage "
                f"(the first {name} was logged with its traceback)"
            ) from error
        self._count()
        return FailedRecord(INTERNAL_ERROR, name, str(error) or name)

    def _count(self) -> None:
        self._seen += 1
        if self._seen >= self._window:
            self._seen = self._failed = 0
