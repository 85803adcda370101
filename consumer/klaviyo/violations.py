"""The value that says where and how a request body breaks Klaviyo's contract."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ContractViolation", "Rule", "to_pointer"]


class Rule:
    """Names of the rules a violation can break (stable strings, safe as metric labels)."""

    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    STRING_TOO_LONG = "string_too_long"
    TOO_MANY_EVENTS = "too_many_events"
    TOO_MANY_PROFILES = "too_many_profiles"
    METRIC_NAME = "metric_name"
    TOO_MANY_PROPERTIES = "too_many_properties"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    MISSING_IDENTIFIER = "missing_identifier"
    INVALID_IDENTIFIER = "invalid_identifier"
    DUPLICATE_UNIQUE_ID = "duplicate_unique_id"
    CONSENT = "consent"


@dataclass(frozen=True, order=True)
class ContractViolation:
    """One way a request body breaks the contract.

    ``pointer`` is an RFC 6901 JSON pointer into the body (``/data/attributes/...``), the same
    form Klaviyo returns in ``errors[].source.pointer``; ``"/data"`` means the request as a
    whole (size, count, JSON syntax) rather than one event. ``rule`` is one of ``Rule``.
    """

    pointer: str
    message: str
    rule: str = Rule.SCHEMA


def to_pointer(parts: Iterable[str | int]) -> str:
    """The JSON pointer for a path of object keys and array indexes (``~`` and ``/`` escaped)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
