"""A real Apache Kafka 4 broker (KRaft, one combined broker+controller node) on loopback.

Used by the integration tests (one broker per test run) and by ``klaviyo-consumer dev broker``;
``KafkaCluster`` (``cluster.py``) runs several as one cluster.
The JVM runs from the jars ``fetch_broker_artifacts`` caches; it is light on memory and tuned
for fast start-up and single-node transactions. No JVM outlives this Python process: children
die with it (``consumer.devstack.process``) and an ``atexit`` hook stops the rest cleanly.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from consumer.devstack.artifacts import (
    DEFAULT_KAFKA_VERSION,
    fetch_broker_artifacts,
    java_executable,
)
from consumer.devstack.broker_config import (
    BrokerConfig,
    new_cluster_id,
    render_log4j2_config,
    render_server_properties,
)
from consumer.devstack.errors import BrokerStartError
from consumer.devstack.process import spawn
from consumer.kafka import KafkaError, wait_until_ready
from consumer.settings import KafkaSettings

__all__ = ["KafkaBroker", "free_port", "free_ports"]

logger = logging.getLogger(__name__)

_JVM_OPTIONS: Final = (
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",
    "-Xss512k",
    "-Djava.awt.headless=true",
)
_STOP_TIMEOUT_SECONDS: Final = 30.0
_PORT_PROBE_SECONDS: Final = 0.1

_DATA_DIR_PREFIX: Final = "klaviyo-consumer-kafka-"
_OWNER_FILE: Final = "owner.pid"

_LIVE: set[KafkaBroker] = set()
_LIVE_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that are free right now."""
    with contextlib.ExitStack() as held:  # held open until all are picked: no repeats
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class KafkaBroker:
    """One local Kafka 4 node (broker and controller) on ``127.0.0.1``.

    Ports are chosen when the object is made (``0`` = a free one), so ``bootstrap_servers``
    is known before ``start``. ``restart`` keeps ports and data; ``stop`` removes the data
    directory unless the caller supplied it. Usable as a context manager.

    Args:
        port: Client (PLAINTEXT) port; 0 picks a free one.
        controller_port: KRaft controller port; 0 picks a free one.
        data_dir: Keep data here (kept on ``stop``); default: a new temporary directory.
        version: Kafka version to run (fetched on first use).
        heap: JVM max heap (``-Xmx``).
        overrides: ``server.properties`` entries that replace the defaults.
        startup_timeout: Seconds to wait for the broker to answer metadata requests.
        node_id: This node's id in its cluster.
        voters: The cluster's quorum as (node id, controller port) pairs; empty = alone.
        cluster_id: The cluster's id, the same on every node; default: a new one.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        controller_port: int = 0,
        data_dir: Path | None = None,
        version: str = DEFAULT_KAFKA_VERSION,
        heap: str = "512m",
        overrides: Mapping[str, str] | None = None,
        startup_timeout: float = 90.0,
        node_id: int = 1,
        voters: tuple[tuple[int, int], ...] = (),
        cluster_id: str | None = None,
    ) -> None:
        self._owns_data_dir = data_dir is None
        if data_dir is None:
            _sweep_stale_data_dirs()
            data_dir = Path(tempfile.mkdtemp(prefix=_DATA_DIR_PREFIX))
            (data_dir / _OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
        self.config = BrokerConfig(
            port=port or free_port(),
            controller_port=controller_port or free_port(),
            data_dir=data_dir.resolve(),
            node_id=node_id,
            voters=voters,
            overrides=dict(overrides or {}),
        )
        self.cluster_id = cluster_id or new_cluster_id()
        self.version = version
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        """How long the last ``start`` took, once it returned."""
        self._process: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT`` for clients."""
        return self.config.bootstrap_servers

    @property
    def kafka_settings(self) -> KafkaSettings:
        """Connection settings pointing at this broker."""
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the JVM is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_file(self) -> Path:
        """The broker's log file (inside the data directory)."""
        return self.config.log_file

    def start(self) -> None:
        """Format storage if new, start the JVM and wait until the broker answers.

        Raises:
            BrokerFetchError: the jars could not be obtained.
            BrokerStartError: a port is taken, the JVM exited, or it did not answer in time.
        """
        if self.running:
            return
        began = time.monotonic()
        self.launch()
        self.wait_started(began + self.startup_timeout)

    def launch(self) -> None:
        """Format storage if new and start the JVM, without waiting for it to answer.

        A cluster launches every node first: none answers before a quorum of them runs.

        Raises:
            BrokerFetchError: the jars could not be obtained.
            BrokerStartError: a port is taken, or formatting failed.
        """
        if self.running:
            return
        self._launched_at = time.monotonic()
        libs = fetch_broker_artifacts(self.version)
        for port in (self.config.port, self.config.controller_port):
            if not _port_is_free(self.config.host, port):
                raise BrokerStartError(f"port {self.config.host}:{port} is already in use")
        self._write_config_files()
        if not (self.config.log_dirs / "meta.properties").is_file():
            self._format(libs)
        with self.config.console_file.open("ab") as console:
            self._process = spawn(
                [
                    *self._java(libs, heap=self.heap),
                    "kafka.Kafka",
                    str(self.config.properties_file),
                ],
                cwd=self.config.data_dir,
                output=console,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)

    def wait_started(self, deadline: float) -> None:
        """Wait (until ``deadline``, on ``time.monotonic()``) for the launched node to answer.

        Raises:
            BrokerStartError: the JVM exited, or it did not answer in time (it is killed).
        """
        try:
            self._wait_until_ready(deadline)
        except BaseException:
            self._terminate(graceful=False)
            raise
        self.startup_seconds = time.monotonic() - self._launched_at
        logger.info(
            "Kafka broker started at %s (pid %d) in %.1f s",
            self.bootstrap_servers,
            self.pid,
            self.startup_seconds,
        )

    def stop(self, timeout: float = _STOP_TIMEOUT_SECONDS) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after ``timeout``) and remove owned data."""
        self._terminate(graceful=True, timeout=timeout)
        if self._owns_data_dir:
            shutil.rmtree(self.config.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the JVM (a crash); data is kept, so ``start`` recovers from it."""
        self._terminate(graceful=False)

    def restart(self, *, crash: bool = False) -> None:
        """Stop (cleanly, or with SIGKILL if ``crash``) and start again: same ports, same data."""
        self._terminate(graceful=not crash)
        self.start()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the JVM to exit; its exit code, or ``None`` if it still runs."""
        process = self._process
        if process is None:
            return None
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the broker log and the JVM console, for error messages."""
        chunks = []
        for path in (self.config.log_file, self.config.console_file):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            if text.strip():
                chunks.append(f"--- {path.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(chunks) or "(no broker output)"

    def __enter__(self) -> KafkaBroker:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _java(self, libs: Path, *, heap: str) -> list[str]:
        return [
            java_executable(),
            f"-Xmx{heap}",
            "-Xms64m",
            *_JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.config.log4j2_file}",
            f"-Dkafka.logs.dir={self.config.log_file.parent}",
            "-cp",
            f"{libs}/*",
        ]

    def _write_config_files(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.properties_file.write_text(
            render_server_properties(self.config), encoding="utf-8"
        )
        self.config.log4j2_file.write_text(
            render_log4j2_config(self.config.log_file), encoding="utf-8"
        )

    def _format(self, libs: Path) -> None:
        argv = [
            *self._java(libs, heap="256m"),
            "-XX:TieredStopAtLevel=1",  # a short-lived tool: the JIT's top tier never pays off
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(self.config.properties_file),
            f"--cluster-id={self.cluster_id}",
            "--ignore-formatted",
        ]
        with self.config.console_file.open("ab") as console:
            process = spawn(argv, cwd=self.config.data_dir, output=console)
        try:
            code = process.wait(timeout=self.startup_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise BrokerStartError(
                f"formatting the broker storage timed out\n{self.log_tail()}"
            ) from None
        if code != 0:
            raise BrokerStartError(f"formatting the broker storage failed\n{self.log_tail()}")

    def _wait_until_ready(self, deadline: float) -> None:
        process = self._process
        if process is None:
            raise BrokerStartError("broker process was not started")
        # First the socket: until it listens, metadata requests only produce connection errors.
        while True:
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"broker did not listen on {self.bootstrap_servers} in time\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(
                    (self.config.host, self.config.port), timeout=_PORT_PROBE_SECONDS
                ):
                    break
            except OSError:
                pass
            # Waiting on the process doubles as the pause between probes and spots a crash.
            try:
                code = process.wait(_PORT_PROBE_SECONDS)
            except subprocess.TimeoutExpired:
                continue
            raise BrokerStartError(f"broker exited with code {code}\n{self.log_tail()}")
        try:
            wait_until_ready(self.kafka_settings, timeout=max(deadline - time.monotonic(), 1.0))
        except KafkaError as exc:
            raise BrokerStartError(f"broker did not answer: {exc}\n{self.log_tail()}") from exc

    def _terminate(self, *, graceful: bool, timeout: float = _STOP_TIMEOUT_SECONDS) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            if graceful:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    logger.warning("Kafka broker pid %d ignored SIGTERM; killing it", process.pid)
            if process.poll() is None:
                # The whole process group: the JVM is its leader and has no children we
                # know of, but nothing it may have spawned should survive it.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        logger.info("Kafka broker at %s stopped (pid %d)", self.bootstrap_servers, process.pid)


def _sweep_stale_data_dirs() -> None:
    """Remove temporary data dirs whose owner died without cleaning up (e.g. ``kill -9``)."""
    for candidate in Path(tempfile.gettempdir()).glob(_DATA_DIR_PREFIX + "*"):
        try:
            owner = int((candidate / _OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(candidate, ignore_errors=True)
        except PermissionError:
            continue  # alive, owned by another user


@atexit.register
def _stop_live_brokers() -> None:
    with _LIVE_LOCK:
        brokers = list(_LIVE)
    for broker in brokers:
        broker.stop()
