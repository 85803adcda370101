"""Everything a sandbox knows, shared by its Klaviyo API, admin API, page and Python API."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from consumer.klaviyo import REVISION, RateLimit, operations
from consumer.sandbox.accounts import AccountRegistry
from consumer.sandbox.faults import Faults
from consumer.sandbox.ratelimit import FixedWindowLimiter
from consumer.sandbox.stats import StatsRecorder
from consumer.sandbox.store import EventStore

__all__ = ["COMPATIBLE_REVISIONS", "SandboxOptions", "SandboxState", "default_rate_limits"]

COMPATIBLE_REVISIONS: tuple[str, ...] = tuple(sorted({"2026-04-15", REVISION, "2026-10-15"}))
"""The ``revision`` values the vendored contract describes for the operations we serve.

- ``2026-04-15``: the first with ``backfill`` on events; the bulk ``unique_id`` rule,
  the 400-property limit and the subscription ``relationships.list`` match the vendored spec
  (its event times start at the year 2000, not 1990: no order of ours is that old).
- the vendored revision (``2026-07-15``).
- ``2026-10-15``: the GA revision the official Python SDK (klaviyo-api 25) pins; Klaviyo
  serves it and its spec was not published when we vendored, so these four operations are
  taken as unchanged (Klaviyo keeps request shapes within a revision line).

Older revisions lack ``backfill`` (and differ in limits), so a request valid here could be
refused there: the sandbox answers them 400 on the ``revision`` parameter.
"""


def default_rate_limits() -> dict[str, RateLimit]:
    """The spec's ``x-klaviyo-ratelimit`` of every vendored operation."""
    return {op_id: op.rate_limit for op_id, op in operations().items()}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SandboxOptions:
    """How a sandbox behaves.

    Attributes:
        rate_limits: per operation id; missing ones use the spec's values.
        revisions: ``revision`` header values accepted (None: any well-formed one). The
            default accepts the ``COMPATIBLE_REVISIONS`` only, so a misconfigured client fails
            in tests rather than against a Klaviyo revision the sandbox does not model.
        strict_fields: reject attributes the schemas do not declare, as Klaviyo does.
        enforce_rate_limits: False lifts every rate limit (for benchmarks of the sender).
        clock: monotonic seconds, for rate-limit windows (tests inject a manual clock).
        wall_clock: aware "now", for received times and time-relative rules.
    """

    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    revisions: Collection[str] | None = COMPATIBLE_REVISIONS
    strict_fields: bool = True
    enforce_rate_limits: bool = True
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = _utc_now


class SandboxState:
    """The registry, limiter, faults, store and counters of one sandbox."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.accounts = AccountRegistry()
        self.limiter = FixedWindowLimiter(
            {**default_rate_limits(), **options.rate_limits},
            options.clock,
            enforce=options.enforce_rate_limits,
        )
        self.store = EventStore()
        self.stats = StatsRecorder()
        self._faults: dict[str, Faults] = {}

    def faults(self, account_id: str) -> Faults:
        """The fault plan of an account (created empty on first use; accounts may come later)."""
        return self._faults.setdefault(account_id, Faults())

    def armed_faults(self, account_id: str) -> Faults | None:
        """The account's fault plan if it has one, without creating it."""
        return self._faults.get(account_id)

    def reset(self, *, accounts: bool = False) -> None:
        """Forget received data, counters, rate windows and faults (and accounts if asked)."""
        self.store.clear()
        self.stats.clear()
        self.limiter.clear()
        self._faults.clear()
        if accounts:
            self.accounts.clear()
