"""Typed reads of decoded record fields, raising ``InvalidRecord`` on contract breaches.

Records arrive as dicts from ``RecordDecoder`` (enums as symbol strings, timestamps as aware
UTC datetimes, decimals as ``Decimal``) or from ``record_from_json``. The readers accept
exactly those shapes, plus integer epoch milliseconds for timestamps (what fastavro gives for a
timestamp without its logical type); a naive datetime is read as UTC because Avro timestamps
are UTC by definition.

``where`` names the field for the dead-letter message as a path, e.g. ``items/1/quantity``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from consumer.derive.errors import InvalidRecord

__all__ = [
    "MONEY_PRECISION",
    "MONEY_SCALE",
    "child",
    "children",
    "count",
    "currency",
    "moment",
    "money",
    "optional_moment",
    "optional_money",
    "optional_text",
    "symbol",
    "text",
]

T = TypeVar("T")
Record = Mapping[str, Any]

MONEY_PRECISION = 18
MONEY_SCALE = 4
"""Every amount in ``schemas/`` is ``decimal(18, 4)`` (a unit test holds the schemas to it)."""
_MONEY_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)
_CONTRACT = f"amounts are decimal({MONEY_PRECISION}, {MONEY_SCALE})"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _path(where: str, key: str) -> str:
    return f"{where}/{key}" if where else key


def text(record: Record, key: str, where: str = "") -> str:
    """A required, non-blank string (returned as given, not stripped)."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    if not isinstance(value, str):
        raise InvalidRecord.invalid(_path(where, key), "is not a string")
    if not value.strip():
        raise InvalidRecord.missing(_path(where, key))
    return value


def optional_text(record: Record, key: str, where: str = "") -> str | None:
    """An optional string; null, empty and blank all read as absent (``None``)."""
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord.invalid(_path(where, key), "is not a string")
    return value if value.strip() else None


def _as_moment(value: object, where: str, key: str) -> datetime:
    # The path is only formatted for a message: reading a valid field must stay cheap.
    if isinstance(value, datetime):
        if value.tzinfo is UTC:  # what the decoder gives: nothing to convert
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise InvalidRecord.invalid(_path(where, key), "is out of range") from None
    raise InvalidRecord.invalid(_path(where, key), "is not a timestamp")


def moment(record: Record, key: str, where: str = "") -> datetime:
    """A required timestamp, as an aware UTC datetime."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    return _as_moment(value, where, key)


def optional_moment(record: Record, key: str, where: str = "") -> datetime | None:
    """An optional timestamp, as an aware UTC datetime or ``None``."""
    value = record.get(key)
    return None if value is None else _as_moment(value, where, key)


def count(record: Record, key: str, where: str = "") -> int:
    """A required quantity: an integer of at least 1."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRecord.invalid(_path(where, key), "is not an integer")
    if value < 1:
        raise InvalidRecord.invalid(_path(where, key), f"is {value}; it must be at least 1")
    return value


def _as_money(value: object, where: str) -> Decimal:
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    else:
        raise InvalidRecord.invalid(where, "is not a decimal amount")
    if not amount.is_finite():
        raise InvalidRecord.invalid(where, "is not a finite amount")
    if amount < 0:
        raise InvalidRecord.invalid(where, "is negative")
    # Precision is not part of a schema's fingerprint: a writer may declare more digits than
    # the contract, and Avro then hands over whatever it wrote.
    if amount >= _MONEY_LIMIT:
        raise InvalidRecord.out_of_range(
            where, f"has more than {MONEY_PRECISION - MONEY_SCALE} integer digits ({_CONTRACT})"
        )
    _, digits, exponent = amount.as_tuple()
    extra = -MONEY_SCALE - int(exponent)
    if extra > 0 and any(digits[-extra:]):
        raise InvalidRecord.out_of_range(
            where, f"has more than {MONEY_SCALE} decimal places ({_CONTRACT})"
        )
    return amount


def money(record: Record, key: str, where: str = "") -> Decimal:
    """A required, finite, non-negative amount within the contract's ``decimal(18, 4)``."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    return _as_money(value, _path(where, key))


def optional_money(record: Record, key: str, where: str = "") -> Decimal | None:
    """An optional amount, read as ``money`` reads a required one."""
    value = record.get(key)
    return None if value is None else _as_money(value, _path(where, key))


def currency(record: Record, key: str, default: str, where: str = "") -> str:
    """An ISO 4217 code (upper-cased); ``default`` when the record carries none."""
    raw = optional_text(record, key, where)
    code = (raw or default).strip().upper()
    if not _CURRENCY.match(code):
        raise InvalidRecord.invalid(_path(where, key), "is not an ISO 4217 currency code")
    return code


def symbol(record: Record, key: str, choices: Mapping[str, T], where: str = "") -> T:
    """A required enum symbol, mapped through ``choices`` (an unknown symbol is invalid)."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    if not isinstance(value, str) or value not in choices:
        # Enum symbols are contract constants, not customer data: safe to quote.
        raise InvalidRecord.invalid(_path(where, key), f"has unexpected value {value!r}")
    return choices[value]


def child(record: Record, key: str, where: str = "") -> Record:
    """A required nested record."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    if not isinstance(value, Mapping):
        raise InvalidRecord.invalid(_path(where, key), "is not a record")
    return value


def children(record: Record, key: str, where: str = "") -> list[tuple[str, Record]]:
    """A required array of records, each with its path for messages."""
    value = record.get(key)
    if value is None:
        raise InvalidRecord.missing(_path(where, key))
    # Exact types first: the decoder's lists and dicts skip the (slow) ABC checks.
    if type(value) is not list and (
        not isinstance(value, Sequence) or isinstance(value, str | bytes)
    ):
        raise InvalidRecord.invalid(_path(where, key), "is not an array")
    base = _path(where, key)
    found: list[tuple[str, Record]] = []
    for index, item in enumerate(value):
        path = f"{base}/{index}"
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InvalidRecord.invalid(path, "is not a record")
        found.append((path, item))
    return found
