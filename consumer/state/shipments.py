"""What order tracking remembers about one order between records, and its changelog encoding.

One ``OrderState`` per order id lives in the derive stage's state store and, after each
checkpoint, on the compacted tracking-state changelog topic (key = order id). It holds:

- whether the order-level triggers were sent (``order_created`` once per order, ``cancelled``
  once per cancelled order);
- per shipment, what trigger derivation needs to decide the next one (last trigger sent, last
  carrier status seen, the last applied carrier event time, first and current ETA, last scan,
  stall flag);
- the order facts a timer needs to build a ``stalled_in_transit`` event with no input record in
  hand (order name, customer profile, the shipment's items, tracking number and dates).

The encoding is versioned JSON with short keys (as the outbox uses): optional keys that older
readers ignore, and times as integer microseconds since the epoch, so a value round-trips
exactly. ``"v"`` is the format version; a reader refuses versions it does not know instead of
guessing. The JSON is written zstd-compressed against a fixed dictionary (prefix byte
``0x01``): a typical order shrinks from ~530 to ~130 bytes, which is what the store keeps in
memory and what a restore copies without decoding. Plain JSON values (written before
compression) are still read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import zstandard

from consumer.errors import ConsumerError
from consumer.outbox.operations import Profile

__all__ = [
    "STATE_FORMAT_VERSION",
    "OrderState",
    "ShipmentState",
    "StateFormatError",
    "TrackedItem",
    "decode_order_state",
    "encode_order_state",
]

STATE_FORMAT_VERSION = 1

# A representative value: zstd finds the keys and common shapes in it, so even a single small
# value compresses well. Frozen forever: values on the changelog were compressed against it
# (a different dictionary needs a new prefix byte).
_DICTIONARY = zstandard.ZstdCompressionDict(
    b'{"v":1,"o":"merchant-ord-1000","m":"merchant","n":"#1000","p":{"e":"customer@example.com",'
    b'"ph":"+14155550100","x":"merchant-cust-1000","fn":"Customer","ln":"Example"},'
    b'"c":1767938100000000,"u":1767952500000000,"t":1767952500000000,"s":[{"i":"merchant-ord-'
    b'1000-s1","tn":"1Z000000001000","it":[["li_0","Slim Jeans",1,"JEANS-32","32"],["li_1",'
    b'"Organic T-Shirt",2,"TSHIRT-BLU-M","Blue / M"]],"lt":"in_transit","ls":"in_transit",'
    b'"le":1767952500000000,"sc":1767952500000000,"fe":1768283700000000,"ce":1768283700000000,'
    b'"sh":1767945300000000,"dl":1767952500000000}],"oc":1,"cx":1}'
    b'"lt":"delivered","ls":"delivered""lt":"out_for_delivery","ls":"out_for_delivery"',
    dict_type=zstandard.DICT_TYPE_RAWCONTENT,
)
_COMPRESSED = b"\x01"
_COMPRESSOR = zstandard.ZstdCompressor(level=1, dict_data=_DICTIONARY, write_checksum=False)
_DECOMPRESSOR = zstandard.ZstdDecompressor(dict_data=_DICTIONARY)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class StateFormatError(ConsumerError):
    """A changelog value cannot be read as an ``OrderState`` (corrupt or an unknown version)."""

    reason = "state_format"


@dataclass(frozen=True, slots=True)
class TrackedItem:
    """One order line in a shipment, resolved to what an Order Tracking Update Item shows."""

    line_item_id: str
    product_name: str
    quantity: int
    sku: str | None = None
    variant_name: str | None = None


@dataclass(frozen=True, slots=True)
class ShipmentState:
    """Tracking state of one shipment.

    ``last_trigger`` is the last trigger *sent*; ``last_status`` the last trigger the carrier
    status alone implied (kept apart so an ETA trigger such as ``delayed`` does not make the next
    plain ``in_transit`` scan look like news). ``last_event_at`` is the carrier event time of the
    last applied update: older or equal updates are not applied again. ``last_scan_at`` is the
    last applied update with a known carrier status, the clock ``stalled_in_transit`` runs on.
    """

    shipment_id: str
    tracking_number: str
    items: tuple[TrackedItem, ...] = ()
    last_trigger: str | None = None
    last_status: str | None = None
    last_event_at: datetime | None = None
    last_scan_at: datetime | None = None
    first_eta: datetime | None = None
    current_eta: datetime | None = None
    stalled: bool = False
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderState:
    """Tracking state of one order (the changelog key is ``order_id``).

    ``updated_at`` is the ``updated_at`` of the newest order record applied: order facts
    (name, profile, shipment items) are only overwritten by a record at least as new.
    ``touched_at`` is None only in values written before retention existed.
    """

    order_id: str
    merchant_id: str
    order_name: str
    profile: Profile
    created_at: datetime
    updated_at: datetime
    order_created_sent: bool = False
    cancelled_sent: bool = False
    shipments: tuple[ShipmentState, ...] = ()
    touched_at: datetime | None = None
    """The runtime's ``now`` when this state last changed (retention counts from it)."""

    def shipment(self, shipment_id: str) -> ShipmentState | None:
        """The state of ``shipment_id``, or None if the order has no such shipment yet."""
        for shipment in self.shipments:
            if shipment.shipment_id == shipment_id:
                return shipment
        return None

    def with_shipment(self, shipment: ShipmentState) -> OrderState:
        """A copy with ``shipment`` replacing the one with its id (or appended)."""
        if self.shipment(shipment.shipment_id) is None:
            return replace(self, shipments=(*self.shipments, shipment))
        return replace(
            self,
            shipments=tuple(
                shipment if s.shipment_id == shipment.shipment_id else s for s in self.shipments
            ),
        )


# --- encoding ---------------------------------------------------------------------------------

_PROFILE_KEYS = (
    ("e", "email"),
    ("ph", "phone_number"),
    ("x", "external_id"),
    ("fn", "first_name"),
    ("ln", "last_name"),
)
_SHIPMENT_TIMES = (
    ("le", "last_event_at"),
    ("sc", "last_scan_at"),
    ("fe", "first_eta"),
    ("ce", "current_eta"),
    ("sh", "shipped_at"),
    ("dl", "delivered_at"),
)


def _micros(moment: datetime) -> int:
    # Integer arithmetic on a timedelta is exact; a float timestamp() would lose microseconds.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _moment(value: object) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise StateFormatError("a time is not an integer")
    try:
        return _EPOCH + timedelta(0, 0, value)
    except OverflowError:
        raise StateFormatError("a time is out of range") from None


def _item_out(item: TrackedItem) -> list[Any]:
    return [item.line_item_id, item.product_name, item.quantity, item.sku, item.variant_name]


def _shipment_out(shipment: ShipmentState) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "i": shipment.shipment_id,
        "tn": shipment.tracking_number,
        "it": [_item_out(item) for item in shipment.items],
    }
    if shipment.last_trigger is not None:
        doc["lt"] = shipment.last_trigger
    if shipment.last_status is not None:
        doc["ls"] = shipment.last_status
    for short, name in _SHIPMENT_TIMES:
        value = getattr(shipment, name)
        if value is not None:
            doc[short] = _micros(value)
    if shipment.stalled:
        doc["st"] = 1
    return doc


def encode_order_state(state: OrderState) -> bytes:
    """Serialise ``state`` for the tracking-state changelog (compact, versioned)."""
    profile = {
        short: value for short, name in _PROFILE_KEYS if (value := getattr(state.profile, name))
    }
    doc: dict[str, Any] = {
        "v": STATE_FORMAT_VERSION,
        "o": state.order_id,
        "m": state.merchant_id,
        "n": state.order_name,
        "p": profile,
        "c": _micros(state.created_at),
        "u": _micros(state.updated_at),
        "s": [_shipment_out(s) for s in state.shipments],
    }
    if state.order_created_sent:
        doc["oc"] = 1
    if state.cancelled_sent:
        doc["cx"] = 1
    if state.touched_at is not None:
        doc["t"] = _micros(state.touched_at)
    return _COMPRESSED + _COMPRESSOR.compress(orjson.dumps(doc))


# --- decoding ---------------------------------------------------------------------------------


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise StateFormatError(f"field {key!r} is missing or not a string")
    return value


def _optional_text(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise StateFormatError("an optional text field is not a string")
    return value


def _item_in(raw: object) -> TrackedItem:
    if not isinstance(raw, list) or len(raw) != 5:
        raise StateFormatError("a shipment item is not a 5-element list")
    line_item_id, product_name, quantity, sku, variant_name = raw
    if not isinstance(line_item_id, str) or not isinstance(product_name, str):
        raise StateFormatError("a shipment item has no line id or product name")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise StateFormatError("a shipment item quantity is not an integer")
    return TrackedItem(
        line_item_id, product_name, quantity, _optional_text(sku), _optional_text(variant_name)
    )


def _optional_moment(raw: Mapping[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    return None if value is None else _moment(value)


def _shipment_in(raw: object) -> ShipmentState:
    if not isinstance(raw, dict):
        raise StateFormatError("a shipment is not an object")
    items = raw.get("it", [])
    if not isinstance(items, list):
        raise StateFormatError("shipment items are not a list")
    # Positional, in field order: this runs for every order record that finds state.
    return ShipmentState(
        _text(raw, "i"),
        _text(raw, "tn"),
        tuple(_item_in(item) for item in items),
        _optional_text(raw.get("lt")),
        _optional_text(raw.get("ls")),
        _optional_moment(raw, "le"),
        _optional_moment(raw, "sc"),
        _optional_moment(raw, "fe"),
        _optional_moment(raw, "ce"),
        raw.get("st") == 1,
        _optional_moment(raw, "sh"),
        _optional_moment(raw, "dl"),
    )


def decode_order_state(data: bytes) -> OrderState:
    """Parse a changelog value written by ``encode_order_state``.

    Raises:
        StateFormatError: not JSON, an unknown format version, or a missing/mistyped field.
    """
    try:
        if data[:1] == _COMPRESSED:
            data = _DECOMPRESSOR.decompress(data[1:])
        doc = orjson.loads(data)
    except zstandard.ZstdError:
        raise StateFormatError("changelog value is not zstd with the state dictionary") from None
    except orjson.JSONDecodeError:
        raise StateFormatError("changelog value is not JSON") from None
    if not isinstance(doc, dict):
        raise StateFormatError("changelog value is not an object")
    if doc.get("v") != STATE_FORMAT_VERSION:
        raise StateFormatError(f"unknown state format version {doc.get('v')!r}")
    profile = doc.get("p")
    shipments = doc.get("s", [])
    if not isinstance(profile, dict) or not isinstance(shipments, list):
        raise StateFormatError("profile or shipments have the wrong type")
    return OrderState(
        order_id=_text(doc, "o"),
        merchant_id=_text(doc, "m"),
        order_name=_text(doc, "n"),
        profile=Profile(
            **{name: _optional_text(profile.get(short)) for short, name in _PROFILE_KEYS}
        ),
        created_at=_moment(doc.get("c")),
        updated_at=_moment(doc.get("u")),
        order_created_sent=doc.get("oc") == 1,
        cancelled_sent=doc.get("cx") == 1,
        shipments=tuple(_shipment_in(s) for s in shipments),
        touched_at=_moment(doc["t"]) if "t" in doc else None,
    )
