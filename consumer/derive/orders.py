"""Order Tracking Update events from the ``orders`` topic, with per-order state.

For merchants with order tracking enabled, one record (the full state of one order) yields:

1. ``order_created`` the first time the order is seen (once per order, timed at the order's
   ``created_at``, whatever shipments the first record already has);
2. ``cancelled`` once, when ``cancelled_at`` is first set (order-level, timed at
   ``cancelled_at``; carrier status CANCELLED is the per-shipment ``cancelled``). The customer
   hears "cancelled" once: after the order-level one, a shipment's CANCELLED is a repeat, and
   when every shipment already reported CANCELLED, the order-level one is not sent;
3. per shipment, at most one trigger from its carrier update (``triggers.apply_update``:
   stale and repeated updates emit nothing and are counted by reason).

Each trigger is one Order Tracking Update plus one Order Tracking Update Item per line.

State: ``None`` in means "order never seen"; the returned ``Derivation.state`` is the new state
(``None`` when nothing changed). Order facts (name, customer, shipment lines, dates) are taken
from a record only if it is at least as new (``updated_at``) as the newest one applied, so a
reordered old record cannot roll them back. Records of merchants that are skipped (not
integrated, disabled, tracking off) leave the state untouched: tracking starts from the first
record seen while it is enabled, and old events then carry ``backfill``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from consumer.derive import fields
from consumer.derive.config import DeriveConfig
from consumer.derive.errors import InvalidRecord
from consumer.derive.gating import Feature, gate
from consumer.derive.limits import checked
from consumer.derive.order_records import OrderRecord, read_order
from consumer.derive.outcome import Derivation, Skip, SkipReason
from consumer.derive.profiles import profile_from_customer
from consumer.derive.tracking import TrackingContext, with_carrier_dates
from consumer.derive.triggers import Trigger, apply_update
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import Operation, Profile
from consumer.state.shipments import OrderState, ShipmentState

__all__ = ["derive_order"]


def derive_order(
    record: Mapping[str, Any],
    merchant: MerchantSettings | None,
    state: OrderState | None,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    """The operations and new tracking state for one ``orders`` record.

    Never raises for bad input: contract breaches come back as ``dead_letter``.

    Raises:
        ValueError: ``state`` belongs to another order than the record (a caller bug).
    """
    try:
        order_id = fields.text(record, "order_id")
        fields.text(record, "merchant_id")
        served = gate(merchant, Feature.ORDER_TRACKING)
        if isinstance(served, SkipReason):
            return Derivation.skipped(served, order_id)
        if state is not None and state.order_id != order_id:
            raise ValueError("state of another order passed to derive_order")
        order = read_order(record)
        profile = profile_from_customer(order.customer, served.default_country)
    except InvalidRecord as exc:
        return Derivation(dead_letter=exc.reason)
    return _derive(order, profile, served, state, now, config)


def _merge_order(
    order: OrderRecord, profile: Profile, state: OrderState | None, cancelled_sent: bool
) -> OrderState:
    """The order's state with this record's facts (if newer), its shipments untouched, and
    the once-per-order triggers marked sent (order_created always, cancelled as given)."""
    if state is None:
        return OrderState(
            order_id=order.order_id,
            merchant_id=order.merchant_id,
            order_name=order.order_name,
            profile=profile,
            created_at=order.created_at,
            updated_at=order.updated_at,
            order_created_sent=True,
            cancelled_sent=cancelled_sent,
        )
    if order.updated_at < state.updated_at:
        if state.order_created_sent and state.cancelled_sent == cancelled_sent:
            return state
        return replace(state, order_created_sent=True, cancelled_sent=cancelled_sent)
    return replace(
        state,
        merchant_id=order.merchant_id,
        order_name=order.order_name,
        profile=profile,
        created_at=order.created_at,
        updated_at=order.updated_at,
        order_created_sent=True,
        cancelled_sent=cancelled_sent,
    )


def _merge_shipment(
    previous: ShipmentState | None, facts: ShipmentState, newer: bool
) -> ShipmentState:
    if previous is None:
        return facts
    if not newer:
        return previous
    # A date once known stays known even if a later record omits it.
    shipped_at = facts.shipped_at or previous.shipped_at
    delivered_at = facts.delivered_at or previous.delivered_at
    if (
        facts.tracking_number == previous.tracking_number
        and facts.items == previous.items
        and shipped_at == previous.shipped_at
        and delivered_at == previous.delivered_at
    ):
        return previous  # the common case: most shipments of a record did not change
    return replace(
        previous,
        tracking_number=facts.tracking_number,
        items=facts.items,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
    )


def _all_shipments_cancelled(state: OrderState) -> bool:
    # Every parcel already reported "cancelled" by its carrier: the order-level cancellation
    # would tell the customer nothing new.
    return bool(state.shipments) and all(
        s.last_trigger == Trigger.CANCELLED for s in state.shipments
    )


def _derive(
    order: OrderRecord,
    profile: Profile,
    merchant: MerchantSettings,
    state: OrderState | None,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    newer = state is None or order.updated_at >= state.updated_at
    send_created = state is None or not state.order_created_sent
    already_cancelled = state is not None and state.cancelled_sent
    current = _merge_order(
        order, profile, state, already_cancelled or order.cancelled_at is not None
    )
    context = TrackingContext(merchant, current, now, config)
    operations: list[Operation] = []
    skips: list[Skip] = []

    if send_created:
        operations += context.order_events(Trigger.ORDER_CREATED, current.created_at, order.lines)
    cancelled_at = None if already_cancelled else order.cancelled_at
    if cancelled_at is not None and not _all_shipments_cancelled(current):
        operations += context.order_events(Trigger.CANCELLED, cancelled_at, order.lines)

    # Shipments are updated in a list and the order copied once, not once per shipment.
    shipments = list(current.shipments)
    position = {s.shipment_id: i for i, s in enumerate(shipments)}
    for shipment in order.shipments:
        shipment_id = shipment.facts.shipment_id
        index = position.get(shipment_id)
        previous = None if index is None else shipments[index]
        merged = _merge_shipment(previous, shipment.facts, newer)
        step = apply_update(merged, shipment.update)
        after = with_carrier_dates(merged, step.shipment, shipment.update)
        if index is None:
            position[shipment_id] = len(shipments)
            shipments.append(after)
        else:
            shipments[index] = after
        trigger, skip = step.trigger, step.skip
        if trigger is Trigger.CANCELLED and current.cancelled_sent:
            # The order's cancellation already told the customer; a cancelled label is the
            # same news, and a second "cancelled" would run the merchant's flow twice.
            trigger, skip = None, SkipReason.REPEATED_TRIGGER
        if trigger is not None and shipment.update.event_at is not None:
            operations += context.shipment_events(trigger, shipment.update.event_at, after)
        elif skip is not None:
            skips.append(Skip(skip, shipment_id))
    if not operations and not skips:
        # Nothing new and no shipments: the order is known and order_created was sent.
        skips.append(Skip(SkipReason.REPEATED_TRIGGER, order.order_id))
    updated = tuple(shipments)
    unchanged = updated == current.shipments and (current is state or current == state)
    changed = None if unchanged else replace(current, shipments=updated, touched_at=now)
    return checked(operations, now, skips=skips, state=changed)
