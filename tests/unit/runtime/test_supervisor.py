"""``supervise``: which failures rebuild a stage in place, and which end the process."""

from __future__ import annotations

import asyncio

import pytest

from consumer.kafka import FatalKafkaError, KafkaError, RetriableKafkaError, UnknownTopicError
from consumer.observability import Metrics
from consumer.runtime.supervisor import supervise


class FlakyStage:
    """Fails with the given errors, one per run, then runs to completion."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.runs = 0
        self.failed = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.errors:
            self.failed.set()
            raise self.errors.pop(0)


def restarts(metrics: Metrics, stage: str, error: str) -> float:
    value = metrics.registry.get_sample_value(
        "klaviyo_consumer_stage_restarts_total", {"stage": stage, "error": error}
    )
    return value or 0.0


async def test_fatal_and_retriable_kafka_errors_rebuild_the_stage() -> None:
    metrics = Metrics()
    stage = FlakyStage(
        FatalKafkaError("fenced", name="FENCED_INSTANCE_ID"),
        RetriableKafkaError("send_offsets timed out", name="_TIMED_OUT"),
    )
    await supervise("derive", stage.run, asyncio.Event(), metrics, first_delay=0.01)
    assert stage.runs == 3
    assert restarts(metrics, "derive", "FENCED_INSTANCE_ID") == 1
    assert restarts(metrics, "derive", "_TIMED_OUT") == 1


@pytest.mark.parametrize(
    "error",
    [UnknownTopicError("no such topic"), KafkaError("bad config"), ValueError("a bug")],
    ids=["unknown-topic", "permanent", "not-kafka"],
)
async def test_errors_new_clients_cannot_cure_end_the_service(error: Exception) -> None:
    stage = FlakyStage(error)
    with pytest.raises(type(error)):
        await supervise("deliver", stage.run, asyncio.Event(), Metrics(), first_delay=0.01)
    assert stage.runs == 1


async def test_a_stop_during_the_back_off_ends_without_another_run() -> None:
    stop = asyncio.Event()
    metrics = Metrics()
    stage = FlakyStage(FatalKafkaError("fenced", name="FENCED"))
    supervising = asyncio.create_task(supervise("deliver", stage.run, stop, metrics, 60.0))
    async with asyncio.timeout(5):
        await stage.failed.wait()  # the supervisor now waits out its 60 s back-off
    stop.set()
    async with asyncio.timeout(5):
        await supervising
    assert stage.runs == 1
    assert restarts(metrics, "deliver", "FENCED") == 1


async def test_a_failure_after_stop_is_raised_not_retried() -> None:
    stop = asyncio.Event()
    stop.set()
    stage = FlakyStage(FatalKafkaError("fenced while closing"))
    with pytest.raises(FatalKafkaError):
        await supervise("derive", stage.run, stop, Metrics(), first_delay=0.01)
    assert stage.runs == 1


async def test_a_stage_that_keeps_failing_ends_the_service_for_the_orchestrator() -> None:
    metrics = Metrics()
    fenced = [FatalKafkaError("fenced", name="FENCED_INSTANCE_ID") for _ in range(4)]
    stage = FlakyStage(*fenced)
    with pytest.raises(FatalKafkaError):
        await supervise("derive", stage.run, asyncio.Event(), metrics, 0.01, max_failures=3)
    assert stage.runs == 3
    assert restarts(metrics, "derive", "FENCED_INSTANCE_ID") == 2
