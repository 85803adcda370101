"""Fault injection for one sandbox account.

Each fault is something real clients of Klaviyo meet: 5xx outages (some share of requests,
or the next N), slow answers, connection resets (errno 104, which Klaviyo's own SDK retries),
the Cloudflare edge answering 403 ``text/html`` with ``cf-mitigated: challenge`` instead of
JSON:API, and 429s whose ``Retry-After`` the test chooses. A revoked key (401) is not a fault
but a key state: see ``AccountRegistry.revoke_key``.

``reject_events`` is different: it acts after the body passed the contract, refusing chosen
events (by metric, property or unique_id) the way Klaviyo refuses an event it will not take,
a 400 naming the event by ``source.pointer``, so partial rejections can be run end to end.

When several faults are armed, the first that applies wins, in the order of ``FaultKind``
(an edge that resets the connection never lets a request reach the API behind it).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["EventRejection", "Fault", "FaultKind", "Faults"]

DEFAULT_REJECTION_DETAIL = "This event was rejected by the sandbox's reject-events fault."


class FaultKind(StrEnum):
    """What an injected fault does to a request, in precedence order."""

    RESET = "reset"
    EDGE_CHALLENGE = "edge_challenge"
    THROTTLE = "throttle"
    FAIL = "fail"


@dataclass(frozen=True)
class Fault:
    """One fault to apply: ``status`` for FAIL, ``retry_after`` for THROTTLE."""

    kind: FaultKind
    status: int = 0
    retry_after: int = 0


@dataclass(frozen=True)
class EventRejection:
    """Refuse events matching every given criterion (at least one is given).

    ``property_name`` alone matches events having that property; with ``property_value``
    only those where it equals the value.
    """

    metric: str | None = None
    property_name: str | None = None
    property_value: Any = None
    unique_id: str | None = None
    detail: str = DEFAULT_REJECTION_DETAIL

    def __post_init__(self) -> None:
        if self.metric is None and self.property_name is None and self.unique_id is None:
            raise ValueError("reject_events needs a metric, a property or a unique_id")
        if self.property_value is not None and self.property_name is None:
            raise ValueError("a property value needs a property name")

    def pointer(self, attributes: Mapping[str, Any], metric: str | None) -> str | None:
        """Where in the event (relative to its resource object) the match is, or None."""
        if self.metric is not None and metric != self.metric:
            return None
        if self.unique_id is not None and attributes.get("unique_id") != self.unique_id:
            return None
        if self.property_name is not None:
            properties = attributes.get("properties")
            if not isinstance(properties, Mapping) or self.property_name not in properties:
                return None
            wanted = self.property_value
            if wanted is not None and properties[self.property_name] != wanted:
                return None
            return f"/attributes/properties/{_escape(self.property_name)}"
        if self.unique_id is not None:
            return "/attributes/unique_id"
        return "/attributes/metric/data/attributes/name"

    def describe(self) -> dict[str, Any]:
        """JSON view for the admin API and the page."""
        view = {
            "metric": self.metric,
            "property": self.property_name,
            "value": self.property_value,
            "unique_id": self.unique_id,
        }
        return {**{k: v for k, v in view.items() if v is not None}, "detail": self.detail}


def _escape(token: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


@dataclass
class _Armed:
    remaining: int | None  # None = until cleared
    status: int = 0
    retry_after: int = 0

    def take(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


def _count(count: int | None) -> int | None:
    if count is not None and count < 0:
        raise ValueError("count must be >= 0 (or None for until cleared)")
    return count


def _server_error(status: int) -> int:
    if not 500 <= status <= 599:
        raise ValueError("status must be a 5xx code")
    return status


class Faults:
    """The faults armed for one account; a mutable plan consulted once per request.

    Counts mean "the next N requests" (``None``: until ``clear()``). ``fail_ratio`` draws from
    a ``random.Random`` seeded per call, so a run with the same seed fails the same requests.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.latency_seconds = 0.0
        self._armed: dict[FaultKind, _Armed] = {}
        self._ratio = 0.0
        self._ratio_status = 503
        self._rng = random.Random(0)  # noqa: S311 -- fault injection, not security
        self.rejections: list[EventRejection] = []

    def fail_next(self, count: int | None = 1, status: int = 503) -> None:
        """The next ``count`` requests fail with ``status`` (a 5xx, JSON:API body)."""
        self._armed[FaultKind.FAIL] = _Armed(_count(count), status=_server_error(status))

    def fail_ratio(self, ratio: float, status: int = 503, seed: int = 0) -> None:
        """Each request fails with ``status`` with probability ``ratio`` (seeded, repeatable)."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within [0, 1]")
        self._ratio, self._ratio_status = ratio, _server_error(status)
        self._rng = random.Random(seed)  # noqa: S311 -- fault injection, not security

    def add_latency(self, seconds: float) -> None:
        """Delay every answer (including faulted ones) by ``seconds``."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency_seconds = seconds

    def reset_connections(self, count: int | None = 1) -> None:
        """The next ``count`` requests get their TCP connection reset, with no response."""
        self._armed[FaultKind.RESET] = _Armed(_count(count))

    def edge_challenge(self, count: int | None = 1) -> None:
        """The next ``count`` requests get the edge proxy's HTML 403 challenge page."""
        self._armed[FaultKind.EDGE_CHALLENGE] = _Armed(_count(count))

    def throttle(self, retry_after: int, count: int | None = 1) -> None:
        """The next ``count`` requests get 429 with ``Retry-After: retry_after``."""
        if retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        self._armed[FaultKind.THROTTLE] = _Armed(_count(count), retry_after=retry_after)

    def reject_events(self, rejection: EventRejection) -> None:
        """Refuse matching events (400 with a pointer to each) until ``clear()``."""
        self.rejections.append(rejection)

    def rejection(
        self, attributes: Mapping[str, Any], metric: str | None
    ) -> tuple[str, str] | None:
        """(pointer inside the event, detail) of the first rule refusing an event, or None."""
        for rule in self.rejections:
            pointer = rule.pointer(attributes, metric)
            if pointer is not None:
                return pointer, rule.detail
        return None

    def clear(self) -> None:
        """Disarm every fault and remove the latency."""
        self._reset()

    def next_fault(self) -> Fault | None:
        """The fault for the request being handled now, using up one count; None if none."""
        for kind in FaultKind:
            armed = self._armed.get(kind)
            if armed is not None and armed.take():
                return Fault(kind, status=armed.status, retry_after=armed.retry_after)
        if self._ratio > 0 and self._rng.random() < self._ratio:
            return Fault(FaultKind.FAIL, status=self._ratio_status)
        return None

    @property
    def active(self) -> bool:
        """Whether any fault or latency is armed."""
        return bool(self.describe())

    def describe(self) -> dict[str, Any]:
        """JSON view of what is armed (for the admin API and the page)."""
        view: dict[str, Any] = {}
        if self.latency_seconds:
            view["latency_seconds"] = self.latency_seconds
        if self.rejections:
            view["reject_events"] = [rule.describe() for rule in self.rejections]
        if self._ratio:
            view["fail_ratio"] = {"ratio": self._ratio, "status": self._ratio_status}
        for kind, armed in self._armed.items():
            if armed.remaining is None or armed.remaining > 0:
                entry: dict[str, Any] = {"count": armed.remaining}
                if kind is FaultKind.FAIL:
                    entry["status"] = armed.status
                if kind is FaultKind.THROTTLE:
                    entry["retry_after"] = armed.retry_after
                view[kind.value] = entry
        return view
