"""The clock-driven work on tracking state: ``stalled_in_transit`` timers and retention.

Stall timers: a min-heap per partition holds ``(due time, order id)`` for the orders whose
timer is due before the partition's *horizon*, not for every order (with a 72-hour stall
threshold most in-transit orders are days away from theirs, and an entry costs ~120 bytes).
Entries are never removed eagerly: when one comes due, the order's current state says whether
it is still due (state may have moved on, or been removed, since it was scheduled).

Scans: a pass over every key of a partition, a bounded number of keys per call, so a large
state never holds up the stage loop. A pass removes the orders whose retention has run out
(``expires_at`` at the runtime's ``now``; the deletion becomes a changelog tombstone at the
next checkpoint) and moves the horizon to ``now`` + 2 x ``sweep_seconds``, indexing the timers
due up to it that the previous horizon left out. Passes start again every ``sweep_seconds``,
and sooner when the runtime's clock nears the horizon, so a timer is in its heap before it
comes due as long as a pass takes less than ``sweep_seconds``. An *indexing* pass, after a
restore and after an abort (a timer popped inside the aborted transaction would otherwise be
lost), starts from an empty heap and no horizon; until it has begun, every change is indexed.

Failures are per order: when an order's state does not decode, or deriving its timer or its
retention raises, the order is reported as a ``TimerFailure`` (for the caller to dead-letter)
and the others go on. A state that does not decode is removed (a tombstone at the next
checkpoint): it could never fire, expire or serve a record, and it would fail every pass again;
its bytes travel in the failure. A state that decodes is kept, and the order is left out of
every pass and sweep until its state changes or its partition is indexed afresh, so one bug
meeting one order is reported once per indexing pass, not once per sweep.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from consumer.derive import Derivation, DeriveConfig, due_timers, expires_at, next_timer_at
from consumer.merchant import MerchantSettings
from consumer.state.shipments import OrderState, StateFormatError
from consumer.state.store import PartitionKeys, PartitionStore, StateStore

__all__ = ["TimerFailure", "TimerIndex"]


@dataclass(frozen=True, slots=True)
class TimerFailure:
    """An order whose timer or retention could not be worked out."""

    partition: int
    order_id: str
    error: Exception
    state: bytes | None  # the stored value, as the changelog carries it
    merchant_id: str | None  # None when the state does not decode
    removed: bool  # the state did not decode and was removed


@dataclass(slots=True)
class _Pass:
    """A scan in progress over one partition's keys (those live when it started)."""

    keys: PartitionKeys
    after: datetime | None  # timers due up to here are indexed already (None: none are)
    horizon: datetime | None = None  # set when the pass takes its first keys
    position: int = 0
    started_at: float = field(default_factory=time.monotonic)


class TimerIndex:
    """Due times and retention of the orders in a ``StateStore``."""

    def __init__(
        self,
        store: StateStore[OrderState],
        config: DeriveConfig,
        merchants: Callable[[str], MerchantSettings | None],
        sweep_seconds: float,
    ) -> None:
        self._store = store
        self._config = config
        self._merchants = merchants
        self._sweep_seconds = sweep_seconds
        self._lookahead = timedelta(seconds=2 * sweep_seconds)
        self._heaps: dict[int, list[tuple[datetime, str]]] = {}
        self._horizons: dict[int, datetime] = {}  # absent: index every change
        self._passes: dict[int, _Pass] = {}
        self._last_pass: dict[int, float] = {}
        self._failed: dict[int, set[str]] = {}  # orders left out until their state changes

    def schedule(self, partition: int, order_id: str, state: OrderState) -> None:
        """Note the next due time of ``state`` (if any) after it changed."""
        self._failed.get(partition, set()).discard(order_id)
        due = next_timer_at(state, self._merchants(state.merchant_id), self._config)
        horizon = self._horizons.get(partition)
        if due is not None and (horizon is None or due <= horizon):
            heapq.heappush(self._heaps.setdefault(partition, []), (due, order_id))

    def reindex(self, partitions: list[int]) -> None:
        """Forget the timers of ``partitions`` and index them afresh, scan by scan."""
        for partition in partitions:
            self._heaps[partition] = []
            self._horizons.pop(partition, None)
            self._failed.pop(partition, None)
            self._passes[partition] = _Pass(self._store.partition(partition).keys(), after=None)

    def rebuild(self) -> None:
        """Index every owned partition afresh (after an abort)."""
        self.reindex(self._store.owned())

    def drop(self, partitions: list[int]) -> None:
        """Forget partitions no longer owned."""
        for partition in partitions:
            self._heaps.pop(partition, None)
            self._horizons.pop(partition, None)
            self._passes.pop(partition, None)
            self._last_pass.pop(partition, None)
            self._failed.pop(partition, None)

    @property
    def scanning(self) -> bool:
        """Whether a scan is part-way (the caller should come back soon)."""
        return bool(self._passes)

    def scan(self, now: datetime, budget: int) -> tuple[int, list[TimerFailure]]:
        """Advance the scans by up to ``budget`` keys; returns how many orders were removed
        as expired, and the orders that failed."""
        self._start_passes(now)
        removed = 0
        failures: list[TimerFailure] = []
        for partition, scan in list(self._passes.items()):
            store = self._store.partition(partition)
            if scan.horizon is None:
                scan.horizon = now + self._lookahead
                self._horizons[partition] = scan.horizon
            end = min(len(scan.keys), scan.position + budget)
            for order_id in scan.keys.between(scan.position, end):
                state = self._read(partition, store, order_id, store.peek, failures)
                if state is None:
                    continue
                try:
                    if expires_at(state, self._config) <= now:
                        store.put(order_id, None)  # its stall timer is skipped once due
                        removed += 1
                        continue
                    due = next_timer_at(state, self._merchants(state.merchant_id), self._config)
                except Exception as exc:  # noqa: BLE001 -- the order boundary (module doc)
                    failures.append(self._failure(partition, store, order_id, exc, state))
                    continue
                if (
                    due is not None
                    and due <= scan.horizon
                    and (scan.after is None or due > scan.after)
                ):
                    heapq.heappush(self._heaps.setdefault(partition, []), (due, order_id))
            budget -= end - scan.position
            scan.position = end
            if end == len(scan.keys):
                del self._passes[partition]
                self._last_pass[partition] = scan.started_at
            if budget <= 0:
                break
        return removed, failures

    def _start_passes(self, now: datetime) -> None:
        monotonic = time.monotonic()
        for partition in self._store.owned():
            if partition in self._passes:
                continue
            swept = monotonic - self._last_pass.get(partition, monotonic) >= self._sweep_seconds
            horizon = self._horizons.get(partition)
            near = horizon is not None and now + self._lookahead / 2 >= horizon
            if swept or near:
                keys = self._store.partition(partition).keys()
                self._passes[partition] = _Pass(keys, after=horizon)

    def fire(self, now: datetime) -> tuple[list[tuple[str, Derivation]], list[TimerFailure]]:
        """Derive every timer due at ``now``; new states are written to the store.

        Returns ``(merchant id, derivation)`` pairs for the caller to write to the outbox, and
        the orders that failed (their timers are dropped).
        """
        fired: list[tuple[str, Derivation]] = []
        failures: list[TimerFailure] = []
        for partition, heap in self._heaps.items():
            store = self._store.partition(partition)
            while heap and heap[0][0] <= now:
                _, order_id = heapq.heappop(heap)
                state = self._read(partition, store, order_id, store.get, failures)
                if state is None:
                    continue
                try:
                    merchant = self._merchants(state.merchant_id)
                    due = next_timer_at(state, merchant, self._config)
                    if due is None or due > now:
                        continue  # state moved on; a fresh entry was pushed when it changed
                    result = due_timers(order_id, state, merchant, now, self._config)
                except Exception as exc:  # noqa: BLE001 -- the order boundary (module doc)
                    failures.append(self._failure(partition, store, order_id, exc, state))
                    continue
                if result.state is not None:
                    store.put(order_id, result.state)
                    self.schedule(partition, order_id, result.state)
                fired.append((state.merchant_id, result))
        return fired, failures

    def _read(
        self,
        partition: int,
        store: PartitionStore[OrderState],
        order_id: str,
        read: Callable[[str], OrderState | None],
        failures: list[TimerFailure],
    ) -> OrderState | None:
        """The state of ``order_id`` by ``read``; None if it has none, has failed already, or
        does not decode (then it is removed and a failure noted)."""
        if order_id in self._failed.get(partition, ()):
            return None
        try:
            return read(order_id)
        except StateFormatError as exc:
            data = store.encoded(order_id)
            store.put(order_id, None)
            failures.append(TimerFailure(partition, order_id, exc, data, None, removed=True))
            return None

    def _failure(
        self,
        partition: int,
        store: PartitionStore[OrderState],
        order_id: str,
        error: Exception,
        state: OrderState,
    ) -> TimerFailure:
        self._failed.setdefault(partition, set()).add(order_id)
        data = store.encoded(order_id)
        return TimerFailure(partition, order_id, error, data, state.merchant_id, removed=False)
