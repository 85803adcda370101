"""Order Tracking Update (+ Item): every trigger, every seed property, repeats and stale updates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from consumer.derive import (
    DeadLetterCode,
    Derivation,
    SkipReason,
    Trigger,
    derive_order,
    due_timers,
    tracking_link,
)
from consumer.merchant import MerchantSettings
from consumer.state.shipments import OrderState
from tests.unit.derive.records import (
    CONFIG,
    ITEM,
    MERCHANT,
    NOW,
    UPDATE,
    at,
    events,
    merchant,
    order_record,
    shipment,
)

T1 = at("2026-11-25T16:00:00Z")  # label created
T2 = at("2026-11-26T08:00:00Z")  # first in-transit scan
T3 = at("2026-11-27T09:00:00Z")  # the update under test


def run(
    *records: dict[str, Any],
    settings: MerchantSettings | None = MERCHANT,
    state: OrderState | None = None,
) -> tuple[list[Derivation], OrderState | None]:
    """Derive ``records`` in order, threading the state as the runtime does."""
    results = []
    for record in records:
        result = derive_order(record, settings, state, NOW, CONFIG)
        results.append(result)
        state = result.state or state
    return results, state


def in_transit_state() -> OrderState:
    """Order #1001 after order_created, pre_transit (T1) and in_transit (T2), ETA Nov 30."""
    _, state = run(
        order_record(shipment(carrier_status="PRE_TRANSIT", carrier_event_at=T1, shipped_at=None)),
        order_record(shipment(carrier_event_at=T2)),
    )
    assert state is not None
    return state


def triggers(result: Derivation) -> list[str]:
    """The Trigger of each Order Tracking Update in ``result``."""
    return [str(e.properties["Trigger"]) for e in events(result.operations, UPDATE)]


def after_in_transit(**changes: Any) -> Derivation:
    """Derive an update at T3 (with ``changes`` to the shipment) on top of in-transit state."""
    record = order_record(shipment(carrier_event_at=T3, **changes))
    return derive_order(record, MERCHANT, in_transit_state(), NOW, CONFIG)


def _stalled() -> Derivation:
    state = in_transit_state()
    return due_timers("ord_1001", state, MERCHANT, T2 + CONFIG.stall_threshold, CONFIG)


SCENARIOS: dict[Trigger, Callable[[], Derivation]] = {
    Trigger.ORDER_CREATED: lambda: run(order_record())[0][0],
    Trigger.PRE_TRANSIT: lambda: derive_order(
        order_record(shipment(carrier_status="PRE_TRANSIT", carrier_event_at=T1)),
        MERCHANT,
        run(order_record())[1],
        NOW,
        CONFIG,
    ),
    Trigger.IN_TRANSIT: lambda: run(
        order_record(shipment(carrier_status="PRE_TRANSIT", carrier_event_at=T1)),
        order_record(shipment(carrier_event_at=T2)),
    )[0][1],
    Trigger.OUT_FOR_DELIVERY: lambda: after_in_transit(carrier_status="OUT_FOR_DELIVERY"),
    Trigger.DELIVERED: lambda: after_in_transit(carrier_status="DELIVERED", delivered_at=T3),
    Trigger.AVAILABLE_FOR_PICKUP: lambda: after_in_transit(carrier_status="AVAILABLE_FOR_PICKUP"),
    Trigger.RETURN_TO_SENDER: lambda: after_in_transit(carrier_status="RETURN_TO_SENDER"),
    Trigger.FAILURE: lambda: after_in_transit(carrier_status="FAILURE"),
    Trigger.CANCELLED: lambda: after_in_transit(carrier_status="CANCELLED"),
    Trigger.ERROR: lambda: after_in_transit(carrier_status="ERROR"),
    Trigger.DELIVERY_ATTEMPTED: lambda: after_in_transit(status_detail="delivery_attempted"),
    Trigger.DELAYED: lambda: after_in_transit(estimated_delivery_at=at("2026-12-02T18:00:00Z")),
    Trigger.ARRIVING_EARLY: lambda: after_in_transit(
        estimated_delivery_at=at("2026-11-28T18:00:00Z")
    ),
    Trigger.STALLED_IN_TRANSIT: _stalled,
}


def test_tracking_scenarios_cover_all_fourteen_triggers() -> None:
    assert set(SCENARIOS) == set(Trigger)
    assert len(Trigger) == 14


@pytest.mark.parametrize("trigger", list(SCENARIOS), ids=str)
def test_tracking_realistic_input_emits_trigger(trigger: Trigger) -> None:
    result = SCENARIOS[trigger]()
    assert result.dead_letter is None
    assert triggers(result)[-1] == trigger.value
    items = events(result.operations, ITEM)
    assert {i.properties["Trigger"] for i in items} >= {trigger.value}


@pytest.mark.parametrize("trigger", list(SCENARIOS), ids=str)
def test_tracking_trigger_repeated_and_stale_emit_nothing(trigger: Trigger) -> None:
    first = SCENARIOS[trigger]()
    assert first.state is not None
    state = first.state
    if trigger is Trigger.STALLED_IN_TRANSIT:
        again = due_timers("ord_1001", state, MERCHANT, NOW + timedelta(days=30), CONFIG)
        assert again.operations == ()
        return
    # Replaying the newest record is a repeat; a record from before it is stale.
    latest = {
        Trigger.ORDER_CREATED: order_record(),
        Trigger.PRE_TRANSIT: order_record(
            shipment(carrier_status="PRE_TRANSIT", carrier_event_at=T1)
        ),
        Trigger.IN_TRANSIT: order_record(shipment(carrier_event_at=T2)),
    }.get(trigger)
    if latest is None:  # the T3 scenarios: repeat the T3 record by re-deriving it on its state
        repeat = derive_order(
            order_record(shipment(carrier_event_at=T3, carrier_status="IN_TRANSIT")),
            MERCHANT,
            state,
            NOW,
            CONFIG,
        )
        assert triggers(repeat) == []
        assert repeat.skip_reasons == (SkipReason.REPEATED_TRIGGER,)
    else:
        repeat = derive_order(latest, MERCHANT, state, NOW, CONFIG)
        assert repeat.operations == ()
        assert repeat.skip_reasons == (SkipReason.REPEATED_TRIGGER,)
    if trigger is Trigger.ORDER_CREATED:
        # No shipment yet: an older record of the order is the stale case.
        stale_record = order_record(updated_at=at("2026-11-25T10:00:00Z"))
        expected = (SkipReason.REPEATED_TRIGGER,)
    else:
        stale_record = order_record(
            shipment(carrier_event_at=T1 - timedelta(hours=1), carrier_status="DELIVERED")
        )
        expected = (SkipReason.STALE_UPDATE,)
    stale = derive_order(stale_record, MERCHANT, state, NOW, CONFIG)
    assert stale.operations == ()
    assert stale.skip_reasons == expected


UPDATE_PROPERTIES = {
    "Trigger": "delivered",
    "OrderRef": "#1001",
    "Date": "2026-11-27T09:00:00Z",
    "TrackingPageLink": "https://track.example.com/%231001/1Z999AA10123456784",
    "OrderCreatedDate": "2026-11-25T10:00:00Z",
    "OrderShippedDate": "2026-11-25T08:00:00Z",
    "OrderDeliveredDate": "2026-11-27T09:00:00Z",
    "EstimatedDeliveryDate": "2026-11-30T18:00:00Z",
}


@pytest.mark.parametrize(("name", "expected"), list(UPDATE_PROPERTIES.items()))
def test_order_tracking_update_property_has_seed_value(name: str, expected: str) -> None:
    result = after_in_transit(carrier_status="DELIVERED", delivered_at=T3)
    (event,) = events(result.operations, UPDATE)
    assert event.properties[name] == expected


def test_order_tracking_update_has_exactly_seed_properties_and_stable_ids() -> None:
    result = after_in_transit(carrier_status="DELIVERED", delivered_at=T3)
    (event,) = events(result.operations, UPDATE)
    assert dict(event.properties) == UPDATE_PROPERTIES
    assert event.time == T3
    assert event.unique_id == "tracking:shp_1:delivered:2026-11-27T09:00:00Z"
    assert event.value is None


ITEM_PROPERTIES = [
    {
        "Trigger": "delivered",
        "OrderRef": "#1001",
        "SKU": "TSHIRT-BLU-M",
        "ProductName": "Organic T-Shirt",
        "VariantName": "Blue / M",
        "Quantity": 1,
    },
    {
        "Trigger": "delivered",
        "OrderRef": "#1001",
        "SKU": "CAP-RED",
        "ProductName": "Baseball Cap",
        "VariantName": "Red",
        "Quantity": 2,
    },
]


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("name", list(ITEM_PROPERTIES[0]))
def test_order_tracking_update_item_property_has_seed_value(index: int, name: str) -> None:
    result = after_in_transit(carrier_status="DELIVERED", delivered_at=T3)
    items = events(result.operations, ITEM)
    assert items[index].properties[name] == ITEM_PROPERTIES[index][name]


def test_order_tracking_update_item_one_per_shipment_line_with_stable_ids() -> None:
    result = after_in_transit(carrier_status="DELIVERED", delivered_at=T3)
    items = events(result.operations, ITEM)
    assert [dict(i.properties) for i in items] == ITEM_PROPERTIES
    assert [i.unique_id for i in items] == [
        "tracking-item:shp_1:li_1:delivered:2026-11-27T09:00:00Z",
        "tracking-item:shp_1:li_2:delivered:2026-11-27T09:00:00Z",
    ]


def test_order_created_unknown_dates_are_omitted() -> None:
    (result,), _ = run(order_record())
    (event,) = events(result.operations, UPDATE)
    assert event.properties["Date"] == "2026-11-25T10:00:00Z"
    assert event.time == at("2026-11-25T10:00:00Z")
    assert not {"OrderShippedDate", "OrderDeliveredDate", "EstimatedDeliveryDate"} & set(
        event.properties
    )
    # The template needs {tracking_number}; an order-level event has none.
    assert "TrackingPageLink" not in event.properties
    assert event.unique_id == "order-tracking:ord_1001:order_created"
    assert len(events(result.operations, ITEM)) == 2


def test_order_created_sent_once_per_order_not_per_shipment() -> None:
    two = order_record(shipment(), shipment(shipment_id="shp_2", tracking_number="1Z2"))
    results, _ = run(
        two, order_record(shipment(), shipment(shipment_id="shp_3", tracking_number="1Z3"))
    )
    assert triggers(results[0]) == ["order_created", "in_transit", "in_transit"]
    assert triggers(results[1]) == ["in_transit"]


def test_order_cancelled_sends_cancelled_once() -> None:
    cancelled = order_record(cancelled_at=at("2026-11-26T12:00:00Z"))
    results, state = run(order_record(), cancelled, cancelled)
    assert triggers(results[1]) == ["cancelled"]
    (event,) = events(results[1].operations, UPDATE)
    assert event.properties["Date"] == "2026-11-26T12:00:00Z"
    assert results[2].operations == ()
    assert state is not None and state.cancelled_sent


def test_order_cancelled_with_cancelled_label_sends_cancelled_once() -> None:
    cancelled_at = at("2026-11-27T12:00:00Z")
    label = shipment(carrier_status="CANCELLED", carrier_event_at=T3)
    results, _ = run(order_record(label, cancelled_at=cancelled_at), state=in_transit_state())
    assert triggers(results[0]) == ["cancelled"]
    assert results[0].skip_reasons == (SkipReason.REPEATED_TRIGGER,)


def test_order_cancelled_after_every_label_cancelled_sends_nothing_more() -> None:
    label = shipment(carrier_status="CANCELLED", carrier_event_at=T3)
    results, state = run(
        order_record(label),
        order_record(label, cancelled_at=at("2026-11-27T12:00:00Z")),
        state=in_transit_state(),
    )
    assert triggers(results[0]) == ["cancelled"]
    assert triggers(results[1]) == []
    assert state is not None and state.cancelled_sent


def test_order_update_with_status_and_eta_change_sends_milestone_only() -> None:
    result = after_in_transit(
        carrier_status="OUT_FOR_DELIVERY", estimated_delivery_at=at("2026-12-02T18:00:00Z")
    )
    assert triggers(result) == ["out_for_delivery"]


def test_order_first_scan_with_eta_delay_sends_delayed_then_same_status_is_repeat() -> None:
    results, _ = run(
        order_record(shipment(carrier_status="PRE_TRANSIT", carrier_event_at=T1)),
        order_record(
            shipment(carrier_event_at=T2, estimated_delivery_at=at("2026-12-02T18:00:00Z"))
        ),
        order_record(
            shipment(carrier_event_at=T3, estimated_delivery_at=at("2026-12-02T18:00:00Z"))
        ),
    )
    assert triggers(results[1]) == ["delayed"]
    assert triggers(results[2]) == []
    assert results[2].skip_reasons == (SkipReason.REPEATED_TRIGGER,)


def test_order_second_delay_in_a_row_is_repeated_trigger() -> None:
    state = in_transit_state()
    results, _ = run(
        order_record(
            shipment(carrier_event_at=T3, estimated_delivery_at=at("2026-12-02T18:00:00Z"))
        ),
        order_record(
            shipment(
                carrier_event_at=T3 + timedelta(hours=5),
                estimated_delivery_at=at("2026-12-04T18:00:00Z"),
            )
        ),
        state=state,
    )
    assert triggers(results[0]) == ["delayed"]
    assert results[1].skip_reasons == (SkipReason.REPEATED_TRIGGER,)


def test_order_eta_recovering_but_later_than_promised_is_not_arriving_early() -> None:
    results, _ = run(
        order_record(
            shipment(carrier_event_at=T3, estimated_delivery_at=at("2026-12-04T18:00:00Z"))
        ),
        order_record(
            shipment(
                carrier_event_at=T3 + timedelta(hours=5),
                estimated_delivery_at=at("2026-12-01T18:00:00Z"),
            )
        ),
        state=in_transit_state(),
    )
    assert triggers(results[1]) == []


def test_order_delivery_attempt_when_delivered_is_delivered() -> None:
    result = after_in_transit(carrier_status="DELIVERED", status_detail="delivery_attempted")
    assert triggers(result) == ["delivered"]


def test_order_unknown_status_is_counted_skip() -> None:
    result = after_in_transit(carrier_status="UNKNOWN")
    assert result.operations == ()
    assert result.skip_reasons == (SkipReason.UNKNOWN_STATUS,)


def test_order_shipment_without_carrier_event_is_counted_skip() -> None:
    results, state = run(order_record(), order_record(shipment(carrier_event_at=None)))
    assert results[1].skip_reasons == (SkipReason.NO_CARRIER_EVENT,)
    assert state is not None and state.shipment("shp_1") is not None


def test_order_same_status_newer_scan_advances_state_without_event() -> None:
    state = in_transit_state()
    result = after_in_transit()
    assert result.operations == ()
    assert result.skip_reasons == (SkipReason.REPEATED_TRIGGER,)
    assert result.state is not None
    new = result.state.shipment("shp_1")
    assert new is not None and new.last_scan_at == T3
    old = state.shipment("shp_1")
    assert old is not None and old.last_scan_at == T2


def test_order_one_changed_shipment_of_two_emits_for_it_and_skips_other() -> None:
    other = shipment(shipment_id="shp_2", tracking_number="1Z2")
    _, state = run(order_record(shipment(), other))
    result = derive_order(
        order_record(shipment(carrier_status="DELIVERED", carrier_event_at=T3), other),
        MERCHANT,
        state,
        NOW,
        CONFIG,
    )
    assert triggers(result) == ["delivered"]
    assert [(s.reason, s.detail) for s in result.skips] == [(SkipReason.REPEATED_TRIGGER, "shp_2")]


def test_order_older_record_does_not_roll_back_order_facts() -> None:
    state = in_transit_state()
    old = order_record(
        shipment(carrier_status="DELIVERED", carrier_event_at=T3),
        order_name="#OLD",
        updated_at=at("2026-11-20T00:00:00Z"),
    )
    result = derive_order(old, MERCHANT, state, NOW, CONFIG)
    (event,) = events(result.operations, UPDATE)
    assert event.properties["OrderRef"] == "#1001"


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (None, SkipReason.MERCHANT_NOT_INTEGRATED),
        (merchant(enabled=False), SkipReason.INTEGRATION_DISABLED),
        (merchant(order_tracking_enabled=False), SkipReason.ORDER_TRACKING_DISABLED),
    ],
)
def test_order_unserved_merchant_is_skip_and_state_untouched(
    settings: MerchantSettings | None, reason: SkipReason
) -> None:
    result = derive_order(order_record(shipment()), settings, None, NOW, CONFIG)
    assert result.operations == ()
    assert result.skip_reasons == (reason,)
    assert result.state is None


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (
            order_record(shipment(items=[{"line_item_id": "li_9", "quantity": 1}])),
            DeadLetterCode.INVALID_VALUE,
        ),
        (
            order_record(shipment(items=[{"line_item_id": "li_1", "quantity": 0}])),
            DeadLetterCode.INVALID_VALUE,
        ),
        (order_record(shipment(), shipment()), DeadLetterCode.INVALID_VALUE),
        (order_record(shipment(carrier_status="LOST")), DeadLetterCode.INVALID_VALUE),
        (order_record(shipment(tracking_number=None)), DeadLetterCode.MISSING_FIELD),
        (order_record(order_name=None), DeadLetterCode.MISSING_FIELD),
        (order_record(customer={"phone": "12"}), DeadLetterCode.INVALID_PHONE),
    ],
)
def test_order_contract_breach_is_dead_lettered_without_state(
    record: dict[str, Any], code: DeadLetterCode
) -> None:
    result = derive_order(record, MERCHANT, in_transit_state(), NOW, CONFIG)
    assert result.dead_letter is not None
    assert result.dead_letter.code == code
    assert result.operations == ()
    assert result.state is None


def test_order_state_of_another_order_is_caller_error() -> None:
    state = replace(in_transit_state(), order_id="ord_other")
    with pytest.raises(ValueError, match="another order"):
        derive_order(order_record(), MERCHANT, state, NOW, CONFIG)


def test_order_split_line_in_one_shipment_is_one_item_event() -> None:
    split = shipment(
        items=[{"line_item_id": "li_2", "quantity": 1}, {"line_item_id": "li_2", "quantity": 1}]
    )
    (result,), _ = run(order_record(split))
    items = [i for i in events(result.operations, ITEM) if i.properties["Trigger"] == "in_transit"]
    assert [(i.properties["SKU"], i.properties["Quantity"]) for i in items] == [("CAP-RED", 2)]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("https://t.example.com/{order_name}", "https://t.example.com/%23A%2FB%20%26%3F"),
        (
            "https://t.example.com/o/{order_id}?s={shipment_id}",
            "https://t.example.com/o/ord%201?s=s%2F1",
        ),
        ("https://t.example.com/{tracking_number}", "https://t.example.com/1Z%2B9"),
        ("https://t.example.com/{unknown}", "https://t.example.com/{unknown}"),
        (None, None),
        ("", None),
    ],
)
def test_tracking_link_placeholders_are_url_encoded(
    template: str | None, expected: str | None
) -> None:
    link = tracking_link(
        template, order_name="#A/B &?", order_id="ord 1", shipment_id="s/1", tracking_number="1Z+9"
    )
    assert link == expected


def test_tracking_link_shipment_placeholder_without_shipment_is_omitted() -> None:
    assert tracking_link("https://t/{shipment_id}", order_name="#1", order_id="o") is None
