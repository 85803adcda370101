"""Local development stack: a real Kafka 4 broker from Maven Central jars, for tests and demos."""

from consumer.devstack.artifacts import (
    CACHE_DIR_ENV,
    DEFAULT_KAFKA_VERSION,
    broker_libs_dir,
    cache_dir,
    fetch_broker_artifacts,
)
from consumer.devstack.broker import KafkaBroker, free_port, free_ports
from consumer.devstack.broker_config import (
    SINGLE_NODE_DEFAULTS,
    BrokerConfig,
    cluster_defaults,
    new_cluster_id,
    render_log4j2_config,
    render_server_properties,
)
from consumer.devstack.cluster import KafkaCluster
from consumer.devstack.errors import BrokerFetchError, BrokerStartError, DevstackError

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_KAFKA_VERSION",
    "SINGLE_NODE_DEFAULTS",
    "BrokerConfig",
    "BrokerFetchError",
    "BrokerStartError",
    "DevstackError",
    "KafkaBroker",
    "KafkaCluster",
    "broker_libs_dir",
    "cache_dir",
    "cluster_defaults",
    "fetch_broker_artifacts",
    "free_port",
    "free_ports",
    "new_cluster_id",
    "render_log4j2_config",
    "render_server_properties",
]
