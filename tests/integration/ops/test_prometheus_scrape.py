"""A real Prometheus scrapes the running service on the real broker and the Klaviyo sandbox;
every query of the dashboard and every alert expression must return a series.

The traffic touches every panel: good records for two merchants, poison records (dead
letters), 429s and 5xx and a reset connection from Klaviyo (retries, rate-limit waits), a
revoked key (parks), a merchant without integration (skips), a fenced derive producer
(a stage restart, with its rebalance and state restore), a record whose derivation raises
(the test-only fault hook: a record error) and a killed integrations reader.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
import yaml

from consumer.devstack.traffic import InputRecord, sample_traffic
from consumer.kafka import Producer, TransactionalProducer
from consumer.kafka import consumer as consumer_module
from consumer.runtime.service import Service
from tests.helpers.prometheus import ROOT, PrometheusServer, prometheus_bin
from tests.integration.runtime.conftest import Stack, running_service
from tests.integration.runtime.test_record_errors import FAULTY_RETURN, _FaultyService

ALERTS = ROOT / "helm/klaviyo-consumer/files/alerts.yaml"
DASHBOARD = ROOT / "helm/klaviyo-consumer/files/dashboard.json"
LABELS = {"namespace": "e2e", "pod": "kc-0"}
SUBSTITUTIONS = {
    "$namespace": LABELS["namespace"],
    "$pod": LABELS["pod"],
    "$__rate_interval": "1m",
}
# Alerts the traffic must set off (pending where their `for` is longer than the test).
RAISED = {
    "KlaviyoConsumerRecordErrors",
    "KlaviyoConsumerDeadLetterRatio",
    "KlaviyoConsumerKlaviyoErrors",
    "KlaviyoConsumerRateLimited",
    "KlaviyoConsumerMerchantsParked",
}
# Counters the traffic must move: proof that panels show activity, not only zeros.
MOVED = [
    'klaviyo_consumer_dead_letters_total{stage="derive"}',
    'klaviyo_consumer_klaviyo_requests_total{status_class="2xx"}',
    'klaviyo_consumer_klaviyo_requests_total{status_class="5xx"}',
    'klaviyo_consumer_klaviyo_requests_total{status_class="none"}',
    "klaviyo_consumer_klaviyo_throttled_total",
    "klaviyo_consumer_klaviyo_retries_total",
    "klaviyo_consumer_klaviyo_rate_limit_wait_seconds_total",
    "klaviyo_consumer_klaviyo_request_duration_seconds_count",
    "klaviyo_consumer_klaviyo_events_per_request_sum",
    "klaviyo_consumer_parked_operations_total",
    'klaviyo_consumer_records_skipped_total{reason="merchant_not_integrated"}',
    "klaviyo_consumer_stage_restarts_total",
    'klaviyo_consumer_rebalances_total{kind="assign"}',
    'klaviyo_consumer_transactions_total{outcome="committed"}',
    "klaviyo_consumer_checkpoint_duration_seconds_count",
    "klaviyo_consumer_state_restore_duration_seconds_count",
    "klaviyo_consumer_merchants_parked",
    'klaviyo_consumer_record_errors_total{stage="derive", error="RuntimeError"}',
    'klaviyo_consumer_integrations_reader_failures_total{error="ReaderStopped"}',
]


def dashboard_queries() -> dict[str, str]:
    """Panel title (and ref) → expression, with the variables a user would pick."""
    board = json.loads(DASHBOARD.read_text())
    queries = {}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in SUBSTITUTIONS.items():
                expr = expr.replace(variable, value)
            queries[f"panel {panel['title']!r} {target['refId']}"] = expr
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric{...}, label): the metric must carry the label.
            found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert found, variable["query"]
            selector = found.group(1).replace("$namespace", LABELS["namespace"])
            queries[f"variable {variable['name']}"] = f"count by ({found.group(2)}) ({selector})"
    return queries


def signal(expr: str) -> str:
    """An alert's expression with its thresholds turned into 0/1 (``bool``), so it returns a
    series whenever its inputs exist; ``absent(x)`` is checked through ``x``."""
    expr = " ".join(expr.split())
    if expr.startswith("absent(") and expr.endswith(")"):
        return expr[len("absent(") : -1]
    return re.sub(r" (==|!=|>=|<=|>|<) (?=[\d.])", r" \1 bool ", expr)


def alert_queries() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {f"alert {rule['alert']}": signal(rule["expr"]) for g in groups for rule in g["rules"]}


@pytest.fixture
async def prometheus(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Service, PrometheusServer]]:
    """The service, ready, and a Prometheus scraping it (with the alert rules loaded)."""
    # Statistics every 0.2 s instead of 5 s, so a lag of a second or two is seen.
    monkeypatch.setattr(consumer_module, "_STATS_INTERVAL_MS", 200)
    async with running_service(stack.settings, service_type=_FaultyService) as service:
        server = PrometheusServer(
            await asyncio.to_thread(prometheus_bin),
            stack.log_dir,
            service.url.removeprefix("http://"),
            LABELS,
            [ALERTS],
        )
        server.start()
        try:
            yield service, server
        finally:
            server.stop()


async def wait_for_series(
    http: aiohttp.ClientSession, server: PrometheusServer, queries: dict[str, str], seconds: float
) -> None:
    """Until every query returns at least one series; else fail naming the empty ones."""
    deadline = time.monotonic() + seconds
    pending = dict(queries)
    while True:
        assert server.alive(), server.log.read_text()[-3000:]
        for name, expr in list(pending.items()):
            try:
                if await server.query(http, expr):
                    del pending[name]
            except aiohttp.ClientConnectionError:
                break  # Prometheus still starting
        if not pending:
            return
        if time.monotonic() >= deadline:
            empty = "\n".join(f"  {name}: {expr}" for name, expr in pending.items())
            raise AssertionError(f"queries still without a series after {seconds} s:\n{empty}")
        await asyncio.sleep(0.5)  # polling Prometheus with a deadline


async def wait_for_alerts(
    http: aiohttp.ClientSession, server: PrometheusServer, names: set[str], seconds: float
) -> None:
    """Until every alert of ``names`` is pending or firing."""
    deadline = time.monotonic() + seconds
    while True:
        alerts = await server.get(http, "/api/v1/alerts")
        missing = names - {a["labels"]["alertname"] for a in alerts["alerts"]}
        if not missing:
            return
        assert time.monotonic() < deadline, f"alerts not raised after {seconds} s: {missing}"
        await asyncio.sleep(0.5)  # polling Prometheus with a deadline


def fence_derive(stack: Stack, instance: str) -> None:
    """A second producer with the derive stage's transactional id: the stage is fenced."""
    group = f"{stack.settings.kafka.group_id}-derive"
    intruder = TransactionalProducer(stack.settings.kafka, transactional_id=f"{group}-{instance}")
    try:
        intruder.init_transactions()
    finally:
        intruder.close()


def faulty_return(traffic: list[InputRecord]) -> InputRecord:
    """A return whose derivation raises (``_FaultyDeriveStage``): an unexpected record error."""
    template = next(r for r in traffic if r.subject == "returns")
    return InputRecord("returns", FAULTY_RETURN, {**template.value, "return_id": FAULTY_RETURN})


async def kill_integrations_reader(service: Service) -> None:
    """The reader task dies; the table restarts it after its back-off."""
    table = service.table
    assert table is not None and table._reader is not None
    table._reader.cancel()
    async with asyncio.timeout(10):
        await table.wait_until(lambda t: not t.ready)


def publish_poison(stack: Stack, wave: str, count: int) -> None:
    producer = Producer(stack.settings.kafka)
    for n in range(count):
        key = f"poison-{wave}-{n}".encode()
        producer.produce(stack.settings.topics.orders, key, b"\x00garbage")
    producer.flush()
    producer.close()


async def test_prometheus_scrapes_every_dashboard_and_alert_series(
    stack: Stack, prometheus: tuple[Service, PrometheusServer]
) -> None:
    service, server = prometheus
    sandbox = stack.sandbox
    async with aiohttp.ClientSession() as http:
        # Counters must be scraped at 0 before the traffic, or their first rise shows no rate.
        await wait_for_series(http, server, {"first scrape": "up == 1"}, seconds=20)
    throttled, failing, revoked = stack.merchants[0], stack.merchants[1], stack.merchants[2]
    sandbox.faults(throttled.merchant_id).throttle(retry_after=1, count=2)
    sandbox.faults(failing.merchant_id).fail_next(2, status=503)
    sandbox.faults(failing.merchant_id).reset_connections(1)
    assert revoked.api_key is not None
    sandbox.revoke_key(revoked.api_key)
    now = datetime.now(UTC)
    merchants = [m.merchant_id for m in stack.merchants]
    # Two waves: a counter series born with its first increment shows no rate until the next.
    first = sample_traffic(merchants, 4, now)
    await stack.publish([*first, faulty_return(first)])
    await asyncio.to_thread(publish_poison, stack, "a", 3)
    await kill_integrations_reader(service)
    await sandbox.wait_for_events(throttled.merchant_id, 1, timeout=30)
    await asyncio.to_thread(fence_derive, stack, "a")
    await stack.publish(sample_traffic(merchants, 2, now, seed=8))
    await asyncio.to_thread(publish_poison, stack, "b", 3)

    queries = {**dashboard_queries(), **alert_queries()}
    queries.update({f"moved {expr}": f"sum({expr}) > 0" for expr in MOVED})
    async with aiohttp.ClientSession() as http:
        await wait_for_series(http, server, queries, seconds=40)
        await wait_for_alerts(http, server, RAISED, seconds=20)
        # Merchant-1's 429s held its operations (uncommitted) for a second or two: lag was seen.
        lagged = {
            f"lagged {m}": f'max_over_time({m}{{topic=~".*outbox"}}[5m]) > 0'
            for m in ("klaviyo_consumer_lag_records", "klaviyo_consumer_lag_seconds")
        }
        await wait_for_series(http, server, lagged, seconds=5)
        # Drained: no lag left, though the outbox ends in transaction markers nobody reads.
        caught_up = {
            f"caught up {m}": f'max({m}{{topic=~".*outbox"}}) == 0 and max({m}) == 0'
            for m in ("klaviyo_consumer_lag_records", "klaviyo_consumer_lag_seconds")
        }
        await wait_for_series(http, server, caught_up, seconds=30)
        rules = await server.get(http, "/api/v1/rules")
        async with http.get(f"{service.url}/metrics") as response:
            exposition = await response.read()

    unhealthy = [
        (r["name"], r.get("lastError"))
        for g in rules["groups"]
        for r in g["rules"]
        if r["health"] != "ok"
    ]
    assert not unhealthy, f"Prometheus could not evaluate: {unhealthy}"

    promtool = await asyncio.to_thread(
        subprocess.run,
        [str(server.promtool), "check", "metrics"],
        input=exposition,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert promtool.returncode == 0, (promtool.stdout + promtool.stderr).decode()


def test_alert_signals_keep_their_inputs_and_drop_only_thresholds() -> None:
    assert signal("absent(klaviyo_consumer_build_info)") == "klaviyo_consumer_build_info"
    assert signal("sum(a) > 0.01\nand\nmax(b) == 0") == "sum(a) > bool 0.01 and max(b) == bool 0"
    assert set(alert_queries()) == {
        f"alert {r['alert']}"
        for g in yaml.safe_load(ALERTS.read_text())["groups"]
        for r in g["rules"]
    }
