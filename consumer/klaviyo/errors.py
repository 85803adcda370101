"""Errors of the Klaviyo contract package."""

from consumer.errors import ConsumerError

__all__ = ["ContractError"]


class ContractError(ConsumerError):
    """The vendored contract is missing or corrupt, or an operation is not part of it.

    This is a programming or packaging error, never a property of a request: requests that
    break the contract are reported as ``ContractViolation`` values instead.
    """
