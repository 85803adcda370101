"""Errors raised by the Kafka facade, with the policy a loop needs on the class.

Ask the error, not a status table:

- ``retriable``: the same call may succeed later (timeouts, the broker or the group
  coordinator unreachable or moving, a rebalance).
- ``abortable``: the current transaction is doomed; abort it and redo the work.
- ``fatal``: this client instance is unusable (for example a fenced transactional producer);
  close it and build a new one.

An error with none of the three flags is permanent for that call (bad configuration, an
unknown topic, a topic whose layout does not match what this service expects).
"""

from __future__ import annotations

from typing import ClassVar, Final

import confluent_kafka

from consumer.errors import ConsumerError

__all__ = [
    "AbortableKafkaError",
    "FatalKafkaError",
    "KafkaError",
    "RetriableKafkaError",
    "TopicMismatchError",
    "UnknownTopicError",
    "wrap",
]


class KafkaError(ConsumerError):
    """Root of the Kafka facade's errors; ``code``/``name`` are librdkafka's when known."""

    retriable: ClassVar[bool] = False
    abortable: ClassVar[bool] = False
    fatal: ClassVar[bool] = False

    def __init__(self, message: str, *, code: int | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class RetriableKafkaError(KafkaError):
    """The call failed for now; retrying the same call may succeed."""

    retriable = True


class AbortableKafkaError(KafkaError):
    """The current transaction cannot commit: abort it, then redo its work."""

    abortable = True


class FatalKafkaError(KafkaError):
    """The client is unusable (fenced, invalid state): close it and create a new one."""

    fatal = True


class TopicMismatchError(KafkaError):
    """A topic exists with a layout (partitions, cleanup policy) other than the one expected."""


class UnknownTopicError(KafkaError):
    """The topic does not exist."""


def wrap(
    exc: confluent_kafka.KafkaException | confluent_kafka.KafkaError, context: str = ""
) -> KafkaError:
    """Turn a confluent-kafka exception or error into the matching ``KafkaError`` subclass.

    ``context`` (e.g. ``"commit_transaction"``) prefixes the message. Precedence when
    librdkafka sets several flags: fatal, then abortable, then retriable.
    """
    err = exc.args[0] if isinstance(exc, confluent_kafka.KafkaException) and exc.args else exc
    if not isinstance(err, confluent_kafka.KafkaError):
        return KafkaError(f"{context}: {exc}" if context else str(exc))
    message = f"{err.str()} ({err.name()})"
    if context:
        message = f"{context}: {message}"
    cls: type[KafkaError]
    if err.fatal() or err.code() in _FATAL_CODES:
        cls = FatalKafkaError
    elif err.txn_requires_abort():
        cls = AbortableKafkaError
    elif err.retriable() or err.code() in _RETRIABLE_CODES:
        cls = RetriableKafkaError
    elif err.code() in _UNKNOWN_TOPIC_CODES:
        cls = UnknownTopicError
    else:
        cls = KafkaError
    return cls(message, code=err.code(), name=err.name())


# librdkafka's client-side error codes start with an underscore, yet are its public API.
_Codes = confluent_kafka.KafkaError
PARTITION_EOF: Final[int] = _Codes._PARTITION_EOF  # noqa: SLF001
TIMED_OUT: Final[int] = _Codes._TIMED_OUT  # noqa: SLF001
_TRANSPORT: Final[int] = _Codes._TRANSPORT  # noqa: SLF001
_ALL_BROKERS_DOWN: Final[int] = _Codes._ALL_BROKERS_DOWN  # noqa: SLF001
_UNKNOWN_TOPIC: Final[int] = _Codes._UNKNOWN_TOPIC  # noqa: SLF001

# librdkafka leaves the retriable flag unset on these, though retrying is the right response:
# the broker, the group coordinator or a partition leader is away or moving (an outage, a
# failover, a rebalance). They reach every call that talks to the group or the cluster.
_RETRIABLE_CODES = frozenset(
    {
        # No answer, or no connection.
        TIMED_OUT,
        _TRANSPORT,
        _ALL_BROKERS_DOWN,
        _Codes._MSG_TIMED_OUT,  # noqa: SLF001 -- a delivery that timed out: produce again
        _Codes.REQUEST_TIMED_OUT,
        # The group coordinator is unknown, moving or loading.
        _Codes._WAIT_COORD,  # noqa: SLF001
        _Codes.COORDINATOR_LOAD_IN_PROGRESS,
        _Codes.COORDINATOR_NOT_AVAILABLE,
        _Codes.NOT_COORDINATOR,
        # The group moved on (a rebalance, a session that expired meanwhile): a commit is
        # refused for this generation; the next one, after rejoining, goes through.
        _Codes.REBALANCE_IN_PROGRESS,
        _Codes.ILLEGAL_GENERATION,
        _Codes.UNKNOWN_MEMBER_ID,
        _Codes._ASSIGNMENT_LOST,  # noqa: SLF001
        # A partition leader is moving (broker failover); a request in flight to a node that
        # left the cluster's metadata fails with _DESTROY_BROKER and goes to another one.
        _Codes._DESTROY_BROKER,  # noqa: SLF001
        _Codes.NOT_LEADER_FOR_PARTITION,
        _Codes.LEADER_NOT_AVAILABLE,
        _Codes.NOT_ENOUGH_REPLICAS,
        _Codes.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)
# A request's own error does not carry the fatal flag that librdkafka raises for the client
# (e.g. an offset commit of a static member fenced by its own rejoin): the client is done.
_FATAL_CODES = frozenset({_Codes.FENCED_INSTANCE_ID, _Codes._FATAL})  # noqa: SLF001
_UNKNOWN_TOPIC_CODES = frozenset({_Codes.UNKNOWN_TOPIC_OR_PART, _UNKNOWN_TOPIC})
