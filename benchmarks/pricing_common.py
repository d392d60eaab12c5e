"""What the pricing benchmarks share: where the public data is, and an estimate's summary.

Every figure comes from the public API (``tflat.estimate``): the registry routes each kernel to
its pricer and ``tflat.pricing.compose`` builds the Estimate, as a user gets it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tflat


def shared_data_dir() -> Path:
    """The public data folder: beside TFLAT_USC_DIR when set, else ../shared/data next to the
    repository (the package ships only the USC files)."""
    env = os.environ.get("TFLAT_USC_DIR")
    if env:
        return Path(env).parent
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def learned_share(est: tflat.Estimate) -> float:
    """The share of the priced time (overhead excluded) that rests on learned prices."""
    priced = est.total_ms - est.overhead_ms
    return est.basis_ms["learned"] / priced if priced > 0 else 0.0


def relative_interval(est: tflat.Estimate) -> float:
    """The 80 % interval's width over the total."""
    return (est.total_high_ms - est.total_low_ms) / est.total_ms


def summary(est: tflat.Estimate) -> dict[str, Any]:
    return {
        "total_ms": est.total_ms,
        "low_ms": est.total_low_ms,
        "high_ms": est.total_high_ms,
        "overhead_ms": est.overhead_ms,
        "relative_interval": relative_interval(est),
        "basis_ms": est.basis_ms,
        "learned_share": learned_share(est),
        "cpu_fallback_ms": est.cpu_ms,
        "transfer_ms": est.transfer_ms,
        "partitions": len(est.partitions),
        "warnings": list(est.warnings),
    }


def kernel_of(est: tflat.Estimate, op_type: str) -> tflat.KernelEstimate:
    """The first kernel whose main op is of ``op_type``."""
    types = {layer.index: layer.type for layer in est.layers}
    return next(k for k in est.kernels if types[k.op_indices[0]] == op_type)
