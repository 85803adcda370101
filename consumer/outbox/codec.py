"""Compact, versioned JSON encoding of operations for the outbox topic.

Short keys keep a record small (the outbox holds every operation until delivery); ``"v"`` is
the format version so a newer deliver stage can still read what an older derive stage wrote.
Decimals travel as strings so money keeps its exact digits: ``"val"`` is the event's value,
``"prd"`` names the properties whose string is a decimal. A decimal that is not finite, or too
long to be an amount, makes the record unreadable rather than a request Klaviyo cannot parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from consumer.outbox.errors import OutboxFormatError
from consumer.outbox.operations import (
    Channel,
    EventOperation,
    Operation,
    Profile,
    PropertyValue,
    SubscriptionOperation,
)

__all__ = ["FORMAT_VERSION", "decode_operation", "encode_operation"]

FORMAT_VERSION = 1

_PROFILE_KEYS = (
    ("e", "email"),
    ("ph", "phone_number"),
    ("x", "external_id"),
    ("fn", "first_name"),
    ("ln", "last_name"),
)


def _profile_out(profile: Profile) -> dict[str, str]:
    return {short: value for short, name in _PROFILE_KEYS if (value := getattr(profile, name))}


def _profile_in(data: dict[str, str]) -> Profile:
    return Profile(**{name: data.get(short) for short, name in _PROFILE_KEYS})


_MAX_DECIMAL_DIGITS = 40  # either side of the point; amounts have at most 14 and 4


def _decimal(text: object) -> Decimal:
    if not isinstance(text, str):
        raise OutboxFormatError(f"decimal {text!r} is not a string")
    value = Decimal(text)
    if not value.is_finite():
        raise OutboxFormatError(f"decimal {text!r} is not finite")
    exponent = value.as_tuple().exponent
    if value.adjusted() >= _MAX_DECIMAL_DIGITS or int(exponent) < -_MAX_DECIMAL_DIGITS:
        raise OutboxFormatError(f"decimal with exponent {exponent} is too long for an amount")
    return value


def _properties_out(properties: Mapping[str, PropertyValue]) -> tuple[dict[str, Any], list[str]]:
    decimals = [name for name, value in properties.items() if isinstance(value, Decimal)]
    if not decimals and type(properties) is dict:
        return properties, decimals  # as they are: most events carry no amount
    plain: dict[str, Any] = dict(properties)
    for name in decimals:
        plain[name] = str(plain[name])
    return plain, decimals


def _properties_in(plain: dict[str, Any], decimals: list[str]) -> dict[str, PropertyValue]:
    for name in decimals:
        plain[name] = _decimal(plain[name])
    return plain


def encode_operation(op: Operation) -> bytes:
    """Serialise one operation for the outbox."""
    doc: dict[str, Any] = {"v": FORMAT_VERSION, "m": op.merchant_id, "p": _profile_out(op.profile)}
    doc["u"] = op.unique_id
    if isinstance(op, EventOperation):
        properties, decimals = _properties_out(op.properties)
        # orjson writes an aware datetime exactly as isoformat() does, only faster.
        doc.update(k="e", n=op.metric, pr=properties, t=op.time)
        if decimals:
            doc["prd"] = decimals
        if op.value is not None:
            doc["val"] = str(op.value)
        if op.value_currency is not None:
            doc["cur"] = op.value_currency
        if op.backfill:
            doc["b"] = True
    else:
        doc.update(
            k="s",
            ch=op.channel.value,
            l=op.list_id,
            src=op.custom_source,
            t=op.consented_at,
        )
        if op.historical_import:
            doc["h"] = True
    return orjson.dumps(doc)


def decode_operation(data: bytes) -> Operation:
    """Parse one outbox record value.

    Raises:
        OutboxFormatError: not JSON, an unknown version or kind, or a missing field.
    """
    try:
        doc = orjson.loads(data)
        version = doc["v"]
        if version != FORMAT_VERSION:
            raise OutboxFormatError(f"unsupported outbox format version {version!r}")
        kind = doc["k"]
        profile = _profile_in(doc["p"])
        time = datetime.fromisoformat(doc["t"])
        if kind == "e":
            return EventOperation(
                merchant_id=doc["m"],
                metric=doc["n"],
                profile=profile,
                properties=_properties_in(doc["pr"], doc.get("prd", [])),
                time=time,
                unique_id=doc["u"],
                value=_decimal(doc["val"]) if "val" in doc else None,
                value_currency=doc.get("cur"),
                backfill=doc.get("b", False),
            )
        if kind == "s":
            return SubscriptionOperation(
                merchant_id=doc["m"],
                channel=Channel(doc["ch"]),
                list_id=doc["l"],
                profile=profile,
                custom_source=doc["src"],
                consented_at=time,
                unique_id=doc["u"],
                historical_import=doc.get("h", False),
            )
        raise OutboxFormatError(f"unknown operation kind {kind!r}")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidOperation) as exc:
        if isinstance(exc, OutboxFormatError):
            raise
        raise OutboxFormatError(f"malformed outbox record: {type(exc).__name__}: {exc}") from exc
