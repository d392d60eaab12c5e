"""Pricing: a kernel goes in, a latency with an interval and a basis comes out.

See :mod:`tflat.pricing.base` for the contract every pricer keeps.
"""

from tflat.pricing.base import (
    INTERVAL_LEVEL,
    Basis,
    EdgePricer,
    PartitionEdge,
    Price,
    Pricer,
    PricingContext,
)

__all__ = [
    "INTERVAL_LEVEL",
    "Basis",
    "EdgePricer",
    "PartitionEdge",
    "Price",
    "Pricer",
    "PricingContext",
]
