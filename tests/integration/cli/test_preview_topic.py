"""``preview --topic``: reads what is committed on a real topic and commits nothing."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from consumer.cli import preview
from consumer.decode import SchemaCatalog, encode_single_object
from consumer.decode.json_records import record_from_json
from consumer.klaviyo.events import iter_events
from consumer.paths import schemas_dir
from tests.integration.conftest import TopicFactory


def order_values() -> list[tuple[bytes, bytes]]:
    """The example order records as (key, single-object value), oldest first."""
    schema = SchemaCatalog().latest("orders").schema
    records = orjson.loads((schemas_dir() / "examples" / "orders.json").read_bytes())
    return [
        (r["order_id"].encode(), encode_single_object(schema, record_from_json(schema, r)))
        for r in records
    ]


def run_preview(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run the command as the CLI would; returns the exit code and the parsed output."""
    parser = argparse.ArgumentParser()
    preview.register(parser.add_subparsers())
    args = parser.parse_args(["preview", *argv])
    code: int = args.handler(args)
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out else {}


def test_preview_topic_reads_committed_records_in_order(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    bootstrap_servers: str,
    topic_factory: TopicFactory,
    produce: Callable[..., None],
) -> None:
    topic = topic_factory(partitions=2)
    values = order_values()
    produce(topic, values[:3], transactional=True)
    produce(topic, values[3:], transactional=True, commit=False)  # aborted: invisible
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", bootstrap_servers)
    code, report = run_preview(
        capsys, "--topic", topic, "--subject", "orders", "--now", "2026-11-20T00:00:00Z"
    )
    assert code == 0
    (request,) = report["requests"]["merchant-acme"]
    triggers = [
        event.attributes["properties"]["Trigger"]
        for event in iter_events("bulk_create_events", request["body"])
        if event.metric_name == "Order Tracking Update"
    ]
    assert triggers == ["order_created", "pre_transit", "in_transit"]
    assert request["violations"] == []


def test_preview_topic_missing_topic_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bootstrap_servers: str
) -> None:
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", bootstrap_servers)
    code, _ = run_preview(capsys, "--topic", "no-such-topic-for-preview", "--subject", "orders")
    assert code == 2
