"""Which merchants (or merchant endpoints) are parked, and until when: pure bookkeeping.

A park keeps one merchant's trouble (revoked key, missing scope, a long outage or 429) from
costing anyone else anything: while it lasts, that merchant's new operations are parked at
once instead of queuing. After the cool-down the next operation is tried again; if the
trouble persists, that attempt parks the merchant anew.

A park caused by the key (401, 403) also ends as soon as the merchant's settings carry a
different key, so a fixed integration takes effect without waiting out the cool-down. Keys
are compared by a digest kept only in memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

__all__ = ["Park", "ParkRegistry", "key_fingerprint"]


def key_fingerprint(api_key: SecretStr) -> str:
    """A digest naming a key without revealing it (memory only, never logged)."""
    return hashlib.sha256(api_key.get_secret_value().encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Park:
    """Why and until when a merchant (``endpoint`` None) or one of its endpoints is parked."""

    merchant_id: str
    endpoint: str | None
    reason: str
    detail: str
    until: float
    fingerprint: str | None = None  # set when the key caused it


class ParkRegistry:
    """Active parks by (merchant, endpoint-or-None); expired ones are dropped on read."""

    def __init__(self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._parks: dict[tuple[str, str | None], Park] = {}

    def park(
        self,
        merchant_id: str,
        endpoint: str | None,
        reason: str,
        detail: str = "",
        fingerprint: str | None = None,
    ) -> Park:
        """Park the merchant (``endpoint`` None) or one endpoint for the cool-down."""
        park = Park(
            merchant_id, endpoint, reason, detail, self._clock() + self._cooldown, fingerprint
        )
        self._parks[(merchant_id, endpoint)] = park
        return park

    def active(
        self, merchant_id: str, endpoint: str, fingerprint: Callable[[], str] | None = None
    ) -> Park | None:
        """The park that applies to ``endpoint`` of the merchant now, or None.

        ``fingerprint`` gives the merchant's current key digest (computed only when a
        key-caused park exists): a different key lifts that park.
        """
        if not self._parks:
            return None
        now = self._clock()
        for key in ((merchant_id, None), (merchant_id, endpoint)):
            park = self._parks.get(key)
            if park is None:
                continue
            if now >= park.until or (
                park.fingerprint is not None
                and fingerprint is not None
                and fingerprint() != park.fingerprint
            ):
                del self._parks[key]
                continue
            return park
        return None

    def parks(self) -> list[Park]:
        """Every park not yet expired (for a debug page)."""
        now = self._clock()
        return [park for park in self._parks.values() if park.until > now]
