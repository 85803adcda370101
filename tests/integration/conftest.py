"""Integration fixtures: one real Kafka broker for the whole run, and factories around it.

The broker starts the first time a test asks for it (directly or through ``kafka_settings``,
``topic_factory``, ...), so a run without Kafka tests starts none. It is stopped at the end of
the session, and the teardown checks that its JVM is gone.

Set ``KLAVIYO_CONSUMER_TEST_BOOTSTRAP_SERVERS`` to run against a broker you started yourself
(e.g. ``klaviyo-consumer dev broker``) instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from consumer.devstack import KafkaBroker
from consumer.kafka import ConsumedMessage, TopicSpec, ensure_topics
from consumer.settings import KafkaSettings, Settings
from tests.helpers.kafka import (
    RecordLike,
    produce_records,
    produce_transaction,
    read_committed,
    unique_name,
)

EXTERNAL_BROKER_ENV = "KLAVIYO_CONSUMER_TEST_BOOTSTRAP_SERVERS"

TopicFactory = Callable[..., str]
"""``topic_factory(partitions=1, config=None, prefix="test")`` → a new, unique topic name."""


def _report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():  # shown in the run's output, not captured
        reporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[KafkaBroker | None]:
    """The session's Kafka broker (``None`` when an external one is configured)."""
    if os.environ.get(EXTERNAL_BROKER_ENV):
        yield None
        return
    broker = KafkaBroker()
    try:
        broker.start()
    except BaseException:
        broker.stop()  # removes the data directory; the error carries the log tail
        raise
    pid = broker.pid
    _report(
        request.config,
        f"Kafka broker started at {broker.bootstrap_servers} (pid {pid}) "
        f"in {broker.startup_seconds:.1f} s; log: {broker.log_file}",
    )
    try:
        yield broker
    finally:
        broker.stop()
        _report(request.config, f"Kafka broker stopped (pid {pid})")
    # A crash test may have restarted it: check the JVM running at the end is gone too.
    assert broker.pid is None
    assert pid is None or not Path(f"/proc/{pid}").exists(), f"broker JVM {pid} outlived stop()"


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: KafkaBroker | None) -> str:
    """``host:port`` of the session's broker."""
    if kafka_broker is None:
        return os.environ[EXTERNAL_BROKER_ENV]
    return kafka_broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_settings(bootstrap_servers: str) -> KafkaSettings:
    """Connection settings for the session's broker."""
    return KafkaSettings(bootstrap_servers=bootstrap_servers)


@pytest.fixture(scope="session")
def app_settings(kafka_settings: KafkaSettings) -> Settings:
    """The service's full settings (defaults), pointed at the session's broker."""
    return Settings(kafka=kafka_settings)


@pytest.fixture
def topic_factory(kafka_settings: KafkaSettings) -> TopicFactory:
    """Creates a uniquely named topic per call and waits until it has leaders."""

    def create(
        partitions: int = 1, config: Mapping[str, str] | None = None, prefix: str = "test"
    ) -> str:
        name = unique_name(prefix)
        ensure_topics(kafka_settings, [TopicSpec(name, partitions, dict(config or {}))])
        return name

    return create


@pytest.fixture
def group_id_factory() -> Callable[[], str]:
    """Unique consumer group ids, one per call."""
    return lambda: unique_name("test-group")


@pytest.fixture
def group_id(group_id_factory: Callable[[], str]) -> str:
    """A consumer group id no other test uses."""
    return group_id_factory()


@pytest.fixture
def produce(kafka_settings: KafkaSettings) -> Callable[..., None]:
    """``produce(topic, records, *, transactional=False, commit=True)``.

    ``records`` are ``Record`` objects or ``(key, value)`` pairs. Plain: one idempotent
    producer, flushed. Transactional: one transaction, committed or (``commit=False``) aborted.
    """

    def run(
        topic: str,
        records: list[RecordLike],
        *,
        transactional: bool = False,
        commit: bool = True,
    ) -> None:
        if transactional:
            produce_transaction(kafka_settings, topic, records, commit=commit)
        elif not commit:
            raise ValueError("only a transactional produce can be aborted")
        else:
            produce_records(kafka_settings, topic, records)

    return run


@pytest.fixture
def read_committed_records(kafka_settings: KafkaSettings) -> Callable[..., list[ConsumedMessage]]:
    """``read_committed_records(topics, until=N_or_predicate, timeout=30)``.

    Reads from the beginning until the condition holds; see ``helpers.kafka.read_committed``.
    """

    def run(
        topics: str | list[str],
        *,
        until: Callable[[list[ConsumedMessage]], bool] | int,
        timeout: float = 30.0,
    ) -> list[ConsumedMessage]:
        return read_committed(kafka_settings, topics, until=until, timeout=timeout)

    return run
