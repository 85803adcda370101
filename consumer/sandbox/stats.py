"""Request counters of the sandbox: what it answered, to whom, for which operation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RESET", "SandboxStats", "StatsRecorder"]

# Outcome of a request whose connection was reset: there is no status code.
RESET = "reset"
# Account of a request whose key the sandbox does not know (or that sent none).
UNKNOWN = "-"


@dataclass(frozen=True)
class SandboxStats:
    """A snapshot of the counters.

    ``requests`` maps (account id, operation id, outcome) to a count, where outcome is the
    HTTP status as a string (``"202"``, ``"429"``) or ``"reset"``; account ``"-"`` is a
    request without a known key. ``duplicates`` maps account id to events not stored because
    their (profile, metric, unique_id) was already stored.
    """

    requests: Mapping[tuple[str, str, str], int]
    duplicates: Mapping[str, int]

    def count(
        self,
        status: int | str | None = None,
        *,
        account_id: str | None = None,
        operation_id: str | None = None,
    ) -> int:
        """Requests matching every given filter (all requests when none is given)."""
        return sum(
            n
            for (account, operation, outcome), n in self.requests.items()
            if (status is None or outcome == str(status))
            and (account_id is None or account == account_id)
            and (operation_id is None or operation == operation_id)
        )

    @property
    def total_requests(self) -> int:
        """Every request answered or reset."""
        return self.count()

    @property
    def throttled(self) -> int:
        """429 answers (rate limits and forced throttling)."""
        return self.count(429)

    @property
    def connection_resets(self) -> int:
        """Requests whose connection was reset on purpose."""
        return self.count(RESET)

    @property
    def duplicate_events(self) -> int:
        """Duplicates over every account."""
        return sum(self.duplicates.values())

    def by_status(self) -> dict[str, int]:
        """Requests per outcome."""
        totals: Counter[str] = Counter()
        for (_, _, outcome), n in self.requests.items():
            totals[outcome] += n
        return dict(sorted(totals.items()))

    def to_json(self) -> dict[str, Any]:
        """JSON view for ``GET /sandbox/stats``."""
        per_account: dict[str, dict[str, dict[str, int]]] = {}
        for (account, operation, outcome), n in sorted(self.requests.items()):
            per_account.setdefault(account, {}).setdefault(operation, {})[outcome] = n
        return {
            "requests": self.by_status(),
            "total_requests": self.total_requests,
            "throttled": self.throttled,
            "connection_resets": self.connection_resets,
            "duplicates": self.duplicate_events,
            "duplicates_by_account": dict(sorted(self.duplicates.items())),
            "accounts": per_account,
        }


class StatsRecorder:
    """The live counters behind ``SandboxStats``."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str, str]] = Counter()

    def record(self, account_id: str | None, operation_id: str, outcome: int | str) -> None:
        """Count one request."""
        self._requests[(account_id or UNKNOWN, operation_id, str(outcome))] += 1

    def snapshot(self, duplicates: Mapping[str, int]) -> SandboxStats:
        """A frozen copy, with the store's duplicate counts."""
        return SandboxStats(requests=dict(self._requests), duplicates=dict(duplicates))

    def clear(self) -> None:
        """Zero every counter."""
        self._requests.clear()
