"""The delivery sink: operations in, one final outcome per operation out.

The runtime drives it like this::

    sink = Sink(settings.delivery, KlaviyoClient(settings.klaviyo), lookup, on_outcome)
    sink.submit(operation, (partition, offset))    # never blocks; outcome comes later
    sink.revoke(lambda token: token[0] in revoked)  # a rebalance took these partitions
    ...
    await sink.close(deadline)                      # at shutdown: send what may go, park the rest

``on_outcome`` receives exactly one ``Accepted``, ``DeadLettered`` or ``Parked`` per submitted
token, from the sink's own tasks (or synchronously from ``submit`` when the operation is
parked or dead-lettered on arrival), unless the token was revoked first: then it gets none.
Back-pressure is the runtime's: it counts unfinished offsets (``OffsetTracker.in_flight``)
less those in a request (``in_requests``: a lane's batch in hand, counted per
``token_group``) and pauses partitions where too many wait. Everything here runs on the
event loop, in the sink's tasks or in calls made from that loop.

Each (merchant, endpoint) lane has one background task, started on demand and ended when the
lane is empty. A lane sends one request at a time: it waits for a batch to fill or linger out,
waits for the rate limiter, cuts the batch, sends it and acts on the classified answer
(retry, split, dead-letter the named operations, park). Lanes never wait on each other, so
one merchant's trouble stalls no one else. Once the sink closes, a lane that would have to
wait (rate limit, backoff) stops instead: a stop does not sit out its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass

from consumer.deliver.batcher import Batch, Batcher, Lane, Pending, endpoint_of
from consumer.deliver.errors import (
    DeliveryError,
    InvalidOperations,
    KlaviyoUnavailable,
    MerchantDisabled,
    MerchantNotIntegrated,
    MerchantUnavailable,
    OperationTooLarge,
    SinkClosed,
    Throttled,
    UnattributedRejection,
)
from consumer.deliver.http_client import KlaviyoClient
from consumer.deliver.outcomes import (
    SHUTDOWN,
    Accepted,
    DeadLettered,
    DeliveryStats,
    Outcome,
    Parked,
)
from consumer.deliver.parking import ParkRegistry, key_fingerprint
from consumer.deliver.rate_limiter import RateLimiter, limits_from_settings
from consumer.deliver.request_builder import (
    EVENTS_PATH,
    SUBSCRIPTIONS_PATH,
    BuiltRequest,
    serialize,
)
from consumer.deliver.responses import classify, rate_limit_headers
from consumer.deliver.retry import RetryBudget, RetryPolicy
from consumer.klaviyo.contract import BULK_CREATE_EVENTS
from consumer.merchant import MerchantSettings
from consumer.observability.metrics import Metrics
from consumer.outbox.operations import Operation
from consumer.settings import DeliverySettings

__all__ = ["MerchantLookup", "OutcomeCallback", "Sink"]

logger = logging.getLogger(__name__)

MerchantLookup = Callable[[str], MerchantSettings | None]
OutcomeCallback = Callable[[Outcome], None]

PRUNE_INTERVAL_SECONDS = 60.0  # forget idle merchants' rate-limit logs this often
INTERNAL_ERROR = "internal_error"


@dataclass(eq=False)
class _LaneTask:
    wakeup: asyncio.Event
    work: deque[list[Pending]]  # the batch in hand (and its splits), until resolved
    task: asyncio.Task[None] | None = None
    idle_since: float | None = None  # when its last request finished (linger counts from it)


class Sink:
    """Delivers operations to Klaviyo per merchant, reporting one outcome per operation.

    Args:
        settings: batching, retry budget and rate limits.
        client: the HTTP client (closed by ``close``).
        lookup: merchant id → settings (None = not integrated); read at submit and at send,
            so key changes apply live.
        on_outcome: called once per submitted token with its final outcome.
        retry: backoff shape for transient failures.
        park_cooldown_seconds: how long a parked merchant's new operations are parked at
            once before it is tried again.
        limiter: rate limiter override (tests); default from ``settings``.
        metrics: where requests, retries and rate-limit waits are counted.
        token_group: what ``in_requests`` counts by (e.g. a token's partition); default: one
            group, ``None``.
    """

    def __init__(
        self,
        settings: DeliverySettings,
        client: KlaviyoClient,
        lookup: MerchantLookup,
        on_outcome: OutcomeCallback,
        *,
        retry: RetryPolicy | None = None,
        park_cooldown_seconds: float = 60.0,
        limiter: RateLimiter | None = None,
        metrics: Metrics | None = None,
        token_group: Callable[[Hashable], Hashable] | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._settings = settings
        self._client = client
        self._lookup = lookup
        self._on_outcome = on_outcome
        self._retry = retry or RetryPolicy()
        self._limiter = limiter or RateLimiter(limits_from_settings(settings))
        self._parks = ParkRegistry(park_cooldown_seconds)
        self._batcher = Batcher(settings)
        self._lanes: dict[Lane, _LaneTask] = {}
        self._rng = random.Random()  # noqa: S311 -- backoff jitter, not security
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._flushing = 0
        self._closed = asyncio.Event()  # set by close: lanes stop instead of waiting
        self._pruned_at = time.monotonic()
        self._backlog = False
        self._stalled: frozenset[Hashable] = frozenset()
        self._token_group = token_group or _one_group
        self._in_requests: Counter[Hashable] = Counter()
        self.stats = DeliveryStats()

    # -- public API ----------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Submitted tokens still without an outcome."""
        return self._outstanding

    def parks(self) -> list[tuple[str, str | None, str, float]]:
        """Active parks as (merchant, endpoint or None, reason, seconds left): for debug."""
        now = time.monotonic()
        return [(p.merchant_id, p.endpoint, p.reason, p.until - now) for p in self._parks.parks()]

    def in_requests(self, group: Hashable = None) -> int:
        """Operations of ``group`` (see ``token_group``) in a lane's batch in hand: at most one
        request's worth per lane. Coalesced repeats are not counted (they wait, for all the
        caller knows)."""
        return self._in_requests[group]

    def submit(
        self, operation: Operation, token: Hashable, produced_at: float | None = None
    ) -> None:
        """Take ``operation`` (identified by ``token``); its outcome is reported later.

        ``produced_at`` (on ``time.monotonic()``, default now) is when the operation was
        produced: its lane's linger counts from it, so time it already waited upstream counts.

        Raises:
            SinkClosed: the sink is closing or closed.
        """
        if self._closed.is_set():
            raise SinkClosed("submit after close")
        self._outstanding += 1
        self._idle.clear()
        self.stats.submitted += 1
        lane: Lane = (operation.merchant_id, endpoint_of(operation))
        merchant = _usable(operation.merchant_id, self._lookup(operation.merchant_id))
        if isinstance(merchant, DeliveryError):
            self._report(Parked(token, operation, merchant.reason))
            return
        park = self._parks.active(*lane, fingerprint=lambda: key_fingerprint(merchant.api_key))
        if park is not None:
            self._report(Parked(token, operation, park.reason, park.detail))
            return
        try:
            _, coalesced = self._batcher.add(operation, token, time.monotonic(), produced_at)
        except OperationTooLarge as exc:
            self._report(DeadLettered(token, operation, exc.reason, str(exc)))
            return
        if coalesced:
            self.stats.coalesced += 1
            return
        self._ensure_lane(lane)
        state = self._lanes[lane]
        due = self._batcher.due_in(
            lane, time.monotonic(), idle_since=state.idle_since, backlog=self._lane_backlog(lane)
        )
        if due == 0.0:
            state.wakeup.set()

    def set_backlog(self, backlog: bool, stalled: Collection[Hashable] = ()) -> None:
        """Tell whether more input waits upstream than has been submitted (lanes then wait
        longer for full batches; see ``batcher``), and which token groups are ``stalled``
        (nothing more reaches them until their lanes send: their fullest lane does not wait
        longer, one request at a time). When that changes for a lane, it re-plans at once."""
        stalled = frozenset(stalled)
        if (self._backlog and not backlog) or not stalled <= self._stalled:
            self._wake_all()
        self._backlog, self._stalled = backlog, stalled

    def _wake_all(self) -> None:
        for state in self._lanes.values():
            state.wakeup.set()

    def _lane_backlog(self, lane: Lane) -> bool:
        if not self._backlog:
            return False
        head = self._batcher.head(lane)
        if head is None:
            return True
        group = self._token_group(head.token)
        return group not in self._stalled or lane != self._next_of(group)

    def _next_of(self, group: Hashable) -> Lane | None:
        """The one lane of a stalled ``group`` that sends without waiting longer: its
        fullest, once none of its lanes has a request out. One at a time, as each request
        frees room upstream (the partition may resume and fill the others): with more lanes
        than the bound holds full batches for, they all fill alike, and sending them all at
        once would make each request partial."""
        if self._in_requests[group]:
            return None
        lanes = [
            lane
            for lane in self._batcher.lanes()
            if (head := self._batcher.head(lane)) is not None
            and self._token_group(head.token) == group
        ]
        return max(lanes, key=self._batcher.queued, default=None)

    def revoke(self, revoked: Callable[[Hashable], bool]) -> int:
        """Forget every operation whose token is ``revoked``; returns how many were dropped.

        For partitions a rebalance took away: their next owner sends these operations again,
        so they get no outcome. A lane whose batch in hand holds some of them stops at once
        (a request in flight is abandoned; when the next owner repeats it, Klaviyo keeps one
        event per ``unique_id``); the rest of its work is queued again and sent by a new lane
        task. Operations not revoked keep their place.
        """
        dropped = 0
        for lane in set(self._lanes) | set(self._batcher.lanes()):
            state = self._lanes.get(lane)
            hand = _unresolved(state.work) if state else []
            in_hand, from_hand = self._forget(hand, revoked)
            queued, from_queue = self._forget(self._batcher.drain(lane), revoked)
            dropped += from_hand + from_queue
            if state is not None and from_hand:
                for pending in in_hand:  # back in the queue
                    self._leave_request(pending)
                del self._lanes[lane]
                state.work = deque()
                if state.task is not None:
                    state.task.cancel()
                queued = in_hand + queued
            self._batcher.requeue(lane, queued)
            if queued:
                self._ensure_lane(lane)
        self._outstanding -= dropped
        self.stats.revoked += dropped
        if self._outstanding == 0:
            self._idle.set()
        return dropped

    def _forget(
        self, items: list[Pending], revoked: Callable[[Hashable], bool]
    ) -> tuple[list[Pending], int]:
        """``items`` without revoked tokens (repeats included), and how many tokens went."""
        kept: list[Pending] = []
        dropped = 0
        for pending in items:
            tokens = [pending.token, *(token for token, _ in pending.followers)]
            live = [(t, o) for t, o in pending.followers if not revoked(t)]
            if not revoked(pending.token):
                live.insert(0, (pending.token, pending.operation))
            dropped += len(tokens) - len(live)
            if not live:
                pending.done = True
                self._batcher.release(pending)
                self._leave_request(pending)
                continue
            # A repeat that stays takes the lead: the operation sent is the same fact.
            pending.token, pending.followers = live[0][0], live[1:]
            kept.append(pending)
        return kept, dropped

    async def flush(self, deadline: float | None = None) -> bool:
        """Send everything queued now (no linger) and wait for every outcome.

        ``deadline`` is on ``time.monotonic()``; returns False if it passed first.
        """
        self._flushing += 1
        try:
            for lane in self._lanes.values():
                lane.wakeup.set()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
            except TimeoutError:
                return False
            return True
        finally:
            self._flushing -= 1

    async def close(self, deadline: float) -> None:
        """Stop taking operations, send what may go out at once, park the rest.

        Every lane sends its batch in hand and then what it has queued, for as long as it
        may send without waiting: a lane that would have to wait (its rate limit, Klaviyo's
        ``Retry-After``, a retry's backoff) stops there instead of holding the stop up until
        ``deadline``. Requests in flight get until ``deadline``. What is left is parked with
        reason ``shutdown``: the caller leaves it uncommitted, so it is sent again after the
        restart (Klaviyo keeps one event per ``unique_id``).

        After it returns every submitted token has its outcome, the lane tasks are gone and
        the HTTP client is closed. ``deadline`` is on ``time.monotonic()``.
        """
        self._closed.set()
        self._flushing += 1
        # Keep the lane states: a lane that stops removes itself, but its batch in hand
        # still needs an outcome.
        lanes = list(self._lanes.values())
        for state in lanes:
            state.wakeup.set()
        tasks = [s.task for s in lanes if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for state in lanes:
            self._park_items(_unresolved(state.work), SHUTDOWN)
        for lane in list(self._batcher.lanes()):
            self._park_items(self._batcher.drain(lane), SHUTDOWN)
        self._lanes.clear()
        await self._client.close()

    async def _hold(self, seconds: float) -> bool:
        """Wait ``seconds`` before a send; False once the sink closes (the lane stops)."""
        await _wait(self._closed, seconds)
        return not self._closed.is_set()

    # -- outcomes ------------------------------------------------------------------------

    def _report(self, outcome: Outcome) -> None:
        self.stats.count(outcome)
        self._outstanding -= 1
        if self._outstanding == 0:
            self._idle.set()
        try:
            self._on_outcome(outcome)
        except Exception:  # a boundary: the runtime's callback must not kill a lane
            self.stats.callback_errors += 1
            logger.exception("outcome callback failed", extra={"outcome": type(outcome).__name__})

    def _enter_request(self, items: list[Pending]) -> None:
        for pending in items:
            pending.in_request = True
            pending.request_group = self._token_group(pending.token)
            self._in_requests[pending.request_group] += 1

    def _leave_request(self, pending: Pending) -> None:
        if pending.in_request:
            pending.in_request = False
            self._in_requests[pending.request_group] -= 1
            if not self._in_requests[pending.request_group]:
                del self._in_requests[pending.request_group]
                if pending.request_group in self._stalled:  # its lanes may be due now
                    self._wake_all()

    def _resolve(self, pending: Pending, make: Callable[[Hashable, Operation], Outcome]) -> None:
        """Report ``pending``'s outcome for its own token and every coalesced repeat."""
        if pending.done:
            return
        pending.done = True
        self._batcher.release(pending)
        self._leave_request(pending)
        self._report(make(pending.token, pending.operation))
        for token, operation in pending.followers:
            self._report(make(token, operation))

    def _accept(self, items: list[Pending]) -> None:
        for pending in items:
            if pending.done:
                continue
            pending.done = True
            self._batcher.release(pending)
            self._leave_request(pending)
            self._report(Accepted(pending.token, pending.operation))
            for token, operation in pending.followers:
                self._report(Accepted(token, operation, duplicate=True))

    def _dead_letter(self, pending: Pending, reason: str, detail: str) -> None:
        self._resolve(pending, lambda t, o: DeadLettered(t, o, reason, detail))

    def _park_items(self, items: list[Pending], reason: str, detail: str = "") -> None:
        for pending in items:
            self._resolve(pending, lambda t, o: Parked(t, o, reason, detail))

    def _park(self, lane: Lane, error: DeliveryError, merchant: MerchantSettings | None) -> None:
        """Park the lane's merchant (or just the lane) and everything it has queued."""
        merchant_id, endpoint = lane
        scope = None if error.parks_merchant else endpoint
        fingerprint = None
        if merchant is not None and error.status in (401, 403):
            fingerprint = key_fingerprint(merchant.api_key)
        if not isinstance(error, MerchantUnavailable):
            # Settings are looked up on every submit; only Klaviyo's answers need a memory.
            self._parks.park(merchant_id, scope, error.reason, error.detail, fingerprint)
        logger.warning(
            "klaviyo lane parked",
            extra={"merchant_id": merchant_id, "endpoint": scope or "*", "reason": error.reason},
        )
        for other in list(self._batcher.lanes()):
            if other[0] == merchant_id and (scope is None or other[1] == scope):
                self._park_items(self._batcher.drain(other), error.reason, error.detail)

    # -- lanes ---------------------------------------------------------------------------

    def _ensure_lane(self, lane: Lane) -> None:
        if lane in self._lanes:
            return
        state = _LaneTask(wakeup=asyncio.Event(), work=deque())
        state.task = asyncio.create_task(
            self._run_lane(lane, state), name=f"klaviyo-lane:{lane[0]}:{lane[1]}"
        )
        self._lanes[lane] = state

    async def _run_lane(self, lane: Lane, state: _LaneTask) -> None:
        """Cut and deliver the lane's batches until it is empty, then end."""
        try:
            while True:
                due = self._batcher.due_in(
                    lane,
                    time.monotonic(),
                    flushing=self._flushing > 0,
                    idle_since=state.idle_since,
                    backlog=self._lane_backlog(lane),
                )
                if due is None:
                    return
                if due > 0:
                    state.wakeup.clear()
                    await _wait(state.wakeup, due)
                    continue
                # Batches are cut only when a request may go out, so a throttled lane keeps
                # filling its next batch instead of queueing many small ones.
                delay = self._limiter.delay(*lane)
                if delay > 0:
                    self._metrics.klaviyo_rate_limit_wait.labels(lane[1]).inc(delay)
                    if not await self._hold(delay):
                        return
                    continue
                batch = self._batcher.cut(lane)
                if batch is not None:
                    if not await self._deliver(batch, state):
                        return
                    state.idle_since = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a boundary: a bug parks this lane, never loses outcomes
            logger.exception("klaviyo lane failed", extra={"merchant_id": lane[0]})
            reason = f"{INTERNAL_ERROR}: {type(exc).__name__}"
            self._park_items(_unresolved(state.work), INTERNAL_ERROR, reason)
            self._park_items(self._batcher.drain(lane), INTERNAL_ERROR, reason)
        finally:
            if self._lanes.get(lane) is state:
                del self._lanes[lane]
            now = time.monotonic()
            if now - self._pruned_at > PRUNE_INTERVAL_SECONDS:
                self._pruned_at = now
                self._limiter.prune()

    async def _deliver(self, batch: Batch, state: _LaneTask) -> bool:
        """Send ``batch`` until every operation in it has an outcome; False if the sink
        closed while it had to wait (what is unresolved stays in ``state.work``)."""
        lane = batch.lane
        state.work = deque([batch.items])
        self._enter_request(batch.items)
        budget = RetryBudget(self._retry, self._settings.retry_budget_seconds, self._rng)
        while state.work:
            items = state.work[0]
            merchant = _usable(lane[0], self._lookup(lane[0]))
            if isinstance(merchant, DeliveryError):
                self._park(lane, merchant, None)
                self._park_items(_unresolved(state.work), merchant.reason)
                return True
            delay = self._limiter.delay(*lane)
            if delay > 0:
                self._metrics.klaviyo_rate_limit_wait.labels(lane[1]).inc(delay)
                if not await self._hold(delay):
                    return False
                continue
            error, built = await self._send(Batch(lane, items), merchant)
            if error is None:
                state.work.popleft()
                self._accept(items)
                budget.succeeded()
                continue
            if error.retriable:
                if isinstance(error, Throttled):
                    self._limiter.throttled(*lane, error.retry_after)
                wait = budget.next_wait(error, time.monotonic())
                if wait is None:
                    self._park(lane, error, merchant)
                    self._park_items(_unresolved(state.work), error.reason, error.detail)
                    return True
                self.stats.retries += 1
                self._metrics.klaviyo_retries.labels(lane[1]).inc()
                # The limiter holds throttled lanes.
                if not isinstance(error, Throttled) and not await self._hold(wait):
                    return False
                continue
            if error.parks_merchant or error.parks_endpoint:
                self._park(lane, error, merchant)
                self._park_items(_unresolved(state.work), error.reason, error.detail)
                return True
            self._isolate(state.work, error, built)
        return True

    async def _send(
        self, batch: Batch, merchant: MerchantSettings
    ) -> tuple[DeliveryError | None, BuiltRequest]:
        """One request for ``batch``: build, pace, POST, classify, log. Never raises
        ``DeliveryError``; returns the classified error (None = accepted) and what was sent."""
        lane = batch.lane
        built = batch.build()
        payload = serialize(built.body)
        if len(payload) > self._settings.batch_max_bytes and len(batch.items) > 1:
            # The batcher's size bound is an estimate; the serialized body is the truth.
            return UnattributedRejection("body over batch_max_bytes"), built
        path = EVENTS_PATH if lane[1] == BULK_CREATE_EVENTS else SUBSCRIPTIONS_PATH
        self._limiter.record_send(*lane)
        self.stats.requests[lane[1]] += 1
        self.stats.request_bytes += len(payload)
        started = time.monotonic()
        status = 0
        try:
            response = await self._client.post(path, merchant.api_key, payload)
        except KlaviyoUnavailable as exc:
            error: DeliveryError | None = exc
        else:
            status = response.status
            error = classify(response.status, response.headers, response.body)
            if not isinstance(error, Throttled):
                self._limiter.observe(*lane, rate_limit_headers(response.headers))
        self.stats.responses[str(status)] += 1
        self._metrics.klaviyo_request(lane[1], status, time.monotonic() - started, len(batch.items))
        logger.info(
            "klaviyo request",
            extra={
                "merchant_id": lane[0],
                "endpoint": lane[1],
                "status": status,
                "events": len(batch.items),
                "bytes": len(payload),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "error": None if error is None else error.reason,
            },
        )
        return error, built

    def _isolate(
        self, work: deque[list[Pending]], error: DeliveryError, built: BuiltRequest
    ) -> None:
        """Dead-letter what Klaviyo named, or split to find it; the rest is sent again."""
        items = work.popleft()
        named: dict[int, str] = {}
        if isinstance(error, InvalidOperations):
            for pointer, detail in error.details.items():
                for index in built.positions(pointer):
                    text = f"{detail} (at {pointer})"
                    named[index] = f"{named[index]}; {text}" if index in named else text
        if named:
            for index, detail in named.items():
                self._dead_letter(items[index], error.reason, detail)
            rest = [p for i, p in enumerate(items) if i not in named]
            if rest:
                work.appendleft(rest)
            return
        if len(items) == 1:
            self._dead_letter(items[0], error.reason, error.detail or str(error))
            return
        self.stats.splits += 1
        half = len(items) // 2
        work.appendleft(items[half:])
        work.appendleft(items[:half])


def _usable(
    merchant_id: str, merchant: MerchantSettings | None
) -> MerchantSettings | DeliveryError:
    """The merchant's settings if they allow sending, else why not."""
    if merchant is None:
        return MerchantNotIntegrated(f"merchant {merchant_id!r} has no Klaviyo integration")
    if not merchant.enabled:
        return MerchantDisabled(f"merchant {merchant_id!r} has its integration disabled")
    return merchant


def _one_group(_token: Hashable) -> Hashable:
    return None


def _unresolved(work: deque[list[Pending]]) -> list[Pending]:
    """Operations of a lane's batch in hand that still lack an outcome."""
    return [pending for items in work for pending in items if not pending.done]


async def _wait(event: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109 -- linger
    """Wait for ``event`` or ``timeout`` seconds, whichever comes first."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
