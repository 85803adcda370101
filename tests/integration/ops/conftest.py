"""The runtime tests' stack (topics, sandbox, onboarded merchants) for the ops tests."""

from tests.integration.runtime.conftest import replication_factor, sandbox, stack

__all__ = ["replication_factor", "sandbox", "stack"]
