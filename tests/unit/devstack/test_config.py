"""The broker's configuration files are rendered from BrokerConfig alone."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from consumer.devstack import (
    CACHE_DIR_ENV,
    BrokerConfig,
    KafkaBroker,
    artifacts,
    broker_libs_dir,
    cache_dir,
    cluster_defaults,
    fetch_broker_artifacts,
    new_cluster_id,
    render_log4j2_config,
    render_server_properties,
)


def _properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_server_properties_single_combined_node_on_loopback(tmp_path: Path) -> None:
    config = BrokerConfig(port=19092, controller_port=19093, data_dir=tmp_path)

    props = _properties(render_server_properties(config))

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path / "kraft-logs")
    assert props["auto.create.topics.enable"] == "false"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_server_properties_of_a_cluster_node_name_every_voter_and_replicate(
    tmp_path: Path,
) -> None:
    voters = ((1, 19093), (2, 19095), (3, 19097))
    config = BrokerConfig(
        port=19094, controller_port=19095, data_dir=tmp_path, node_id=2, voters=voters
    )

    props = _properties(render_server_properties(config))

    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "default.replication.factor",
    ):
        assert props[key] == "3", key
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["min.insync.replicas"] == "2"


def test_cluster_defaults_keep_one_node_as_it_was() -> None:
    assert cluster_defaults(1) == {}
    assert cluster_defaults(2)["min.insync.replicas"] == "1"
    assert cluster_defaults(5)["default.replication.factor"] == "3"


def test_server_properties_overrides_replace_defaults(tmp_path: Path) -> None:
    config = BrokerConfig(
        port=1, controller_port=2, data_dir=tmp_path, overrides={"num.partitions": "6"}
    )

    assert _properties(render_server_properties(config))["num.partitions"] == "6"


def test_log4j2_config_writes_to_given_file(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "server.log"

    text = render_log4j2_config(log_file)

    assert f"appender.file.fileName = {log_file}" in text
    assert "rootLogger.appenderRef.file.ref = FILE" in text


def test_cluster_id_is_kafka_shaped_random_and_never_option_like() -> None:
    ids = {new_cluster_id() for _ in range(500)}

    assert len(ids) == 500
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)


def test_cache_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))

    assert cache_dir() == tmp_path.resolve()
    assert broker_libs_dir("9.9.9") == tmp_path.resolve() / "kafka" / "9.9.9" / "libs"


def test_fetch_returns_complete_cache_without_running_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    libs = broker_libs_dir("9.9.9")
    libs.mkdir(parents=True)
    (libs.parent / ".complete").write_text(artifacts._fingerprint("9.9.9"))
    monkeypatch.setattr("shutil.which", lambda name: None)  # mvn would be "missing"

    assert fetch_broker_artifacts("9.9.9") == libs


def test_new_broker_sweeps_data_dirs_of_dead_owners() -> None:
    probe = subprocess.Popen(["true"])  # its pid is free once it has been reaped
    probe.wait()
    stale = Path(tempfile.mkdtemp(prefix="klaviyo-consumer-kafka-"))
    (stale / "owner.pid").write_text(f"{probe.pid}\n")

    broker = KafkaBroker()
    try:
        assert not stale.exists()
        assert (broker.config.data_dir / "owner.pid").read_text().strip() == str(os.getpid())
    finally:
        broker.stop()
    assert not broker.config.data_dir.exists()
