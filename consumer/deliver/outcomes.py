"""The final outcome of each submitted operation, and the sink's counters.

Every ``Sink.submit(operation, token)`` ends in exactly one outcome, reported once:

- ``Accepted``: Klaviyo answered 202 for it (or for the identical operation it was coalesced
  with, ``duplicate=True``);
- ``DeadLettered``: Klaviyo rejected it (``detail`` is Klaviyo's text), or it can never be
  sent; write it to the dead-letter topic;
- ``Parked``: its merchant (or this endpoint of the merchant) cannot be served now; write it
  to the parked topic for a later replay.

All three finish the operation's outbox offset. ``reason`` values are short, stable strings,
safe as metric labels; no outcome carries an API key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

from consumer.outbox.operations import Operation

__all__ = ["SHUTDOWN", "Accepted", "DeadLettered", "DeliveryStats", "Outcome", "Parked"]

SHUTDOWN = "shutdown"
"""``Parked.reason`` of work still unfinished when ``Sink.close`` reached its deadline: the
runtime may leave it uncommitted (re-sent after restart) rather than write it to parked."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """Klaviyo accepted the operation (``duplicate``: via an identical in-flight one)."""

    token: Hashable
    operation: Operation
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """Klaviyo rejected the operation, or it cannot be sent at all; never retried."""

    token: Hashable
    operation: Operation
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Parked:
    """The operation's merchant or endpoint cannot be served now; replay it later."""

    token: Hashable
    operation: Operation
    reason: str
    detail: str = ""


Outcome = Accepted | DeadLettered | Parked


@dataclass(slots=True)
class DeliveryStats:
    """Plain counters of one sink (no merchant dimension: bounded for metrics)."""

    submitted: int = 0
    accepted: int = 0
    coalesced: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    parked: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    responses: Counter[str] = field(default_factory=Counter)  # by status ("0" = no answer)
    request_bytes: int = 0
    retries: int = 0
    splits: int = 0
    callback_errors: int = 0
    revoked: int = 0  # dropped without an outcome: their partition went to another owner

    @property
    def finished(self) -> int:
        """Operations with a final outcome."""
        return self.accepted + sum(self.dead_lettered.values()) + sum(self.parked.values())

    def count(self, outcome: Outcome) -> None:
        """Count one reported outcome."""
        if isinstance(outcome, Accepted):
            self.accepted += 1
        elif isinstance(outcome, DeadLettered):
            self.dead_lettered[outcome.reason] += 1
        else:
            self.parked[outcome.reason] += 1
