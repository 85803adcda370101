"""Errors of the outbox format."""

from consumer.errors import ConsumerError

__all__ = ["OutboxFormatError"]


class OutboxFormatError(ConsumerError):
    """An outbox record cannot be read; it is dead-lettered with this reason."""

    reason = "outbox_format"
