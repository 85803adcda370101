"""Per-partition state of the derive stage and its compacted changelog encoding."""

from consumer.state.shipments import (
    STATE_FORMAT_VERSION,
    OrderState,
    ShipmentState,
    StateFormatError,
    TrackedItem,
    decode_order_state,
    encode_order_state,
)
from consumer.state.store import PartitionStore, StateStore

__all__ = [
    "STATE_FORMAT_VERSION",
    "OrderState",
    "PartitionStore",
    "ShipmentState",
    "StateFormatError",
    "StateStore",
    "TrackedItem",
    "decode_order_state",
    "encode_order_state",
]
