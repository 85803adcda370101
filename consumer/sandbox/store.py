"""What the sandbox accepted: events (deduplicated as Klaviyo does) and subscriptions.

Klaviyo records an event once per (profile, metric, unique_id); a later request repeating a
key is still answered 202, and the repeat is counted here as a duplicate instead of stored.
That count is what end-to-end tests use to prove "effectively once".

Tests wait on the store with ``wait_until`` (a deadline, woken by each change), never sleeps.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer.klaviyo import EventKey, EventView

__all__ = ["EventStore", "StoredEvent", "StoredSubscription"]


@dataclass(frozen=True)
class StoredEvent:
    """One event the sandbox recorded (the first of its key)."""

    account_id: str
    operation_id: str
    request_number: int
    key: EventKey
    unique_id_given: bool
    time: str | None
    value: float | None
    value_currency: str | None
    backfill: bool
    properties: Mapping[str, Any]
    profile: Mapping[str, Any]
    received_at: datetime

    @property
    def metric(self) -> str:
        """The metric name."""
        return self.key.metric

    @property
    def unique_id(self) -> str:
        """The effective unique id (explicit, or the time-to-the-second default)."""
        return self.key.unique_id

    def to_json(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {
            "account_id": self.account_id,
            "operation_id": self.operation_id,
            "request_number": self.request_number,
            "profile_key": self.key.profile,
            "metric": self.key.metric,
            "unique_id": self.key.unique_id,
            "unique_id_given": self.unique_id_given,
            "time": self.time,
            "value": self.value,
            "value_currency": self.value_currency,
            "backfill": self.backfill,
            "properties": self.properties,
            "profile": self.profile,
            "received_at": self.received_at.isoformat(),
        }


@dataclass(frozen=True)
class StoredSubscription:
    """One profile of an accepted subscription job."""

    account_id: str
    request_number: int
    list_id: str | None
    email: str | None
    phone_number: str | None
    channels: Mapping[str, Any]
    historical_import: bool
    custom_source: str | None
    received_at: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {
            "account_id": self.account_id,
            "request_number": self.request_number,
            "list_id": self.list_id,
            "email": self.email,
            "phone_number": self.phone_number,
            "channels": self.channels,
            "historical_import": self.historical_import,
            "custom_source": self.custom_source,
            "received_at": self.received_at.isoformat(),
        }


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class EventStore:
    """Accepted events and subscriptions per account, in arrival order."""

    def __init__(self) -> None:
        self._events: dict[str, list[StoredEvent]] = {}
        self._keys: dict[str, set[EventKey]] = {}
        self._duplicates: Counter[str] = Counter()
        self._subscriptions: dict[str, list[StoredSubscription]] = {}
        self._requests = 0
        self._changed = asyncio.Event()

    def next_request_number(self) -> int:
        """A sequence number for an accepted request (1, 2, ...)."""
        self._requests += 1
        return self._requests

    def record_events(
        self,
        account_id: str,
        operation_id: str,
        events: Iterable[EventView],
        received_at: datetime,
    ) -> tuple[int, int]:
        """Store each event whose key is new for the account; returns (stored, duplicates).

        The caller has already rejected requests that repeat a key within themselves.
        """
        number = self.next_request_number()
        keys = self._keys.setdefault(account_id, set())
        stored_list = self._events.setdefault(account_id, [])
        stored = duplicates = 0
        for view in events:
            key = view.key(received_at)
            if key is None:
                continue  # validation rejects events without profile or metric
            if key in keys:
                duplicates += 1
                continue
            keys.add(key)
            attributes = view.attributes
            value = attributes.get("value")
            stored_list.append(
                StoredEvent(
                    account_id=account_id,
                    operation_id=operation_id,
                    request_number=number,
                    key=key,
                    unique_id_given=isinstance(attributes.get("unique_id"), str),
                    time=_optional_str(attributes.get("time")),
                    value=float(value) if isinstance(value, int | float) else None,
                    value_currency=_optional_str(attributes.get("value_currency")),
                    backfill=view.backfill,
                    properties=dict(attributes.get("properties") or {}),
                    profile=dict(view.profile),
                    received_at=received_at,
                )
            )
            stored += 1
        self._duplicates[account_id] += duplicates
        self._notify()
        return stored, duplicates

    def record_subscriptions(self, account_id: str, body: Any, received_at: datetime) -> int:
        """Store each profile of a valid subscription job body; returns how many."""
        number = self.next_request_number()
        data = body["data"]
        attributes = data["attributes"]
        list_data = ((data.get("relationships") or {}).get("list") or {}).get("data") or {}
        target = self._subscriptions.setdefault(account_id, [])
        profiles = attributes["profiles"]["data"]
        for profile in profiles:
            profile_attributes = profile["attributes"]
            target.append(
                StoredSubscription(
                    account_id=account_id,
                    request_number=number,
                    list_id=_optional_str(list_data.get("id")),
                    email=_optional_str(profile_attributes.get("email")),
                    phone_number=_optional_str(profile_attributes.get("phone_number")),
                    channels=dict(profile_attributes.get("subscriptions") or {}),
                    historical_import=attributes.get("historical_import") is True,
                    custom_source=_optional_str(attributes.get("custom_source")),
                    received_at=received_at,
                )
            )
        self._notify()
        return len(profiles)

    def events(self, account_id: str, metric: str | None = None) -> list[StoredEvent]:
        """The account's stored events, oldest first, optionally of one metric."""
        events = self._events.get(account_id, [])
        return [e for e in events if metric is None or e.key.metric == metric]

    def subscriptions(self, account_id: str) -> list[StoredSubscription]:
        """The account's stored subscription profiles, oldest first."""
        return list(self._subscriptions.get(account_id, []))

    def unique_event_count(self, account_id: str) -> int:
        """How many distinct (profile, metric, unique_id) the account has."""
        return len(self._keys.get(account_id, ()))

    def duplicate_count(self, account_id: str | None = None) -> int:
        """Events not stored because their key was already stored (one account or all)."""
        if account_id is None:
            return sum(self._duplicates.values())
        return self._duplicates[account_id]

    def duplicates_by_account(self) -> dict[str, int]:
        """Duplicate counts of every account that had one."""
        return {account: n for account, n in self._duplicates.items() if n}

    def metric_counts(self, account_id: str) -> dict[str, int]:
        """Stored events per metric name."""
        return dict(Counter(e.key.metric for e in self._events.get(account_id, [])))

    def account_ids(self) -> list[str]:
        """Accounts with any stored event or subscription, sorted."""
        return sorted(set(self._events) | set(self._subscriptions))

    def clear(self, account_id: str | None = None) -> None:
        """Forget what one account (or every account) received."""
        for table in (self._events, self._keys, self._subscriptions, self._duplicates):
            if account_id is None:
                table.clear()
            else:
                table.pop(account_id, None)
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter, then give later waiters a fresh event to block on.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109 -- one deadline for the whole wait, not per wake-up
    ) -> None:
        """Return once ``predicate()`` is true; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()
