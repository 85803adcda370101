"""What deriving one input record (or one timer sweep) produced.

Every input record ends in exactly one of three ways (the "nothing is lost silently"
guarantee): operations for the outbox, counted skips with a reason, or a dead-letter reason.
``Derivation`` carries all of them, plus the new tracking state when it changed.

Reason strings are stable: they become metric labels and dead-letter headers, so they come from
the two closed sets below and never carry record values (no e-mails, phones or keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consumer.outbox.operations import Operation
from consumer.state.shipments import OrderState

__all__ = [
    "DeadLetterCode",
    "DeadLetterReason",
    "Derivation",
    "Skip",
    "SkipReason",
]


class SkipReason(StrEnum):
    """Why (part of) a record produced no operation although nothing is wrong with it."""

    MERCHANT_NOT_INTEGRATED = "merchant_not_integrated"
    """No Klaviyo integration is configured for the record's merchant."""
    INTEGRATION_DISABLED = "integration_disabled"
    """The merchant's integration exists but is switched off."""
    ORDER_TRACKING_DISABLED = "order_tracking_disabled"
    """Order tracking events are off for the merchant."""
    MARKETING_DISABLED = "marketing_disabled"
    """A marketing-product sign-up, and the marketing product is off for the merchant."""
    RETURN_UPDATED = "return_updated"
    """A return change other than CREATED (only the submission is an event)."""
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    """A storefront event of type UNKNOWN (a newer upstream type this service does not know)."""
    STALE_UPDATE = "stale_update"
    """A carrier update older than the last one applied to its shipment."""
    REPEATED_TRIGGER = "repeated_trigger"
    """The update implies the trigger that was already sent (or repeats an applied update)."""
    NO_CARRIER_EVENT = "no_carrier_event"
    """A shipment without a carrier event time yet: nothing to date an update by."""
    UNKNOWN_STATUS = "unknown_status"
    """Carrier status UNKNOWN and no ETA change: nothing to tell the customer."""
    NO_CONSENT = "no_consent"
    """A sign-up without the marketing consent box ticked: consent is never inferred."""
    LIST_NOT_CONFIGURED = "list_not_configured"
    """A consented sign-up, but the merchant has no Klaviyo list for that channel."""


class DeadLetterCode(StrEnum):
    """Why a record cannot be turned into operations; it goes to the dead-letter topic."""

    MISSING_FIELD = "missing_field"
    """A field the contract requires is absent or null."""
    INVALID_VALUE = "invalid_value"
    """A field has an impossible value (quantity < 1, negative money, unknown enum, ...)."""
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    """An amount has more integer digits or decimal places than the contract's decimal(18, 4)."""
    NO_IDENTIFIER = "no_identifier"
    """The customer has no e-mail, phone or external id (or not the one a channel needs)."""
    INVALID_EMAIL = "invalid_email"
    """The only usable identifier was an e-mail address that is not one."""
    INVALID_PHONE = "invalid_phone"
    """The only usable identifier was a phone number that cannot be made E.164."""
    METRIC_NAME_TOO_LONG = "metric_name_too_long"
    """Klaviyo limit: a metric name must be shorter than 128 characters."""
    TOO_MANY_PROPERTIES = "too_many_properties"
    """Klaviyo limit: at most 300 top-level event properties (the stricter documented value)."""
    STRING_TOO_LONG = "string_too_long"
    """Klaviyo limit: no string may exceed 100 KB."""
    TIME_OUT_OF_RANGE = "time_out_of_range"
    """Klaviyo limit: event time between 2000-01-01 and one year from now."""


@dataclass(frozen=True, slots=True)
class Skip:
    """One counted skip. ``detail`` names what was skipped (e.g. a shipment id), never PII."""

    reason: SkipReason
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterReason:
    """Why a record is dead-lettered: a stable ``code`` and a message for a person.

    The message names fields (``items/1/quantity``) and harmless values (a quantity, an enum
    symbol) but never customer identifiers or secrets.
    """

    code: DeadLetterCode
    message: str


@dataclass(frozen=True, slots=True)
class Derivation:
    """The outcome of deriving one record or one timer sweep.

    - ``operations``: Klaviyo operations for the outbox, in order.
    - ``skips``: counted skips (a record with several shipments may skip some and emit others).
    - ``dead_letter``: set when the record cannot be processed; then there are no operations
      and no new state (a record is processed whole or not at all). A timer sweep is the one
      exception: it has no record to dead-letter, so it still returns the state that consumes
      the timer.
    - ``state``: the order's new tracking state to store and write to the changelog; ``None``
      means "unchanged" (write nothing).
    """

    operations: tuple[Operation, ...] = ()
    skips: tuple[Skip, ...] = ()
    dead_letter: DeadLetterReason | None = None
    state: OrderState | None = None

    @classmethod
    def skipped(cls, reason: SkipReason, detail: str | None = None) -> Derivation:
        """A derivation that is one skip and nothing else."""
        return cls(skips=(Skip(reason, detail),))

    @classmethod
    def dead_lettered(cls, code: DeadLetterCode, message: str) -> Derivation:
        """A derivation that dead-letters the record."""
        return cls(dead_letter=DeadLetterReason(code, message))

    @property
    def skip_reasons(self) -> tuple[SkipReason, ...]:
        """The reasons of ``skips``, in order (what the runtime counts)."""
        return tuple(skip.reason for skip in self.skips)
