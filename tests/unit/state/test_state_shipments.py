"""OrderState: changelog encoding round-trips exactly and refuses what it cannot read."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.outbox.operations import Profile
from consumer.state import (
    STATE_FORMAT_VERSION,
    OrderState,
    ShipmentState,
    StateFormatError,
    TrackedItem,
    decode_order_state,
    encode_order_state,
)

# hypothesis bounds are naive by its API; the values it draws are aware (UTC).
moments = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
texts = st.text(min_size=1, max_size=20)
optional_texts = st.none() | texts

profiles = st.builds(
    Profile,
    email=optional_texts,
    phone_number=optional_texts,
    external_id=optional_texts,
    first_name=optional_texts,
    last_name=optional_texts,
)
items = st.builds(
    TrackedItem,
    line_item_id=texts,
    product_name=st.text(max_size=20),
    quantity=st.integers(1, 10_000),
    sku=optional_texts,
    variant_name=optional_texts,
)
shipments = st.builds(
    ShipmentState,
    shipment_id=texts,
    tracking_number=texts,
    items=st.lists(items, max_size=4).map(tuple),
    last_trigger=optional_texts,
    last_status=optional_texts,
    last_event_at=st.none() | moments,
    last_scan_at=st.none() | moments,
    first_eta=st.none() | moments,
    current_eta=st.none() | moments,
    stalled=st.booleans(),
    shipped_at=st.none() | moments,
    delivered_at=st.none() | moments,
)
states = st.builds(
    OrderState,
    order_id=texts,
    merchant_id=texts,
    order_name=texts,
    profile=profiles,
    created_at=moments,
    updated_at=moments,
    order_created_sent=st.booleans(),
    cancelled_sent=st.booleans(),
    shipments=st.lists(shipments, max_size=3).map(tuple),
    touched_at=st.none() | moments,
)


@given(states)
def test_order_state_encode_decode_round_trips(state: OrderState) -> None:
    # Texts are non-empty: derivation never stores "" (an empty profile field is left out).
    assert decode_order_state(encode_order_state(state)) == state


@given(states)
def test_order_state_encoding_is_deterministic(state: OrderState) -> None:
    assert encode_order_state(state) == encode_order_state(
        decode_order_state(encode_order_state(state))
    )


def test_order_state_encoding_is_compact_and_plain_json_still_reads() -> None:
    state = OrderState(
        order_id="o",
        merchant_id="m",
        order_name="#1",
        profile=Profile(email="a@b.co"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    # What a value looked like before compression: the same document, uncompressed.
    plain = orjson.dumps(
        {"v": STATE_FORMAT_VERSION, "o": "o", "m": "m", "n": "#1", "p": {"e": "a@b.co"},
         "c": 1_767_225_600_000_000, "u": 1_767_225_600_000_000, "s": []}
    )  # fmt: skip
    assert decode_order_state(plain) == state
    assert len(encode_order_state(state)) < len(plain) < 120


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\x01not zstd",
        b"[]",
        b'{"v": 99, "o": "o"}',
        b'{"v": 1}',
        b'{"v": 1, "o": "o", "m": "m", "n": "#", "p": {}, "c": "soon", "u": 0, "s": []}',
        b'{"v": 1, "o": "o", "m": "m", "n": "#", "p": {}, "c": 0, "u": 0, "s": [{"i": "s"}]}',
        b'{"v": 1, "o": "o", "m": "m", "n": "#", "p": {}, "c": 0, "u": 0, "s": 3}',
        b'{"v": 1, "o": "o", "m": "m", "n": "#", "p": {"e": 5}, "c": 0, "u": 0, "s": []}',
        b'{"v": 1, "o": "o", "m": "m", "n": "#", "p": {}, "c": 0, "u": 0,'
        b' "s": [{"i": "s", "tn": "t", "it": [["l", "p", "2"]]}]}',
        b'{"v": 1, "o": "o", "m": "m", "n": "#", "p": {}, "c": 99999999999999999999, "u": 0,'
        b' "s": []}',
    ],
)
def test_order_state_decode_unreadable_raises_state_format_error(payload: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_order_state(payload)


def test_order_state_with_shipment_replaces_by_id_and_appends_new() -> None:
    state = OrderState(
        order_id="o",
        merchant_id="m",
        order_name="#1",
        profile=Profile(email="a@b.co"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        shipments=(ShipmentState("s1", "t1"), ShipmentState("s2", "t2")),
    )
    replaced = state.with_shipment(ShipmentState("s1", "t1", stalled=True))
    assert [s.stalled for s in replaced.shipments] == [True, False]
    appended = state.with_shipment(ShipmentState("s3", "t3"))
    assert [s.shipment_id for s in appended.shipments] == ["s1", "s2", "s3"]
    assert appended.shipment("s9") is None
