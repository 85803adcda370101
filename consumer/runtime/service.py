"""The service: integrations table, the stages, the HTTP endpoints, and a clean shutdown.

Start order: HTTP endpoints (so probes answer, "not ready", from the first second) → the
broker reached (waited for with back-off up to ``kafka.startup_timeout_seconds``, then exit 2
naming ``kafka.bootstrap_servers``) and topics checked → integrations table loaded → stages.
The table's reader is supervised: while it is down ``/readyz`` says 503 (component
``integrations``) and ``integrations_reader_up`` is 0.

Stop (SIGTERM, SIGINT or ``stop`` set): every stage stops consuming, finishes or parks its
in-flight work, commits and leaves its group, within
``shutdown_seconds``; past that the process exits non-zero and Kafka's guarantees take over.
A stage whose Kafka clients cannot go on (fenced, a transaction stuck after a broker restart)
is rebuilt in place (``supervisor.py``); only errors new clients cannot cure end the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from consumer.integrations.crypto import Keyring
from consumer.integrations.table import IntegrationsTable
from consumer.observability import Health, Metrics, bind_log_context, serve
from consumer.runtime.clients import BrokerClients, KafkaClients
from consumer.runtime.deliver_stage import DeliverStage
from consumer.runtime.derive_stage import DeriveStage
from consumer.runtime.local_state import check_state_dir
from consumer.runtime.startup import wait_for_kafka
from consumer.runtime.supervisor import supervise
from consumer.settings import Settings

__all__ = ["Service", "Stage"]

log = logging.getLogger(__name__)

Stage = Literal["derive", "deliver", "all"]
_WATCHDOG_GRACE_SECONDS = 5.0


@dataclass
class Service:
    """One klaviyo-consumer process."""

    settings: Settings
    stage: Stage = "all"
    instance_id: str = field(default_factory=socket.gethostname)
    shutdown_seconds: float = 25.0
    metrics: Metrics = field(default_factory=Metrics)
    health: Health = field(default_factory=Health)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    """Base URL of the HTTP endpoints, set once they serve."""
    table: IntegrationsTable | None = field(default=None, init=False)
    """The integrations table, once ``run`` has built it."""
    clients: KafkaClients | None = None
    """Where the stages get their Kafka clients; default: ``BrokerClients(settings.kafka)``."""
    _debug_sources: list[Callable[[], object]] = field(default_factory=list)
    _shutdown_began: bool = field(default=False, init=False)
    _hard_exit_after_shutdown: bool = field(default=False, init=False)

    async def run(self) -> None:
        """Run until ``stop`` is set or a stage fails.

        Raises:
            ConfigError: no broker answered within ``kafka.startup_timeout_seconds``, the
                HTTP port cannot be bound, or ``derive.local_state_dir`` cannot be written.
            KafkaError: a Kafka error that new clients do not cure (e.g. a topic missing); a
                stage whose clients failed is rebuilt in place instead (``supervise``).
            TimeoutError: shutdown took longer than ``shutdown_seconds``.
        """
        bind_log_context(instance=self.instance_id)
        state_dir = self.settings.derive.local_state_dir
        if state_dir is not None and self.stage in ("derive", "all"):
            check_state_dir(state_dir)
        keyring = Keyring.from_settings(self.settings.integrations)
        table = self.table = IntegrationsTable(
            self.settings.kafka,
            self.settings.topics.integrations,
            keyring,
            on_reader=self._on_table_reader,
        )
        self.health.set_ready("topics", False)
        self.health.set_ready("integrations", False)
        http = self.settings.http
        async with (
            table,
            serve(http.host, http.port, self.metrics, self.health, self._debug(table)) as url,
        ):
            self.url = url
            log.info(
                "serving", extra={"url": url, "stage": self.stage, "instance": self.instance_id}
            )
            if not await wait_for_kafka(self.settings, self.stop):
                return  # stopped while waiting
            self.health.set_ready("topics", True)
            await table.load()
            self._on_table_reader(None)
            await self._run_stages(table)

    def _on_table_reader(self, failure: BaseException | None) -> None:
        self.health.set_ready("integrations", failure is None)
        self.metrics.integrations_reader_up.set(1 if failure is None else 0)
        if failure is not None:
            self.metrics.integrations_reader_failures.labels(type(failure).__name__).inc()

    async def _run_stages(self, table: IntegrationsTable) -> None:
        runners: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        if self.stage in ("derive", "all"):
            runners["derive"] = lambda: self._derive(table).run(self.stop)
        if self.stage in ("deliver", "all"):
            runners["deliver"] = lambda: self._deliver(table).run(self.stop, self.shutdown_seconds)
        tasks = [
            asyncio.create_task(supervise(name, run, self.stop, self.metrics), name=name)
            for name, run in runners.items()
        ]
        stopping = asyncio.create_task(self.stop.wait(), name="stop")
        # A stage that fails for good stops the others: the process exits, to be restarted.
        await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        self._begin_shutdown()
        try:
            async with asyncio.timeout(self.shutdown_seconds):
                results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stopping.cancel()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _derive(self, table: IntegrationsTable) -> DeriveStage:
        return DeriveStage(
            self.settings,
            table.get,
            self.metrics,
            self.health,
            self.instance_id,
            clients=self._clients,
        )

    def _deliver(self, table: IntegrationsTable) -> DeliverStage:
        stage = DeliverStage(
            self.settings,
            table.get,
            self.metrics,
            self.health,
            self.instance_id,
            clients=self._clients,
        )
        self._debug_sources[:] = [stage.debug]
        return stage

    def _debug(self, table: IntegrationsTable) -> Callable[[], Any]:
        def merchants() -> dict[str, Any]:
            return {
                "merchants": table.merchant_ids(),
                "problems": table.problems(),
                "integrations_reader": {
                    "up": table.ready,
                    "failure": None if table.failure is None else str(table.failure),
                    "restarts": table.stats.restarts,
                },
                "live": self.health.live()[1],
                "ready": self.health.ready()[1],
                "stages": [source() for source in self._debug_sources],
            }

        return merchants

    @property
    def _clients(self) -> KafkaClients:
        return self.clients or BrokerClients(self.settings.kafka)

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT start a graceful shutdown; any shutdown ends in a hard exit.

        A worker thread blocked in a Kafka call (e.g. while the broker is unreachable) cannot
        be cancelled, and the interpreter waits for it at exit; so once shutdown begins
        (signal, or a stage failed for good) a watchdog ends the process a little after
        ``shutdown_seconds``. Whatever was not committed is redone by the next start.
        Only for a whole process: in a test, the watchdog would end the test run.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._begin_shutdown)
        self._hard_exit_after_shutdown = True

    def _begin_shutdown(self) -> None:
        if self._shutdown_began:
            return
        self._shutdown_began = True
        self.stop.set()
        if not self._hard_exit_after_shutdown:
            return
        watchdog = threading.Timer(self.shutdown_seconds + _WATCHDOG_GRACE_SECONDS, _hard_exit)
        watchdog.daemon = True
        watchdog.start()


def _hard_exit() -> None:
    log.critical("shutdown deadline passed, exiting without a clean close")
    logging.shutdown()
    os._exit(1)
