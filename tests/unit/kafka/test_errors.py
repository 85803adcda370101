"""wrap() turns librdkafka errors into KafkaError subclasses carrying the policy."""

from __future__ import annotations

import confluent_kafka
import pytest

from consumer.errors import ConsumerError
from consumer.kafka import (
    AbortableKafkaError,
    FatalKafkaError,
    KafkaError,
    RetriableKafkaError,
    UnknownTopicError,
    wrap,
)

Codes = confluent_kafka.KafkaError


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Codes(Codes.PRODUCER_FENCED, "fenced", fatal=True), FatalKafkaError),
        (Codes(Codes.FENCED_INSTANCE_ID, "static member fenced"), FatalKafkaError),
        (Codes(Codes._FATAL, "client failed"), FatalKafkaError),
        (
            Codes(Codes.INVALID_TXN_STATE, "bad", fatal=True, txn_requires_abort=True),
            FatalKafkaError,
        ),
        (Codes(Codes.INVALID_TXN_STATE, "abort me", txn_requires_abort=True), AbortableKafkaError),
        (Codes(Codes.NOT_COORDINATOR, "moved", retriable=True), RetriableKafkaError),
        (Codes(Codes.COORDINATOR_LOAD_IN_PROGRESS, "loading"), RetriableKafkaError),
        # An outage or a failover, as a commit or a fetch sees it: never the end of a stage.
        (Codes(Codes._WAIT_COORD, "waiting for coordinator"), RetriableKafkaError),
        (Codes(Codes._TRANSPORT, "connection refused"), RetriableKafkaError),
        (Codes(Codes.COORDINATOR_NOT_AVAILABLE, "coordinator gone"), RetriableKafkaError),
        (Codes(Codes.ILLEGAL_GENERATION, "generation moved on"), RetriableKafkaError),
        (Codes(Codes.UNKNOWN_MEMBER_ID, "session expired"), RetriableKafkaError),
        (Codes(Codes._ASSIGNMENT_LOST, "assignment lost"), RetriableKafkaError),
        (Codes(Codes.NOT_LEADER_FOR_PARTITION, "leader moved"), RetriableKafkaError),
        (Codes(Codes._DESTROY_BROKER, "node left the cluster"), RetriableKafkaError),
        (Codes(Codes._MSG_TIMED_OUT, "delivery timed out"), RetriableKafkaError),
        (Codes(Codes.UNKNOWN_TOPIC_OR_PART, "no topic"), UnknownTopicError),
        (Codes(Codes.INVALID_CONFIG, "bad config"), KafkaError),
    ],
)
def test_wrap_maps_flags_to_class(error: confluent_kafka.KafkaError, expected: type) -> None:
    wrapped = wrap(confluent_kafka.KafkaException(error), "commit_transaction")

    assert type(wrapped) is expected
    assert isinstance(wrapped, ConsumerError)
    assert wrapped.code == error.code()
    assert str(wrapped).startswith("commit_transaction: ")


def test_policy_flags_live_on_the_class() -> None:
    assert RetriableKafkaError.retriable and not RetriableKafkaError.fatal
    assert AbortableKafkaError.abortable and not AbortableKafkaError.retriable
    assert FatalKafkaError.fatal and not FatalKafkaError.abortable
    assert not (KafkaError.retriable or KafkaError.abortable or KafkaError.fatal)


def test_wrap_accepts_bare_error_and_foreign_exception() -> None:
    assert isinstance(wrap(Codes(Codes.REQUEST_TIMED_OUT)), RetriableKafkaError)
    assert type(wrap(confluent_kafka.KafkaException("just text"))) is KafkaError
