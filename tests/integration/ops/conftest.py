"""The runtime tests' stack (topics, sandbox, onboarded merchants) for the ops tests."""

from tests.integration.runtime.conftest import sandbox, stack

__all__ = ["sandbox", "stack"]
