"""Which outbox offsets may be committed: a pure per-partition tracker.

Operations finish out of order (one merchant waits on a rate limit while another is accepted),
but a Kafka commit says "everything before this offset is done". So the commit position is
the end of the contiguous prefix of *submitted* offsets that are finished. Offsets need not be
consecutive numbers: under ``read_committed`` transaction markers and aborted records take
offsets that are never delivered to us, so the prefix is over what was submitted, in order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["OffsetTracker"]


@dataclass(slots=True)
class _Partition:
    submitted: deque[int] = field(default_factory=deque)  # in order, until committable
    open: set[int] = field(default_factory=set)  # submitted, not finished
    committable: int | None = None  # next offset to commit, once something finished


class OffsetTracker:
    """Submitted and finished offsets per partition; answers "commit up to where?".

    Partitions are any hashable id (an int, or ``(topic, partition)``).
    """

    def __init__(self) -> None:
        self._partitions: dict[object, _Partition] = {}

    def submit(self, partition: object, offset: int) -> None:
        """Record that ``offset`` was handed to the sink (offsets increase per partition).

        Raises:
            ValueError: ``offset`` is not greater than the last submitted or committable one.
        """
        state = self._partitions.setdefault(partition, _Partition())
        last = state.submitted[-1] if state.submitted else None
        floor = state.committable - 1 if state.committable is not None else None
        if (last is not None and offset <= last) or (floor is not None and offset <= floor):
            raise ValueError(f"offset {offset} of {partition!r} is not after the previous one")
        state.submitted.append(offset)
        state.open.add(offset)

    def finish(self, partition: object, offset: int) -> None:
        """Record that ``offset``'s operation has its final outcome (idempotent).

        Raises:
            KeyError: the offset was never submitted, or its partition was revoked.
        """
        state = self._partitions.get(partition)
        if state is None:
            raise KeyError(f"partition {partition!r} is not tracked")
        if offset in state.open:
            state.open.remove(offset)
        elif state.submitted and offset >= state.submitted[0] and offset <= state.submitted[-1]:
            if offset not in state.submitted:
                raise KeyError(f"offset {offset} of {partition!r} was never submitted")
            return  # finished before
        elif state.committable is None or offset >= state.committable:
            raise KeyError(f"offset {offset} of {partition!r} was never submitted")
        # Advance over the finished head; amortised O(1) per offset.
        while state.submitted and state.submitted[0] not in state.open:
            state.committable = state.submitted.popleft() + 1

    def committable(self, partition: object) -> int | None:
        """The next offset to commit (one past the finished prefix), or None if none yet."""
        state = self._partitions.get(partition)
        return None if state is None else state.committable

    def in_flight(self, partition: object) -> int:
        """Submitted but unfinished operations of ``partition`` (for pause/resume)."""
        state = self._partitions.get(partition)
        return 0 if state is None else len(state.open)

    def total_in_flight(self) -> int:
        """Unfinished operations over all partitions."""
        return sum(self.in_flight(p) for p in self._partitions)

    def partitions(self) -> list[object]:
        """The tracked partitions."""
        return list(self._partitions)

    def revoke(self, partition: object) -> None:
        """Forget ``partition`` (after its final commit, or when it is revoked)."""
        self._partitions.pop(partition, None)
