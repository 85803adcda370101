"""The expected result of a run, computed by the pure derivation alone (no Kafka, no runtime).

Records go through an Avro round trip first, exactly as the service sees them, then through
the derive functions in publish order (per key order is what Kafka keeps), then timers at
``now``. Whatever the runtime does (crashes, rebalances, broker restarts), its committed outbox
must hold exactly these operations, and the sandbox exactly these events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from consumer.decode import RecordDecoder, SchemaCatalog, encode_single_object
from consumer.derive import (
    DeriveConfig,
    derive_order,
    derive_return,
    derive_storefront_event,
    due_timers,
    next_timer_at,
)
from consumer.devstack.traffic import InputRecord
from consumer.kafka import ConsumedMessage
from consumer.merchant import MerchantSettings
from consumer.outbox import EventOperation, Operation, SubscriptionOperation, encode_operation
from consumer.sandbox import Sandbox
from consumer.state.shipments import OrderState

__all__ = [
    "EventKey",
    "event_keys",
    "expected_operations",
    "expected_outbox",
    "outbox_content",
    "sandbox_event_keys",
    "sandbox_subscription_keys",
    "subscription_keys",
]

EventKey = tuple[str, str, str, str]
"""(merchant, profile identity, metric, unique_id): how Klaviyo counts an event."""


def _decoded(records: Sequence[InputRecord]) -> Iterable[tuple[InputRecord, dict[str, Any]]]:
    catalog = SchemaCatalog()
    decoders = {s: RecordDecoder(catalog, s, 10_000_000) for s in catalog.subjects}
    for record in records:
        version = catalog.latest(record.subject)  # its fingerprint costs more than the record
        payload = encode_single_object(version.schema, record.value, version.fingerprint)
        yield record, decoders[record.subject].decode(payload)


def expected_operations(
    records: Sequence[InputRecord],
    merchants: Mapping[str, MerchantSettings],
    now: datetime,
    config: DeriveConfig | None = None,
) -> list[Operation]:
    """Every operation a correct run derives from ``records``."""
    config = config or DeriveConfig()
    states: dict[str, OrderState] = {}
    operations: list[Operation] = []
    for record, value in _decoded(records):
        merchant = merchants.get(value["merchant_id"])
        if record.subject == "orders":
            result = derive_order(value, merchant, states.get(record.key), now, config)
            if result.state is not None:
                states[record.key] = result.state
        elif record.subject == "returns":
            result = derive_return(value, merchant, now, config)
        else:
            result = derive_storefront_event(value, merchant, now, config)
        operations.extend(result.operations)
    for order_id, state in states.items():
        merchant = merchants.get(state.merchant_id)
        due = next_timer_at(state, merchant, config)
        if due is not None and due <= now:
            operations.extend(due_timers(order_id, state, merchant, now, config).operations)
    return operations


def outbox_content(
    messages: Iterable[ConsumedMessage],
) -> Counter[tuple[bytes | None, bytes | None]]:
    """The outbox as a multiset of (key, value): order across partitions does not matter."""
    return Counter((m.key, m.value) for m in messages)


def expected_outbox(operations: Iterable[Operation]) -> Counter[tuple[bytes | None, bytes | None]]:
    """The outbox a correct run writes for ``operations``."""
    return Counter((op.merchant_id.encode(), encode_operation(op)) for op in operations)


def event_keys(operations: Iterable[Operation]) -> set[EventKey]:
    """How Klaviyo would count the events among ``operations``."""
    return {
        (op.merchant_id, op.profile.identity, op.metric, op.unique_id)
        for op in operations
        if isinstance(op, EventOperation)
    }


def subscription_keys(operations: Iterable[Operation]) -> set[tuple[str, str, str]]:
    """(merchant, list, identity) of the subscriptions among ``operations``."""
    return {
        (op.merchant_id, op.list_id, op.profile.identity)
        for op in operations
        if isinstance(op, SubscriptionOperation)
    }


def sandbox_event_keys(sandbox: Sandbox, accounts: Iterable[str]) -> list[EventKey]:
    """Every event the sandbox stored (a list: a duplicate would show twice)."""
    return [
        (account, event.key.profile.split(":", 1)[1], event.metric, event.unique_id)
        for account in accounts
        for event in sandbox.events(account)
    ]


def sandbox_subscription_keys(
    sandbox: Sandbox, accounts: Iterable[str]
) -> set[tuple[str, str, str]]:
    """(account, list, identity) of every subscription the sandbox accepted."""
    return {
        (account, sub.list_id or "", sub.email or sub.phone_number or "")
        for account in accounts
        for sub in sandbox.subscriptions(account)
    }
