"""The Grafana dashboard of klaviyo-consumer, as code (grafana-foundation-sdk).

    python scripts/dashboard.py           # writes helm/klaviyo-consumer/files/dashboard.json
    python scripts/dashboard.py --check   # exits 1 if the committed file is stale

Every query selects ``namespace=~"$namespace", pod=~"$pod"`` on the ``$datasource`` variable;
tests/integration/ops/test_prometheus_scrape.py evaluates each of them against a real
Prometheus scraping the service and fails on one that returns nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

OUTPUT = Path(__file__).resolve().parents[1] / "helm/klaviyo-consumer/files/dashboard.json"
UID = "klaviyo-consumer"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
S = 'namespace=~"$namespace", pod=~"$pod"'
"""The selector every query starts with."""
M = "klaviyo_consumer_"
RATE = "[$__rate_interval]"


def query(expr: str, legend: str = "") -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    return built.legend_format(legend) if legend else built


def graph(
    title: str, description: str, unit: str, *queries: prometheus.Dataquery, width: int = 8
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(width)
        .height(8)
        .draw_style(GraphDrawStyle.LINE)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for ref, q in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(q.ref_id(ref))
    return panel


def single(title: str, description: str, unit: str, expr: str, width: int = 4) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr).ref_id("A"))
    )


def rate(metric: str, by: str, labels: str = "") -> str:
    selector = f"{S}, {labels}" if labels else S
    return f"sum by ({by}) (rate({M}{metric}{{{selector}}}{RATE}))"


def quantile(q: float, histogram: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({M}{histogram}_bucket{{{S}}}{RATE})))"


def freshness() -> list[Any]:
    return [
        single("Max lag", "Oldest unprocessed data over all groups and topics.", "s",
               f"max({M}lag_seconds{{{S}}})"),
        single("Outbox backlog", "Outbox records not yet delivered and committed.", "short",
               f"sum({M}outbox_backlog_records{{{S}}})"),
        graph("Lag (seconds)", "Age of the newest record read on partitions with uncommitted "
              "records; 0 when caught up.", "s",
              query(f"max by (group, topic) ({M}lag_seconds{{{S}}})", "{{group}} {{topic}}"),
              width=8),
        graph("Lag (records)", "Records the group has not committed yet.", "short",
              query(f"sum by (group, topic) ({M}lag_records{{{S}}})", "{{group}} {{topic}}"),
              width=8),
    ]  # fmt: skip


def throughput() -> list[Any]:
    return [
        graph("Records consumed", "Per stage and topic.", "reqps",
              query(rate("records_consumed_total", "stage, topic"), "{{stage}} {{topic}}")),
        graph("Operations derived", "Klaviyo operations written to the outbox.", "ops",
              query(rate("operations_derived_total", "kind, metric"), "{{kind}} {{metric}}")),
        graph("Records skipped", "Skipped on purpose, by reason.", "ops",
              query(rate("records_skipped_total", "reason"), "{{reason}}")),
        graph("Operations delivered", "Final outcome of each outbox operation.", "ops",
              query(rate("operations_delivered_total", "outcome"), "{{outcome}}")),
    ]  # fmt: skip


def failures() -> list[Any]:
    ratio = f"{rate('dead_letters_total', 'stage')} / {rate('records_consumed_total', 'stage')}"
    errors = f"sum by (stage, error) (increase({M}record_errors_total{{{S}}}{RATE}))"
    return [
        graph("Dead letters", "Records written to the dead-letter topic, by stage and reason.",
              "ops", query(rate("dead_letters_total", "stage, reason"), "{{stage}} {{reason}}"),
              width=6),
        graph("Dead-letter ratio", "Share of consumed records dead-lettered (alert: 1%).",
              "percentunit", query(ratio, "{{stage}}"), width=6),
        graph("Record errors", "Records dead-lettered as internal_error after an unexpected "
              "error: a bug (alert: any). Past the breaker threshold the stage stops.", "short",
              query(errors, "{{stage}} {{error}}"), width=6),
        graph("Parked", "Operations parked, by reason; merchants parked now.", "short",
              query(rate("parked_operations_total", "reason"), "parked/s {{reason}}"),
              query(f"max by (pod) ({M}merchants_parked{{{S}}})", "merchants parked {{pod}}"),
              width=6),
    ]  # fmt: skip


def klaviyo() -> list[Any]:
    failed = rate("klaviyo_requests_total", "endpoint", 'status_class=~"5xx|none"')
    errors = f"{failed} / {rate('klaviyo_requests_total', 'endpoint')}"
    events = (
        f"{rate('klaviyo_events_per_request_sum', 'endpoint')}"
        f" / {rate('klaviyo_events_per_request_count', 'endpoint')}"
    )
    return [
        graph("Requests", "Requests to Klaviyo by endpoint and status class (none = no answer).",
              "reqps", query(rate("klaviyo_requests_total", "endpoint, status_class"),
                             "{{endpoint}} {{status_class}}")),
        graph("Error ratio", "5xx and unanswered requests (alert: 5%).", "percentunit",
              query(errors, "{{endpoint}}")),
        graph("Latency", "Request duration percentiles.", "s",
              query(quantile(0.5, "klaviyo_request_duration_seconds", "endpoint"),
                    "p50 {{endpoint}}"),
              query(quantile(0.99, "klaviyo_request_duration_seconds", "endpoint"),
                    "p99 {{endpoint}}")),
        graph("429s and retries", "Rate-limited answers and requests sent again.", "reqps",
              query(rate("klaviyo_throttled_total", "endpoint"), "429 {{endpoint}}"),
              query(rate("klaviyo_retries_total", "endpoint"), "retries {{endpoint}}")),
        graph("Rate-limit wait", "Seconds per second lanes waited for the rate limiter.", "s",
              query(rate("klaviyo_rate_limit_wait_seconds_total", "endpoint"), "{{endpoint}}")),
        graph("Events per request", "Operations in one request: mean and p90.", "short",
              query(events, "mean {{endpoint}}"),
              query(quantile(0.9, "klaviyo_events_per_request", "endpoint"), "p90 {{endpoint}}")),
        graph("In flight", "Outbox operations submitted to Klaviyo and not yet finished.",
              "short", query(f"sum by (pod) ({M}operations_in_flight{{{S}}})", "{{pod}}")),
    ]  # fmt: skip


def transactions() -> list[Any]:
    return [
        graph("Transactions", "Derive-stage Kafka transactions by outcome.", "ops",
              query(rate("transactions_total", "outcome"), "{{outcome}}"), width=12),
        graph("Commit duration", "Time to commit one derive checkpoint.", "s",
              query(f"histogram_quantile(0.5, sum by (le) "
                    f"(rate({M}checkpoint_duration_seconds_bucket{{{S}}}{RATE})))", "p50"),
              query(f"histogram_quantile(0.99, sum by (le) "
                    f"(rate({M}checkpoint_duration_seconds_bucket{{{S}}}{RATE})))", "p99"),
              width=12),
    ]  # fmt: skip


def rebalances() -> list[Any]:
    increase = f"sum by (stage, kind) (increase({M}rebalances_total{{{S}}}{RATE}))"
    dropped = f"sum by (cause) (increase({M}operations_dropped_total{{{S}}}{RATE}))"
    return [
        graph("Rebalances", "Assignments, revocations and losses per stage.", "short",
              query(increase, "{{stage}} {{kind}}"), width=5),
        graph("Partitions assigned", "Per pod and stage.", "short",
              query(f"sum by (pod, stage) ({M}partitions_assigned{{{S}}})", "{{pod}} {{stage}}"),
              width=5),
        graph("Operations dropped", "Unfinished outbox operations given up with a revoked or "
              "lost partition; its next owner sends them again.", "short",
              query(dropped, "{{cause}}"), width=4),
        graph("State restore time", "Seconds spent reading tracking state back.", "s",
              query(f"sum by (pod) (increase({M}state_restore_duration_seconds_sum{{{S}}}{RATE}))",
                    "{{pod}}"), width=5),
        graph("State entries restored", "Tracking-state entries read from the changelog.",
              "short",
              query(f"sum by (pod) (increase({M}state_restored_entries_total{{{S}}}{RATE}))",
                    "{{pod}}"), width=5),
    ]  # fmt: skip


def runtime() -> list[Any]:
    restarts = f"sum by (stage, error) (increase({M}stage_restarts_total{{{S}}}{RATE}))"
    reader_deaths = f"sum by (error) (increase({M}integrations_reader_failures_total{{{S}}}{RATE}))"
    return [
        graph("Stage restarts", "Stages rebuilt in place after a Kafka client failed.", "short",
              query(restarts, "{{stage}} {{error}}")),
        graph("Since last poll", "Seconds since each consume loop last polled.", "s",
              query(f"time() - max by (pod, stage) "
                    f"({M}consume_loop_last_turn_timestamp_seconds{{{S}}})", "{{pod}} {{stage}}")),
        graph("Integrations reader", "1 while the integrations table follows its topic, 0 = "
              "merchant settings may be stale (alert: 0 for 5 m); reader deaths by error.",
              "short",
              query(f"min by (pod) ({M}integrations_reader_up{{{S}}})", "up {{pod}}"),
              query(reader_deaths, "died {{error}}")),
        graph("CPU", "Process CPU use.", "percentunit",
              query(f"sum by (pod) (rate(process_cpu_seconds_total{{{S}}}{RATE}))", "{{pod}}")),
        graph("Memory", "Resident memory.", "bytes",
              query(f"sum by (pod) (process_resident_memory_bytes{{{S}}})", "{{pod}}")),
        graph("Version", "build_info of each pod.", "short",
              query(f"max by (pod, version) ({M}build_info{{{S}}})", "{{pod}} {{version}}")),
    ]  # fmt: skip


ROWS = {
    "Freshness": freshness,
    "Throughput and outcomes": throughput,
    "Dead letters and parks": failures,
    "Klaviyo": klaviyo,
    "Transactions and commits": transactions,
    "Rebalances and restores": rebalances,
    "Runtime": runtime,
}


def variables() -> list[Any]:
    def label_values(name: str, selector: str) -> dashboard.QueryVariable:
        return (
            dashboard.QueryVariable(name)
            .label(name.capitalize())
            .datasource(DATASOURCE)
            .query(f"label_values({M}build_info{selector}, {name})")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )

    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        label_values("namespace", ""),
        label_values("pod", '{namespace=~"$namespace"}'),
    ]


def build() -> dict[str, Any]:
    """The dashboard as the JSON document Grafana imports."""
    board = (
        dashboard.Dashboard("klaviyo-consumer")
        .uid(UID)
        .description("Freshness, throughput, failures and Klaviyo delivery of klaviyo-consumer.")
        .tags(["klaviyo-consumer", "kafka"])
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .editable()
    )
    for variable in variables():
        board = board.with_variable(variable)
    for title, panels in ROWS.items():
        board = board.with_row(dashboard.Row(title))
        for panel in panels():
            board = board.with_panel(panel)
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python scripts/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
