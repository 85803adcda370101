"""A local Klaviyo: an aiohttp server that answers the endpoints this service uses.

It validates every request against the vendored contract (``consumer.klaviyo``), enforces
Klaviyo's limits, rate windows and unique_id semantics, injects faults on demand, and shows
what it received (admin JSON API under ``/sandbox/``, HTML page at ``/``). Used by tests,
benchmarks and the local demo; see ``Sandbox``.
"""

from consumer.sandbox.accounts import DEFAULT_SCOPES, Account, ApiKey
from consumer.sandbox.admin import apply_faults
from consumer.sandbox.app import Sandbox
from consumer.sandbox.faults import EventRejection, Fault, FaultKind, Faults
from consumer.sandbox.ratelimit import Decision, FixedWindowLimiter
from consumer.sandbox.state import COMPATIBLE_REVISIONS, SandboxOptions
from consumer.sandbox.stats import SandboxStats
from consumer.sandbox.store import StoredEvent, StoredSubscription

__all__ = [
    "COMPATIBLE_REVISIONS",
    "DEFAULT_SCOPES",
    "Account",
    "ApiKey",
    "Decision",
    "EventRejection",
    "Fault",
    "FaultKind",
    "Faults",
    "FixedWindowLimiter",
    "Sandbox",
    "SandboxOptions",
    "SandboxStats",
    "StoredEvent",
    "StoredSubscription",
    "apply_faults",
]
