"""The bench's merchants, shared by the bench and its peer app (which has fewer packages)."""

from __future__ import annotations

from consumer.devstack.stack import DemoMerchant

__all__ = ["bench_merchants"]


def bench_merchants(count: int) -> list[DemoMerchant]:
    """``count`` fully integrated merchants with stable keys."""
    return [
        DemoMerchant(f"bench-merchant-{i:02d}", f"pk_bench_{i:02d}_{'x' * 24}")
        for i in range(1, count + 1)
    ]
