"""Which tracking trigger one carrier update means for one shipment.

A shipment's update is *applied* when its carrier event time is newer than the last applied
one; an older update is ``stale_update`` and an equal one a repeat (``repeated_trigger``), and
neither touches the state. An applied update sends at most **one** trigger, chosen by
``PRECEDENCE`` among:

- the *status trigger*: the carrier status (``status_detail == "delivery_attempted"`` turns
  any status but DELIVERED into ``delivery_attempted``), when it differs from the last status
  seen, or when the shipment was marked stalled (a new scan after a stall is news);
- an *ETA trigger*, only while the parcel is pre-transit or in transit: ``delayed`` when the
  ETA moved later than the previous ETA, ``arriving_early`` when it moved earlier *and* is now
  earlier than the first promised ETA.

The chosen trigger is not sent when it equals the last trigger sent (``repeated_trigger``).
The status and ETA seen are recorded either way, so a trigger that lost on precedence is not
sent later by a plain repeat of the same status.

Precedence, first wins: delivered, available_for_pickup, return_to_sender, failure, cancelled,
error, delivery_attempted, out_for_delivery, delayed, arriving_early, in_transit, pre_transit.
Milestones a customer acts on beat ETA news; ETA news beats a routine "still moving".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from consumer.derive.outcome import SkipReason
from consumer.state.shipments import ShipmentState

__all__ = [
    "CARRIER_STATUSES",
    "PRECEDENCE",
    "CarrierUpdate",
    "Step",
    "Trigger",
    "apply_update",
    "mark_stalled",
    "stall_due_at",
    "status_trigger",
]


class Trigger(StrEnum):
    """The ``Trigger`` property values of the product spec (exact strings)."""

    ORDER_CREATED = "order_created"
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    STALLED_IN_TRANSIT = "stalled_in_transit"
    DELAYED = "delayed"
    ARRIVING_EARLY = "arriving_early"
    RETURN_TO_SENDER = "return_to_sender"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    ERROR = "error"


CARRIER_STATUSES: dict[str, Trigger | None] = {
    "UNKNOWN": None,
    "PRE_TRANSIT": Trigger.PRE_TRANSIT,
    "IN_TRANSIT": Trigger.IN_TRANSIT,
    "OUT_FOR_DELIVERY": Trigger.OUT_FOR_DELIVERY,
    "DELIVERED": Trigger.DELIVERED,
    "AVAILABLE_FOR_PICKUP": Trigger.AVAILABLE_FOR_PICKUP,
    "RETURN_TO_SENDER": Trigger.RETURN_TO_SENDER,
    "FAILURE": Trigger.FAILURE,
    "CANCELLED": Trigger.CANCELLED,
    "ERROR": Trigger.ERROR,
}
"""The orders contract's ``CarrierStatus`` symbols → the trigger each means (UNKNOWN: none)."""

PRECEDENCE: tuple[Trigger, ...] = (
    Trigger.DELIVERED,
    Trigger.AVAILABLE_FOR_PICKUP,
    Trigger.RETURN_TO_SENDER,
    Trigger.FAILURE,
    Trigger.CANCELLED,
    Trigger.ERROR,
    Trigger.DELIVERY_ATTEMPTED,
    Trigger.OUT_FOR_DELIVERY,
    Trigger.DELAYED,
    Trigger.ARRIVING_EARLY,
    Trigger.IN_TRANSIT,
    Trigger.PRE_TRANSIT,
)
"""When one update implies several triggers, the first in this order is sent."""

DELIVERY_ATTEMPTED_DETAIL = "delivery_attempted"

# ETA moves only mean something while the parcel is on its way; after an attempt or delivery
# the carrier's ETA churn is noise.
_ETA_STATUSES = frozenset({None, Trigger.PRE_TRANSIT, Trigger.IN_TRANSIT})


def status_trigger(status: Trigger | None, detail: str | None) -> Trigger | None:
    """The trigger a carrier status (already mapped by ``CARRIER_STATUSES``) and detail mean."""
    if (
        detail is not None
        and detail.strip().lower() == DELIVERY_ATTEMPTED_DETAIL
        and status is not Trigger.DELIVERED
    ):
        return Trigger.DELIVERY_ATTEMPTED
    return status


@dataclass(frozen=True, slots=True)
class CarrierUpdate:
    """The tracking part of one shipment in an order record."""

    status: Trigger | None
    event_at: datetime | None
    first_eta: datetime | None = None
    eta: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What one update does: the shipment's new state, and a trigger to send or a skip."""

    shipment: ShipmentState
    trigger: Trigger | None = None
    skip: SkipReason | None = None


def _known(value: str | None) -> Trigger | None:
    # State written by a newer version may name a trigger this one does not know: treat it
    # as "nothing seen" rather than failing the order forever.
    try:
        return Trigger(value) if value else None
    except ValueError:
        return None


def _eta_trigger(
    previous: ShipmentState, update: CarrierUpdate, effective: Trigger | None
) -> Trigger | None:
    if effective not in _ETA_STATUSES or update.eta is None:
        return None
    before = previous.current_eta or update.first_eta
    if before is None:
        return None
    if update.eta > before:
        return Trigger.DELAYED
    promised = update.first_eta or previous.first_eta or before
    if update.eta < before and update.eta < promised:
        return Trigger.ARRIVING_EARLY
    return None


def apply_update(previous: ShipmentState, update: CarrierUpdate) -> Step:
    """Apply ``update`` to ``previous`` (see the module docstring for the rules)."""
    event_at = update.event_at
    if event_at is None:
        return Step(previous, skip=SkipReason.NO_CARRIER_EVENT)
    last = previous.last_event_at
    if last is not None and event_at < last:
        return Step(previous, skip=SkipReason.STALE_UPDATE)
    if last is not None and event_at == last:
        return Step(previous, skip=SkipReason.REPEATED_TRIGGER)

    status = update.status
    last_status = _known(previous.last_status)
    status_is_news = status is not None and (status != last_status or previous.stalled)
    eta_trigger = _eta_trigger(previous, update, status or last_status)
    candidates = {eta_trigger, status if status_is_news else None} - {None}
    chosen = next((t for t in PRECEDENCE if t in candidates), None)

    skip: SkipReason | None = None
    if chosen is None:
        skip = SkipReason.UNKNOWN_STATUS if status is None else SkipReason.REPEATED_TRIGGER
    elif chosen == previous.last_trigger:
        chosen, skip = None, SkipReason.REPEATED_TRIGGER

    shipment = replace(
        previous,
        last_trigger=chosen.value if chosen else previous.last_trigger,
        last_status=status.value if status else previous.last_status,
        last_event_at=event_at,
        # Only a scan with a known status proves the parcel moved (restarts the stall clock).
        last_scan_at=event_at if status else previous.last_scan_at,
        first_eta=update.first_eta or previous.first_eta or previous.current_eta or update.eta,
        current_eta=update.eta or previous.current_eta,
        stalled=False if status else previous.stalled,
    )
    return Step(shipment, chosen, skip)


def stall_due_at(shipment: ShipmentState, threshold: timedelta) -> datetime | None:
    """When ``shipment`` counts as stalled in transit if no scan comes first; else None.

    Only an in-transit shipment that is not already marked stalled can stall.
    """
    if (
        shipment.stalled
        or shipment.last_status != Trigger.IN_TRANSIT
        or shipment.last_scan_at is None
    ):
        return None
    return shipment.last_scan_at + threshold


def mark_stalled(shipment: ShipmentState) -> ShipmentState:
    """The shipment after ``stalled_in_transit`` was sent for it."""
    return replace(shipment, stalled=True, last_trigger=Trigger.STALLED_IN_TRANSIT.value)
