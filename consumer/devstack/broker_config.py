"""What a local broker's files say: ``server.properties``, log4j2 and the cluster id (pure).

``KafkaBroker`` (``broker.py``) writes these and runs the JVM; here is only what decides them,
so the configuration can be read and tested without starting anything.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

__all__ = [
    "SINGLE_NODE_DEFAULTS",
    "BrokerConfig",
    "cluster_defaults",
    "new_cluster_id",
    "render_log4j2_config",
    "render_server_properties",
]

SINGLE_NODE_DEFAULTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        # One node: every internal topic has a single replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Fast and explicit: no rebalance delay, no topics appearing by accident.
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # Light on a 2-core machine: few threads, a small log-cleaner buffer (default 128 MiB).
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.replica.fetchers": "1",
        "background.threads": "4",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": "16777216",
        "log.cleaner.backoff.ms": "1000",
        "log.segment.bytes": "67108864",
        "log.retention.check.interval.ms": "60000",
        # After a crash the controller fences the dead incarnation only when its session
        # expires (default 9 s); restarts in crash tests wait for that.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        # Timed-out transactions of crashed producers are aborted within seconds, not a minute.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "2000",
        "transaction.max.timeout.ms": "900000",
        "delete.topic.enable": "true",
    }
)


def cluster_defaults(nodes: int) -> dict[str, str]:
    """Replication of a cluster of ``nodes``, as production runs it (pure).

    Three copies of everything, of which two must acknowledge a write (``acks=all``): one
    node may die without losing a record or stopping producers, transactions or commits.
    One node keeps ``SINGLE_NODE_DEFAULTS``.
    """
    if nodes <= 1:
        return {}
    replicas = str(min(nodes, 3))
    in_sync = str(max(1, min(nodes, 3) - 1))
    return {
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        "default.replication.factor": replicas,
        "min.insync.replicas": in_sync,
    }


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """What decides a broker's files: ports, data directory and property overrides.

    ``voters`` are the (node id, controller port) pairs of a cluster's KRaft quorum, every
    node on ``host``; empty for a single node, which is its own quorum.
    """

    port: int
    controller_port: int
    data_dir: Path
    host: str = "127.0.0.1"
    node_id: int = 1
    voters: tuple[tuple[int, int], ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def quorum(self) -> tuple[tuple[int, int], ...]:
        """The quorum's (node id, controller port) pairs, this node's included."""
        return self.voters or ((self.node_id, self.controller_port),)

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the client listener."""
        return f"{self.host}:{self.port}"

    @property
    def log_dirs(self) -> Path:
        """Where the partitions and the KRaft metadata log are stored."""
        return self.data_dir / "kraft-logs"

    @property
    def properties_file(self) -> Path:
        """The rendered ``server.properties``."""
        return self.data_dir / "server.properties"

    @property
    def log4j2_file(self) -> Path:
        """The rendered log4j2 configuration."""
        return self.data_dir / "log4j2.properties"

    @property
    def log_file(self) -> Path:
        """The broker's own log (log4j2 writes it)."""
        return self.data_dir / "logs" / "server.log"

    @property
    def console_file(self) -> Path:
        """The JVM's stdout and stderr (crashes before logging starts end up here)."""
        return self.data_dir / "logs" / "console.log"


def render_server_properties(config: BrokerConfig) -> str:
    """The ``server.properties`` of one combined broker+controller node (pure)."""
    controller = f"{config.host}:{config.controller_port}"
    voters = ",".join(f"{node}@{config.host}:{port}" for node, port in config.quorum)
    properties: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(config.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{config.bootstrap_servers},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{config.bootstrap_servers}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(config.log_dirs),
        **SINGLE_NODE_DEFAULTS,
        **cluster_defaults(len(config.quorum)),
        **config.overrides,
    }
    lines = ["# Rendered by consumer.devstack.broker_config; rewritten on every start."]
    lines += [f"{key}={_escape_property(value)}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def _escape_property(value: str) -> str:
    # Java properties treat backslashes as escapes; nothing else we write needs escaping.
    return value.replace("\\", "\\\\")


def render_log4j2_config(log_file: Path) -> str:
    """A log4j2 configuration writing the broker's log to ``log_file``, quiet by default (pure)."""
    return "\n".join(
        [
            "status = warn",
            "appender.file.type = File",
            "appender.file.name = FILE",
            f"appender.file.fileName = {_escape_property(str(log_file))}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = FILE",
            # Per-request and per-partition state logs drown the useful lines.
            "logger.request.name = kafka.request.logger",
            "logger.request.level = WARN",
            "logger.state.name = state.change.logger",
            "logger.state.level = WARN",
            "logger.cleaner.name = kafka.log.LogCleaner",
            "logger.cleaner.level = WARN",
            "",
        ]
    )


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64 without padding, as Kafka makes.

    Like Kafka, never one starting with ``-``, which command-line parsers take for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id
