"""Operations for Klaviyo and their encoding on the outbox topic (key = merchant id)."""

from consumer.outbox.codec import FORMAT_VERSION, decode_operation, encode_operation
from consumer.outbox.errors import OutboxFormatError
from consumer.outbox.operations import (
    Channel,
    EventOperation,
    Operation,
    Profile,
    PropertyValue,
    SubscriptionOperation,
)

__all__ = [
    "FORMAT_VERSION",
    "Channel",
    "EventOperation",
    "Operation",
    "OutboxFormatError",
    "Profile",
    "PropertyValue",
    "SubscriptionOperation",
    "decode_operation",
    "encode_operation",
]
