"""Several local Kafka 4 nodes forming one KRaft cluster on loopback (``dev broker --brokers``).

Every node is a combined broker and controller, and all of them vote in the quorum, so any
single node may die (``kill``) while the cluster goes on: topics are replicated three times
with two in-sync replicas required (``cluster_defaults``), as in production. Failover tests
kill the leader of a partition and restart it later (``KafkaBroker.start``: same ports, data).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from consumer.devstack.artifacts import DEFAULT_KAFKA_VERSION
from consumer.devstack.broker import KafkaBroker, free_ports
from consumer.devstack.broker_config import new_cluster_id
from consumer.settings import KafkaSettings

__all__ = ["KafkaCluster"]


class KafkaCluster:
    """``size`` nodes on ``127.0.0.1``: node ids 1..size, client ports ``port``, ``port+1``, ...

    Args:
        size: How many nodes.
        port: Client port of node 1 (the others follow); 0 picks free ones.
        data_dir: Keep the nodes' data here (``node-<id>`` each; kept on ``stop``).
        version: Kafka version to run.
        heap: JVM max heap of each node.
        overrides: ``server.properties`` entries for every node.
        startup_timeout: Seconds to wait for all nodes to answer.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        port: int = 0,
        data_dir: Path | None = None,
        version: str = DEFAULT_KAFKA_VERSION,
        heap: str = "384m",
        overrides: Mapping[str, str] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        picked = free_ports(2 * size)
        client_ports = [port + i for i in range(size)] if port else picked[:size]
        voters = tuple((node, picked[size + node - 1]) for node in range(1, size + 1))
        cluster_id = new_cluster_id()
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        """How long the last ``start`` took, once it returned."""
        self.nodes = [
            KafkaBroker(
                port=client_ports[node - 1],
                controller_port=controller_port,
                data_dir=None if data_dir is None else data_dir / f"node-{node}",
                version=version,
                heap=heap,
                overrides=overrides,
                startup_timeout=startup_timeout,
                node_id=node,
                voters=voters,
                cluster_id=cluster_id,
            )
            for node, controller_port in voters
        ]

    @property
    def bootstrap_servers(self) -> str:
        """Every node's ``host:port``, comma-separated."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def kafka_settings(self) -> KafkaSettings:
        """Connection settings pointing at the cluster."""
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    def node(self, node_id: int) -> KafkaBroker:
        """The node with this id (1-based)."""
        return self.nodes[node_id - 1]

    def start(self) -> None:
        """Start every node not running and wait until each one answers.

        Raises:
            BrokerStartError: a node did not start (the ones started are left running;
                ``stop`` ends them).
        """
        began = time.monotonic()
        stopped = [node for node in self.nodes if not node.running]
        for node in stopped:
            node.launch()
        for node in stopped:
            node.wait_started(began + self.startup_timeout)
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop every node (and remove the data directories this cluster made).

        All at once: a node stopping alone after the others waits for a quorum that is gone.
        """
        with ThreadPoolExecutor(len(self.nodes), thread_name_prefix="kafka-stop") as pool:
            for stopped in [pool.submit(node.stop) for node in self.nodes]:
                stopped.result()

    def __enter__(self) -> KafkaCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
