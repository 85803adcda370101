"""Per merchant and endpoint queues of operations, cut into Klaviyo-sized batches.

A batch is cut when it is full (``batch_max_events`` events, or 1,000 subscription profiles),
when its serialized body would pass ``batch_max_bytes``, or when its oldest operation has
waited ``linger_seconds``. The sender cuts a batch only when the rate limiter lets it send, so
a throttled merchant's queue keeps filling and its next requests go out full.

Linger counts from when the operation was *produced* (its outbox record's timestamp, which
the caller passes; default: when it was queued). An operation that already waited in
derive's transaction until its checkpoint committed is therefore not held a full linger
again: at low load nothing waits longer than one linger after it was produced, plus the
lane's request in flight.

Under a backlog (the caller says so: more input waits upstream than it would hold) every
queued operation is older than the linger, so counting from production would send whatever
trickled in during the previous request (requests went out with about 600 of 1,000
events). So under a backlog the linger counts from when the operation was queued, or from
the lane's last request when that is later, and is ``BACKLOG_LINGER_FACTOR`` times longer:
an operation is already late, full requests are what drains the backlog soonest, and a
merchant's share of the input may arrive much slower than one request per linger (a stage
reading 3,000 operations/s for 20 merchants fills a lane in 6-7 s). The wait stays bounded,
so a merchant with a trickle of operations in a large backlog does not hold its partition's
commits for long, and the caller drops the backlog for lanes that nothing more can reach
(their partition paused with nothing in a request: only sending frees room).

Repeated keys. Klaviyo fails a whole bulk request that holds two events with the same
(profile, metric, unique_id). An operation whose key matches one still queued or in flight is
therefore not queued again: it is *coalesced* into that one and gets the same final outcome.
That is right because ``unique_id`` is built from stable facts only: an equal key is the
same fact, which Klaviyo would record once anyway. Holding the repeat back for the next batch
would instead re-send a known duplicate, costing rate-limit budget, and by the bulk endpoint's
wording ("if a unique_id is repeated ... the request will fail") it might fail the next
request. A repeat arriving after the first one finished is sent normally (at-least-once;
Klaviyo deduplicates). Subscriptions coalesce the same way on (list, profile, channel).

Live first. History (events flagged ``backfill``, subscriptions flagged
``historical_import``: what a backfill or replay writes) queues behind every live operation of
its lane, so a merchant's backfill only ever fills what live traffic leaves of a request and
of the rate budget; live operations keep their order among themselves, history among itself.

Nothing here does I/O or reads a clock: callers pass ``now``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

import orjson

from consumer.deliver.errors import OperationTooLarge
from consumer.deliver.request_builder import (
    BuiltRequest,
    SubscriptionGroup,
    build_event_batch,
    build_event_bulk_request,
    build_subscription_batch,
    build_subscription_request,
    event_key,
    event_resource,
    profile_entry_overhead,
    subscription_group,
    subscription_key,
)
from consumer.klaviyo.contract import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES
from consumer.klaviyo.limits import MAX_PROFILES_PER_SUBSCRIPTION_REQUEST
from consumer.outbox.operations import EventOperation, Operation, SubscriptionOperation
from consumer.settings import DeliverySettings

__all__ = ["BACKLOG_LINGER_FACTOR", "Batch", "Batcher", "Lane", "Pending", "endpoint_of"]

BACKLOG_LINGER_FACTOR = 20

Lane = tuple[str, str]
"""(merchant id, endpoint operation id): the unit of queuing, pacing and parking."""

_EVENTS_ENVELOPE = len(orjson.dumps(build_event_bulk_request([])))


def endpoint_of(operation: Operation) -> str:
    """The Klaviyo operation id that delivers ``operation``."""
    return BULK_CREATE_EVENTS if isinstance(operation, EventOperation) else BULK_SUBSCRIBE_PROFILES


@dataclass(eq=False, slots=True)
class Pending:
    """One queued or in-flight operation, plus the tokens of repeats coalesced into it."""

    operation: Operation
    token: Hashable
    key: Hashable
    size: int  # serialized bytes of its own part of a body, separator included
    entry_size: int  # bytes its profile adds when first seen in a batch (events only)
    group: SubscriptionGroup | None
    produced_at: float  # linger counts from it
    queued_at: float  # under a backlog, linger counts from it (or from the lane's last request)
    resource: bytes = b""  # an event's resource, serialised once (its size and its request)
    followers: list[tuple[Hashable, Operation]] = field(default_factory=list)
    done: bool = False  # has its final outcome
    in_request: bool = False  # in a lane's batch in hand (the sender counts these)
    request_group: Hashable = None  # what the sender counted it under, while in_request


@dataclass(eq=False, slots=True)
class Batch:
    """Operations of one lane that go out in one request (and its retries)."""

    lane: Lane
    items: list[Pending]

    def build(self) -> BuiltRequest:
        """The request body and layout (indexes refer to ``items``)."""
        if self.lane[1] == BULK_CREATE_EVENTS:
            pairs = [
                (i.operation, i.resource)
                for i in self.items
                if isinstance(i.operation, EventOperation)
            ]
            return build_event_batch([e for e, _ in pairs], [r for _, r in pairs])
        subscriptions = [
            i.operation for i in self.items if isinstance(i.operation, SubscriptionOperation)
        ]
        return build_subscription_batch(subscriptions)

    @property
    def events(self) -> int:
        """How many operations (events or subscriptions) the batch carries."""
        return len(self.items)


@dataclass(slots=True)
class _Queue:
    items: deque[Pending] = field(default_factory=deque)
    bytes: int = 0  # upper bound of the queued items' serialized size
    live: int = 0  # the first ``live`` items are live operations, the rest history


def _is_history(operation: Operation) -> bool:
    if isinstance(operation, EventOperation):
        return operation.backfill
    return operation.historical_import


class Batcher:
    """Queues per lane; cuts batches within Klaviyo's limits; coalesces repeated keys."""

    def __init__(self, settings: DeliverySettings) -> None:
        self._max_events = settings.batch_max_events
        self._max_profiles = MAX_PROFILES_PER_SUBSCRIPTION_REQUEST
        self._max_bytes = settings.batch_max_bytes
        self._linger = settings.linger_seconds
        self._queues: dict[Lane, _Queue] = {}
        self._keys: dict[tuple[str, Hashable], Pending] = {}

    def add(
        self, operation: Operation, token: Hashable, now: float, produced_at: float | None = None
    ) -> tuple[Pending, bool]:
        """Queue ``operation`` (produced at ``produced_at``, default ``now``); returns its
        ``Pending`` and whether it was coalesced.

        A coalesced operation was not queued: its token rides on the returned ``Pending``.

        Raises:
            OperationTooLarge: the operation alone cannot fit in a request.
        """
        key = self._key(operation)
        existing = self._keys.get((operation.merchant_id, key))
        if existing is not None:
            existing.followers.append((token, operation))
            return existing, True
        produced = now if produced_at is None else min(produced_at, now)
        pending = self._pending(operation, token, key, produced, now)
        lane = (operation.merchant_id, endpoint_of(operation))
        queue = self._queues.setdefault(lane, _Queue())
        if _is_history(operation):
            queue.items.append(pending)
        else:
            queue.items.insert(queue.live, pending)
            queue.live += 1
        queue.bytes += pending.size + pending.entry_size
        self._keys[(operation.merchant_id, key)] = pending
        return pending, False

    @staticmethod
    def _key(operation: Operation) -> Hashable:
        if isinstance(operation, EventOperation):
            return event_key(operation)
        return subscription_key(operation)

    def _pending(
        self, operation: Operation, token: Hashable, key: Hashable, produced_at: float, now: float
    ) -> Pending:
        resource = b""
        if isinstance(operation, EventOperation):
            resource = orjson.dumps(event_resource(operation))
            size = len(resource) + 1
            entry = profile_entry_overhead(operation.profile)
            envelope, group = _EVENTS_ENVELOPE, None
        else:
            # The envelope (list, source) is per request; only the profile part is per item.
            body = build_subscription_request([operation])
            single = len(orjson.dumps(body))
            body["data"]["attributes"]["profiles"]["data"] = []
            envelope = len(orjson.dumps(body))
            size, entry, group = single - envelope + 1, 0, subscription_group(operation)
        if envelope + size + entry > self._max_bytes:
            raise OperationTooLarge(
                f"operation needs {envelope + size + entry} bytes; a request allows "
                f"{self._max_bytes}"
            )
        return Pending(operation, token, key, size, entry, group, produced_at, now, resource)

    def release(self, pending: Pending) -> None:
        """Forget ``pending``'s key once it has its final outcome (repeats are sent again)."""
        key = (pending.operation.merchant_id, pending.key)
        if self._keys.get(key) is pending:
            del self._keys[key]

    def head(self, lane: Lane) -> Pending | None:
        """The operation that goes out next in ``lane`` (None when it is empty)."""
        queue = self._queues.get(lane)
        return queue.items[0] if queue is not None and queue.items else None

    def queued(self, lane: Lane) -> int:
        """How many operations wait in ``lane``."""
        queue = self._queues.get(lane)
        return 0 if queue is None else len(queue.items)

    def due_in(
        self,
        lane: Lane,
        now: float,
        *,
        flushing: bool = False,
        idle_since: float | None = None,
        backlog: bool = False,
    ) -> float | None:
        """Seconds until ``lane`` has a batch to send (0.0 = now), None when it is empty.

        ``backlog``: more input is waiting upstream: the linger is ``BACKLOG_LINGER_FACTOR`` x
        longer and counts from when the oldest operation was queued, or from ``idle_since``
        (when the lane finished its last request; None: it has sent none) if that is later.
        """
        queue = self._queues.get(lane)
        if queue is None or not queue.items:
            return None
        limit = self._max_events if lane[1] == BULK_CREATE_EVENTS else self._max_profiles
        if flushing or len(queue.items) >= limit or queue.bytes >= self._max_bytes:
            return 0.0
        if not backlog:
            return max(0.0, queue.items[0].produced_at + self._linger - now)
        started = queue.items[0].queued_at
        if idle_since is not None:
            started = max(started, idle_since)
        return max(0.0, started + self._linger * BACKLOG_LINGER_FACTOR - now)

    def cut(self, lane: Lane) -> Batch | None:
        """Take the next batch of ``lane`` (oldest first, within limits), or None if empty."""
        queue = self._queues.get(lane)
        if queue is None or not queue.items:
            return None
        if lane[1] == BULK_CREATE_EVENTS:
            taken = self._take_events(queue)
        else:
            taken = self._take_subscriptions(queue)
        queue.bytes -= sum(p.size + p.entry_size for p in taken)
        queue.live = sum(1 for p in queue.items if not _is_history(p.operation))
        if not queue.items:
            del self._queues[lane]
        return Batch(lane, taken)

    def _take_events(self, queue: _Queue) -> list[Pending]:
        taken: list[Pending] = []
        profiles: set[object] = set()
        size = _EVENTS_ENVELOPE
        while queue.items and len(taken) < self._max_events:
            head = queue.items[0]
            profile = head.operation.profile
            extra = head.size + (0 if profile in profiles else head.entry_size)
            if taken and size + extra > self._max_bytes:
                break
            size += extra
            profiles.add(profile)
            taken.append(queue.items.popleft())
        return taken

    def _take_subscriptions(self, queue: _Queue) -> list[Pending]:
        # One request serves one (list, source, import flag) group: take the head's group in
        # order and leave the others queued, in order, for later batches.
        group = queue.items[0].group
        taken: list[Pending] = []
        kept: deque[Pending] = deque()
        size = 0
        for item in queue.items:
            fits = len(taken) < self._max_profiles and (
                not taken or size + item.size <= self._max_bytes
            )
            if item.group == group and fits:
                taken.append(item)
                size += item.size
            else:
                kept.append(item)
        queue.items = kept
        return taken

    def drain(self, lane: Lane) -> list[Pending]:
        """Remove and return everything queued in ``lane`` (to park it)."""
        queue = self._queues.pop(lane, None)
        return [] if queue is None else list(queue.items)

    def requeue(self, lane: Lane, items: list[Pending]) -> None:
        """Put ``items`` (taken from ``lane`` earlier, in order) back at its head."""
        if not items:
            return
        queue = self._queues.setdefault(lane, _Queue())
        queue.items.extendleft(reversed(items))
        queue.bytes += sum(p.size + p.entry_size for p in items)

    def lanes(self) -> Iterator[Lane]:
        """Lanes with queued operations."""
        return iter(list(self._queues))
