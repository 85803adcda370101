"""The runtime that joins the parts: the derive and deliver stages, checkpoints, the service."""

from consumer.runtime.checkpoint import Checkpoint
from consumer.runtime.deliver_stage import DeliverStage
from consumer.runtime.derive_stage import DeriveStage
from consumer.runtime.service import Service, Stage

__all__ = ["Checkpoint", "DeliverStage", "DeriveStage", "Service", "Stage"]
