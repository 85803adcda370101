"""``stalled_in_transit``: the one trigger no input record carries, driven by the runtime's clock.

A shipment whose last status is in transit and that has had no carrier scan for the stall
threshold (the merchant's ``stall_threshold_hours``, else the service default) is stalled.
The runtime indexes each order by ``next_timer_at`` and calls ``due_timers`` with its ``now``
once that moment has passed; calling early or twice is harmless (nothing is due, or the
shipment is already marked stalled).

The event is dated at the moment the shipment *became* stalled (last scan + threshold), not at
``now``: the unique_id (``tracking:{shipment_id}:stalled_in_transit:{that moment}``) is then
the same however late or often the sweep runs, and a sweep after a long outage sends it with
``backfill``. The next scan with a known status clears the stall and is sent as news.

Retention is a timer too: ``expires_at`` says when an order's tracking state is removed (see
its docstring); the runtime deletes it then, which tombstones it on the changelog.

Cancelled orders do not stall. When the merchant is no longer served (not integrated,
disabled, tracking off) the due stall is consumed without an event — marked in the state so the
timer does not fire forever — and counted as a skip.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from consumer.derive.config import DeriveConfig
from consumer.derive.gating import Feature, gate
from consumer.derive.limits import checked
from consumer.derive.outcome import Derivation, Skip, SkipReason
from consumer.derive.tracking import TrackingContext
from consumer.derive.triggers import Trigger, mark_stalled, stall_due_at
from consumer.merchant import MerchantSettings
from consumer.outbox.operations import Operation
from consumer.state.shipments import OrderState

__all__ = ["TERMINAL_STATUSES", "due_timers", "expires_at", "next_timer_at"]

TERMINAL_STATUSES = frozenset(
    {Trigger.DELIVERED, Trigger.RETURN_TO_SENDER, Trigger.CANCELLED, Trigger.FAILURE}
)
"""Carrier statuses after which a shipment has no more news to send."""


def next_timer_at(
    state: OrderState, merchant: MerchantSettings | None, config: DeriveConfig
) -> datetime | None:
    """The earliest moment a shipment of this order can stall, or None if none can.

    Recompute it whenever the order's state or the merchant's settings change.
    """
    if state.cancelled_sent:
        return None
    threshold = config.stall_threshold_for(merchant)
    due = [at for s in state.shipments if (at := stall_due_at(s, threshold)) is not None]
    return min(due, default=None)


def expires_at(state: OrderState, config: DeriveConfig) -> datetime:
    """When the tracking state of this order is removed, unless it changes before.

    A finished order (cancelled, or every shipment in a terminal status) is kept
    ``finished_retention`` after its last change, any other ``idle_retention``: long enough for
    late carrier scans of a delivered parcel to still count as repeats. A terminal shipment of
    an order with live ones goes with its order. A removed order that shows up again starts
    afresh: its once-per-order events carry the same unique_id, so Klaviyo drops the repeat.
    """
    finished = state.cancelled_sent or (
        bool(state.shipments) and all(s.last_status in TERMINAL_STATUSES for s in state.shipments)
    )
    # Values written before retention existed have no touched_at: the record time stands in.
    last_change = state.touched_at or state.updated_at
    return last_change + (config.finished_retention if finished else config.idle_retention)


def due_timers(
    order_id: str,
    state: OrderState,
    merchant: MerchantSettings | None,
    now: datetime,
    config: DeriveConfig,
) -> Derivation:
    """The ``stalled_in_transit`` events due at ``now`` for one order, and the new state.

    Returns an empty derivation when nothing is due.

    Raises:
        ValueError: ``state`` belongs to another order (a caller bug).
    """
    if state.order_id != order_id:
        raise ValueError("state of another order passed to due_timers")
    if state.cancelled_sent:
        return Derivation()
    threshold = config.stall_threshold_for(merchant)
    due = [
        (shipment, at)
        for shipment in state.shipments
        if (at := stall_due_at(shipment, threshold)) is not None and at <= now
    ]
    if not due:
        return Derivation()

    current = replace(state, touched_at=now)
    for shipment, _ in due:
        current = current.with_shipment(mark_stalled(shipment))
    served = gate(merchant, Feature.ORDER_TRACKING)
    if isinstance(served, SkipReason):
        skips = tuple(Skip(served, shipment.shipment_id) for shipment, _ in due)
        return Derivation(skips=skips, state=current)

    context = TrackingContext(served, state, now, config)
    operations: list[Operation] = []
    for shipment, at in due:
        operations += context.shipment_events(Trigger.STALLED_IN_TRANSIT, at, shipment)
    result = checked(operations, now, state=current)
    if result.dead_letter is not None:
        # No input record to park: consume the timer anyway so it does not fire forever.
        return replace(result, state=current)
    return result
