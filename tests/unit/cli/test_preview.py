"""``klaviyo-consumer preview``: example records become request bodies Klaviyo accepts."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumer.cli import preview
from consumer.cli.main import COMMAND_MODULES
from consumer.cli.preview_inputs import infer_subject
from consumer.decode import SchemaCatalog, encode_single_object
from consumer.decode.json_records import record_from_json
from consumer.klaviyo.contract import validate_request
from consumer.klaviyo.events import iter_events
from consumer.paths import schemas_dir

EXAMPLES = schemas_dir() / "examples"
NOW = "2026-11-28T00:00:00Z"
FLAGS = [
    "--email-list-id",
    "EMAIL_LIST",
    "--sms-list-id",
    "SMS_LIST",
    "--tracking-page-url-template",
    "https://track.example.com/{order_name}?t={tracking_number}",
    "--now",
    NOW,
]
SEED_METRICS = {
    "Return Created",
    "Return Created Item",
    "Order Tracking Update",
    "Order Tracking Update Item",
    "Customer Account Created",
    "Product Added to Wishlist",
}


def run_preview(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run the command as the CLI would; returns the exit code and the parsed output.

    Standard error is written back so a test can still read it from ``capsys``.
    """
    parser = argparse.ArgumentParser()
    preview.register(parser.add_subparsers())
    args = parser.parse_args(["preview", *argv])
    code: int = args.handler(args)
    captured = capsys.readouterr()
    sys.stderr.write(captured.err)
    return code, orjson.loads(captured.out) if captured.out else {}


def all_requests(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every request of every merchant."""
    return [r for requests in report["requests"].values() for r in requests]


def test_preview_is_a_registered_command() -> None:
    assert "preview" in COMMAND_MODULES


def test_preview_examples_yield_valid_requests_for_every_seed_metric(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [str(EXAMPLES / f"{s}.json") for s in ("returns", "orders", "storefront-events")]
    code, report = run_preview(capsys, *files, *FLAGS)
    assert code == 0
    requests = all_requests(report)
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
    for request in requests:
        assert validate_request(request["operation_id"], request["body"], now=now) == []
        assert request["violations"] == []
    metrics = {
        event.metric_name
        for request in requests
        if request["operation_id"] == "bulk_create_events"
        for event in iter_events("bulk_create_events", request["body"])
    }
    assert metrics == SEED_METRICS
    assert set(report["requests"]) == {"merchant-acme", "merchant-bolt"}
    assert report["counts"]["subscriptions"] == 2
    assert report["counts"]["skips"] == {"no_consent": 1}
    assert report["dead_letters"] == []


def test_preview_subscriptions_use_flag_list_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_preview(capsys, str(EXAMPLES / "storefront-events.json"), *FLAGS)
    assert code == 0
    lists = {
        r["body"]["data"]["relationships"]["list"]["data"]["id"]
        for r in all_requests(report)
        if r["operation_id"] == "bulk_subscribe_profiles"
    }
    assert lists == {"EMAIL_LIST", "SMS_LIST"}


def test_preview_without_list_ids_reports_skip(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_preview(capsys, str(EXAMPLES / "storefront-events.json"), "--now", NOW)
    assert code == 0
    assert report["counts"]["skips"] == {"no_consent": 1, "list_not_configured": 2}


def test_preview_in_transit_order_past_threshold_shows_stall(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    records = orjson.loads((EXAMPLES / "orders.json").read_bytes())[:3]  # up to in transit
    path = tmp_path / "orders-stuck.json"
    path.write_bytes(orjson.dumps(records))
    code, report = run_preview(capsys, str(path), "--now", "2026-12-05T00:00:00Z")
    assert code == 0
    (request,) = all_requests(report)
    triggers = [
        e.attributes["properties"]["Trigger"]
        for e in iter_events("bulk_create_events", request["body"])
        if e.metric_name == "Order Tracking Update"
    ]
    assert triggers == ["order_created", "pre_transit", "in_transit", "stalled_in_transit"]


def test_preview_single_object_binary_file_is_decoded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    schema = SchemaCatalog().latest("returns").schema
    record = record_from_json(schema, orjson.loads((EXAMPLES / "returns.json").read_bytes())[1])
    path = tmp_path / "value.avro"
    path.write_bytes(encode_single_object(schema, record))
    code, report = run_preview(capsys, str(path), "--subject", "returns", "--now", NOW)
    assert code == 0
    assert report["counts"]["events"] == 2
    assert list(report["requests"]) == ["merchant-bolt"]


def test_preview_record_breaking_contract_is_reported_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    returns = orjson.loads((EXAMPLES / "returns.json").read_bytes())
    returns[0]["items"][0]["quantity"] = 0
    del returns[1]["order_name"]
    path = tmp_path / "returns.json"
    path.write_bytes(orjson.dumps(returns))
    code, report = run_preview(capsys, str(path), "--now", NOW)
    assert code == 1
    reasons = [(d["source"].rsplit("[", 1)[1], d["reason"]) for d in report["dead_letters"]]
    assert reasons == [("0]", "invalid_value"), ("1]", "unreadable")]


def test_preview_unknown_subject_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(b"[]")
    code, _ = run_preview(capsys, str(path))
    assert code == 2
    assert "--subject" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("orders.json", "orders"),
        ("returns-2026.json", "returns"),
        ("storefront-events_v2.json", "storefront-events"),
        ("ordersX.json", None),
        ("klaviyo-integrations.json", None),
    ],
)
def test_preview_infer_subject_from_file_name(name: str, subject: str | None) -> None:
    assert infer_subject(Path(name)) == subject
