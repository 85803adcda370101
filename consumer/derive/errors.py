"""The one error derivation raises, and only internally.

Parsing a record deep inside a helper is simplest when the helper can stop at the first bad
field. ``InvalidRecord`` carries the dead-letter code and message up to the entry point, which
catches it (the boundary) and returns a dead-lettered ``Derivation``: no exception ever leaves
the public functions of ``consumer.derive`` because of input data.
"""

from __future__ import annotations

from consumer.derive.outcome import DeadLetterCode, DeadLetterReason
from consumer.errors import ConsumerError

__all__ = ["InvalidRecord"]


class InvalidRecord(ConsumerError):
    """A record breaks its contract; ``reason`` is what the record is dead-lettered with."""

    def __init__(self, code: DeadLetterCode, message: str) -> None:
        super().__init__(message)
        self.reason = DeadLetterReason(code, message)

    @classmethod
    def missing(cls, where: str) -> InvalidRecord:
        """A required field is absent or null."""
        return cls(DeadLetterCode.MISSING_FIELD, f"{where} is missing")

    @classmethod
    def invalid(cls, where: str, why: str) -> InvalidRecord:
        """A field has an impossible value; ``why`` must not quote customer data."""
        return cls(DeadLetterCode.INVALID_VALUE, f"{where} {why}")

    @classmethod
    def out_of_range(cls, where: str, why: str) -> InvalidRecord:
        """An amount does not fit the contract's decimal type."""
        return cls(DeadLetterCode.AMOUNT_OUT_OF_RANGE, f"{where} {why}")
