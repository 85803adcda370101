"""Backfill: a merchant's history from the input topics to Klaviyo, flagged so no flow fires.

See ``runner`` for how a run goes, ``checkpoint`` for how it survives a crash.
"""

from consumer.backfill.checkpoint import Progress
from consumer.backfill.progress import ProgressReporter
from consumer.backfill.runner import Backfill, BackfillRequest, ProgressCallback, as_history

__all__ = [
    "Backfill",
    "BackfillRequest",
    "Progress",
    "ProgressCallback",
    "ProgressReporter",
    "as_history",
]
