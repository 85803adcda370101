"""The few settings derivation needs, as one small frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from consumer.merchant import MerchantSettings
from consumer.settings import DeriveSettings

__all__ = ["DeriveConfig"]


@dataclass(frozen=True, slots=True)
class DeriveConfig:
    """Service-wide derivation parameters (merchants may override the stall threshold).

    ``stall_threshold``: no carrier scan for this long while in transit = ``stalled_in_transit``.
    ``backfill_after``: events that happened longer ago than this (relative to the ``now``
    passed in) are sent with ``backfill=True``, so replays do not fire flows again.
    ``finished_retention`` / ``idle_retention``: how long an order's tracking state is kept
    after its last change once it is finished / while it is not (``timers.expires_at``).
    """

    stall_threshold: timedelta = timedelta(hours=72)
    backfill_after: timedelta = timedelta(hours=72)
    finished_retention: timedelta = timedelta(days=30)
    idle_retention: timedelta = timedelta(days=120)

    @classmethod
    def from_settings(cls, settings: DeriveSettings) -> DeriveConfig:
        """The config for the derive section of the service settings."""
        return cls(
            stall_threshold=timedelta(hours=settings.stall_threshold_hours),
            backfill_after=timedelta(hours=settings.backfill_after_hours),
            finished_retention=timedelta(days=settings.finished_order_retention_days),
            idle_retention=timedelta(days=settings.idle_order_retention_days),
        )

    def stall_threshold_for(self, merchant: MerchantSettings | None) -> timedelta:
        """The merchant's own stall threshold if it set one, else the service default."""
        hours = merchant.stall_threshold_hours if merchant is not None else None
        # A non-positive override would make every in-transit shipment stall at once.
        if hours is not None and hours > 0:
            return timedelta(hours=hours)
        return self.stall_threshold
