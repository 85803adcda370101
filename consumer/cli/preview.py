"""``klaviyo-consumer preview``: what Klaviyo would receive for some input records.

For upstream teams checking their data: it reads records, derives them exactly as the service
does (same decoder, same derivation, same request builder), and prints the Klaviyo request
bodies per merchant as JSON, each checked against the vendored Klaviyo contract, together with
every skip and dead-letter reason. Nothing is sent anywhere.

Inputs, in the order given (order records build tracking state across inputs):

- a JSON file: an array of records (or one record) as in ``schemas/examples/``; the subject is
  ``--subject`` or inferred from the file name (``orders.json``, ``returns-2.json``, ...).
  Each record is encoded with the subject's newest schema and decoded again, so a record that
  does not fit the contract fails here as it would on the topic;
- a binary file: one Avro value with its framing (single-object encoding, or Confluent framing
  when ``schema_registry.url`` is configured), e.g. a value saved from the topic;
- ``--topic TOPIC``: the values on a topic now, from the beginning of every partition up to
  its end when the command starts (or ``--max-records``), read-committed, without joining a
  group or committing anything.

Settings: with ``--merchant M`` only M's records are derived, with M's real settings, read
from the integrations topic (its API key stays encrypted and is never read: preview needs
no key-encryption key). Without it every merchant in the input gets an assumed demo
integration: order tracking and marketing enabled, list ids and tracking page template from
the flags. The output's ``settings`` says which were used. After the records, stall timers due at
``--now`` are swept, so ``stalled_in_transit`` shows too. Exit status 1 when any record is
dead-lettered or any request breaks the contract, 2 when an input cannot be read, else 0.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from consumer.cli.preview_inputs import (
    NO_KEY,
    SUBJECTS,
    Input,
    InputReader,
    infer_subject,
    integration_record,
    keyless_settings,
)
from consumer.decode import SchemaRegistryUnavailable
from consumer.deliver.request_builder import (
    EVENTS_PATH,
    SUBSCRIPTIONS_PATH,
    build_event_bulk_request,
    build_subscription_request,
    event_key,
    subscription_group,
)
from consumer.derive import (
    Derivation,
    DeriveConfig,
    derive_order,
    derive_return,
    derive_storefront_event,
    due_timers,
)
from consumer.integrations.codec import SETTINGS_FIELDS
from consumer.kafka import KafkaError
from consumer.klaviyo.contract import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES, validate_request
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import EventOperation, Operation, SubscriptionOperation
from consumer.settings import Settings, load_settings
from consumer.state.shipments import OrderState

__all__ = ["MerchantSource", "Preview", "register"]

BATCH_LIMIT = 1_000  # events per bulk request and profiles per subscription request
DEMO_MERCHANT = MerchantSettings(
    merchant_id="",
    api_key=NO_KEY,
    enabled=True,
    order_tracking_enabled=True,
    marketing_enabled=True,
)


@dataclass(frozen=True)
class MerchantSource:
    """The settings records are derived with, and what the output says about them.

    ``template`` is given every merchant's id (None: no integration, as the service would
    see it); ``only`` limits the preview to one merchant's records.
    """

    template: MerchantSettings | None
    origin: str
    only: str | None = None

    def settings(self, merchant_id: str) -> MerchantSettings | None:
        """The settings of ``merchant_id``."""
        return None if self.template is None else replace(self.template, merchant_id=merchant_id)

    def describe(self) -> dict[str, Any]:
        """JSON view: where the settings come from and their non-secret values."""
        values = None
        if self.template is not None:
            values = {name: getattr(self.template, name) for name in SETTINGS_FIELDS}
        return {"merchant": self.only, "source": self.origin, "values": values}


def register(subparsers: Any) -> None:
    """Add the ``preview`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "preview",
        help="Print the Klaviyo requests that input records would produce (sends nothing).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="JSON or Avro file.")
    parser.add_argument("--subject", choices=SUBJECTS, help="Subject of every FILE and TOPIC.")
    parser.add_argument(
        "--topic", action="append", default=[], help="Also read this Kafka topic (repeatable)."
    )
    parser.add_argument(
        "--max-records", type=int, default=10_000, help="Read at most this many per topic."
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="Stop reading a topic after this many seconds."
    )
    parser.add_argument(
        "--merchant",
        help="Only this merchant's records, with its real settings from the integrations topic.",
    )
    parser.add_argument("--email-list-id", help="Demo merchant's email list id.")
    parser.add_argument("--sms-list-id", help="Demo merchant's SMS list id.")
    parser.add_argument(
        "--tracking-page-url-template",
        help="TrackingPageLink template ({order_name}, {order_id}, {shipment_id}, "
        "{tracking_number}).",
    )
    parser.add_argument("--default-country", default="US", help="Region for national phones.")
    parser.add_argument("--default-currency", default="USD", help="Currency when none is given.")
    parser.add_argument(
        "--now", type=_aware, help="Derive as of this ISO time (default: the current time)."
    )
    parser.set_defaults(handler=_run)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Preview:
    """Derives records with the source's settings and collects what would go to Klaviyo."""

    source: MerchantSource
    now: datetime
    config: DeriveConfig
    states: dict[str, OrderState] = field(default_factory=dict)
    operations: dict[str, list[Operation]] = field(default_factory=dict)
    skips: list[dict[str, str | None]] = field(default_factory=list)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    left_out: int = 0
    """Records of other merchants than ``source.only``."""

    def add(self, item: Input) -> None:
        """Derive one input and collect its outcome."""
        if item.record is None:
            self.dead_letters.append(
                {"source": item.source, "reason": "unreadable", "message": item.error or ""}
            )
            return
        record = item.record
        merchant_id = str(record.get("merchant_id") or "")
        if self.source.only is not None and merchant_id != self.source.only:
            self.left_out += 1
            return
        merchant = self.source.settings(merchant_id)
        if item.subject == "returns":
            result = derive_return(record, merchant, self.now, self.config)
        elif item.subject == "storefront-events":
            result = derive_storefront_event(record, merchant, self.now, self.config)
        else:
            order_id = str(record.get("order_id"))
            result = derive_order(
                record, merchant, self.states.get(order_id), self.now, self.config
            )
            if result.state is not None:
                self.states[order_id] = result.state
        self._collect(item.source, result)

    def sweep_timers(self) -> None:
        """Send the stall events due at ``now`` for every order seen."""
        for order_id, state in sorted(self.states.items()):
            merchant = self.source.settings(state.merchant_id)
            result = due_timers(order_id, state, merchant, self.now, self.config)
            if result.state is not None:
                self.states[order_id] = result.state
            self._collect(f"timer:{order_id}", result)

    def _collect(self, source: str, result: Derivation) -> None:
        for op in result.operations:
            self.operations.setdefault(op.merchant_id, []).append(op)
        for skip in result.skips:
            self.skips.append(
                {"source": source, "reason": skip.reason.value, "detail": skip.detail}
            )
        if result.dead_letter is not None:
            self.dead_letters.append(
                {
                    "source": source,
                    "reason": result.dead_letter.code.value,
                    "message": result.dead_letter.message,
                }
            )

    def requests(self) -> dict[str, list[dict[str, Any]]]:
        """Per merchant, the Klaviyo requests with their contract violations (empty = valid)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for merchant_id, ops in sorted(self.operations.items()):
            out[merchant_id] = [
                {
                    "operation_id": operation_id,
                    "method": "POST",
                    "path": path,
                    "body": body,
                    "violations": [
                        {"pointer": v.pointer, "rule": v.rule, "message": v.message}
                        for v in validate_request(operation_id, body, now=self.now)
                    ],
                }
                for operation_id, path, body in _bodies(ops)
            ]
        return out

    def report(self) -> dict[str, Any]:
        """The whole preview as JSON-able data."""
        requests = self.requests()
        ops = [op for merchant_ops in self.operations.values() for op in merchant_ops]
        return {
            "now": self.now.isoformat(),
            "settings": self.source.describe(),
            "requests": requests,
            "skips": self.skips,
            "dead_letters": self.dead_letters,
            "counts": {
                "events": sum(isinstance(op, EventOperation) for op in ops),
                "subscriptions": sum(isinstance(op, SubscriptionOperation) for op in ops),
                "skips": dict(Counter(s["reason"] or "" for s in self.skips)),
                "dead_letters": len(self.dead_letters),
                "other_merchants_left_out": self.left_out,
                "violations": sum(len(r["violations"]) for rs in requests.values() for r in rs),
            },
        }


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH_LIMIT):
        yield items[start : start + BATCH_LIMIT]


def _bodies(ops: Sequence[Operation]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    events: dict[tuple[str, str, str], EventOperation] = {}
    for op in ops:
        if isinstance(op, EventOperation):
            # Klaviyo fails a whole request that repeats (profile, metric, unique_id); it
            # would record such a repeat once anyway, so keep the first.
            events.setdefault(event_key(op), op)
    for chunk in _chunks(list(events.values())):
        yield BULK_CREATE_EVENTS, EVENTS_PATH, build_event_bulk_request(chunk)
    groups: dict[Any, list[SubscriptionOperation]] = {}
    for op in ops:
        if isinstance(op, SubscriptionOperation):
            groups.setdefault(subscription_group(op), []).append(op)
    for group in groups.values():
        for chunk in _chunks(group):
            yield BULK_SUBSCRIBE_PROFILES, SUBSCRIPTIONS_PATH, build_subscription_request(chunk)


def _topic_subject(settings: Settings, topic: str, given: str | None) -> str | None:
    if given:
        return given
    names = {
        settings.topics.returns: "returns",
        settings.topics.orders: "orders",
        settings.topics.storefront_events: "storefront-events",
    }
    return names.get(topic) or infer_subject(Path(topic))


def _inputs(
    args: argparse.Namespace, settings: Settings
) -> tuple[list[tuple[str, str, Path | None]], list[str]]:
    """(name, subject, path or None for a topic) per input, and the names without a subject."""
    inputs: list[tuple[str, str, Path | None]] = []
    unknown: list[str] = []
    for path in args.files:
        subject = args.subject or infer_subject(path)
        if subject is None:
            unknown.append(str(path))
        else:
            inputs.append((str(path), subject, path))
    for topic in args.topic:
        subject = _topic_subject(settings, topic, args.subject)
        if subject is None:
            unknown.append(topic)
        else:
            inputs.append((topic, subject, None))
    return inputs, unknown


def _merchant_source(args: argparse.Namespace, settings: Settings) -> MerchantSource:
    """``--merchant``'s real settings, or the demo integration built from the flags."""
    if args.merchant is None:
        demo = replace(
            DEMO_MERCHANT,
            email_list_id=args.email_list_id,
            sms_list_id=args.sms_list_id,
            tracking_page_url_template=args.tracking_page_url_template,
            default_country=args.default_country,
            default_currency=args.default_currency,
        )
        origin = (
            "assumed: a demo integration with order tracking and marketing on, for every "
            "merchant (give --merchant M to use M's real settings)"
        )
        return MerchantSource(demo, origin)
    topic = settings.topics.integrations
    record = integration_record(settings, args.merchant, args.timeout)
    if record is None:
        origin = f"integrations topic {topic!r}: no integration (the service skips its records)"
        return MerchantSource(None, origin, args.merchant)
    real = keyless_settings(record)
    origin = (
        f"integrations topic {topic!r}: record of {record.updated_at.isoformat()} "
        f"by {record.updated_by} (API key not read)"
    )
    return MerchantSource(real, origin, args.merchant)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    inputs, unknown = _inputs(args, settings)
    if unknown or not inputs:
        print(
            f"klaviyo-consumer preview: cannot tell the subject of {', '.join(unknown)}; "
            f"pass --subject ({', '.join(SUBJECTS)})"
            if unknown
            else "klaviyo-consumer preview: give at least one FILE or --topic",
            file=sys.stderr,
        )
        return 2
    try:
        source = _merchant_source(args, settings)
    except (KafkaError, TimeoutError) as exc:
        topic = settings.topics.integrations
        print(f"klaviyo-consumer preview: cannot read {topic}: {exc}", file=sys.stderr)
        return 2
    now = args.now or datetime.now(UTC)
    preview = Preview(source, now, DeriveConfig.from_settings(settings.derive))
    reader = InputReader(settings)
    for name, subject, path in inputs:
        try:
            if path is None:
                items = list(reader.read_topic(name, subject, args.max_records, args.timeout))
            else:
                items = list(reader.read(path, subject))
        except (OSError, orjson.JSONDecodeError, KafkaError, SchemaRegistryUnavailable) as exc:
            print(f"klaviyo-consumer preview: cannot read {name}: {exc}", file=sys.stderr)
            return 2
        for item in items:
            preview.add(item)
    preview.sweep_timers()
    report = preview.report()
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    counts = report["counts"]
    return 1 if counts["dead_letters"] or counts["violations"] else 0
