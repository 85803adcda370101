"""Which orders have a timer due (``stalled_in_transit``), without scanning every order.

A min-heap per partition holds ``(due time, order id)``. Entries are never removed eagerly:
when one comes due, the order's current state says whether it is still due (state may have
moved on since it was scheduled). After an abort the heaps are rebuilt from the rewound state,
because a timer popped inside the aborted transaction would otherwise be lost.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

from consumer.derive import Derivation, DeriveConfig, due_timers, next_timer_at
from consumer.merchant import MerchantSettings
from consumer.state.shipments import OrderState
from consumer.state.store import StateStore

__all__ = ["TimerIndex"]


class TimerIndex:
    """Due times of the orders in a ``StateStore``."""

    def __init__(
        self,
        store: StateStore[OrderState],
        config: DeriveConfig,
        merchants: Callable[[str], MerchantSettings | None],
    ) -> None:
        self._store = store
        self._config = config
        self._merchants = merchants
        self._heaps: dict[int, list[tuple[datetime, str]]] = {}

    def schedule(self, partition: int, order_id: str, state: OrderState) -> None:
        """Note the next due time of ``state`` (if any) after it changed."""
        due = next_timer_at(state, self._merchants(state.merchant_id), self._config)
        if due is not None:
            heapq.heappush(self._heaps.setdefault(partition, []), (due, order_id))

    def rebuild_partition(self, partition: int) -> None:
        """Index every order of ``partition`` afresh (after restore)."""
        self._heaps[partition] = []
        for order_id, state in self._store.partition(partition).items():
            self.schedule(partition, order_id, state)

    def rebuild(self) -> None:
        """Index every owned partition afresh (after an abort)."""
        for partition in self._store.owned():
            self.rebuild_partition(partition)

    def drop(self, partitions: list[int]) -> None:
        """Forget partitions no longer owned."""
        for partition in partitions:
            self._heaps.pop(partition, None)

    def fire(self, now: datetime) -> list[tuple[str, Derivation]]:
        """Derive every timer due at ``now``; new states are written to the store.

        Returns ``(merchant id, derivation)`` pairs for the caller to write to the outbox.
        """
        fired: list[tuple[str, Derivation]] = []
        for partition, heap in self._heaps.items():
            store = self._store.partition(partition)
            while heap and heap[0][0] <= now:
                _, order_id = heapq.heappop(heap)
                state = store.get(order_id)
                if state is None:
                    continue
                merchant = self._merchants(state.merchant_id)
                due = next_timer_at(state, merchant, self._config)
                if due is None or due > now:
                    continue  # state moved on; a fresh entry was pushed when it changed
                result = due_timers(order_id, state, merchant, now, self._config)
                if result.state is not None:
                    store.put(order_id, result.state)
                    self.schedule(partition, order_id, result.state)
                fired.append((state.merchant_id, result))
        return fired
