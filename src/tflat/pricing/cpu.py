"""CPU prices: ops the GPU delegate refuses run on the phone's CPU.

Each op of a refused kernel costs, on one device's CPU (fp32 tensors as TFLite's CPU kernels
store them, channels unpadded)::

    ms = op_ms + GFLOP(dense) * ms_per_gflop_dense + GFLOP(other) * ms_per_gflop_other
              + MB moved * ms_per_mb

``dense`` are the matrix-product ops (convolutions, fully connected, batched products), whose
FLOPs the CPU runs at its GEMM rate; every other op's FLOPs (element-wise, depthwise, pooling,
reductions) and every op's bytes go at the streaming rates. The rates are fitted per phone on
the USC whole-model CPU timings (``<dev>|1large|float|mean``: one big core, the CPU setting the
data has for every phone) -- see :mod:`tflat.pricing.fit_cpu`, which also records the
family-held-out error that gives the interval. Basis ``cpu``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tflat.predict.sections import (
    DEFAULT_BAND,
    Band,
    band_of,
    borrowed_dict,
    borrowed_note,
    borrowed_of,
    check_band,
    check_rates,
    reading,
)
from tflat.pricing.base import Basis, FittedPricer, Price, Pricer, PricingContext
from tflat.pricing.work import kernel_ops, kernel_work

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Op


@dataclass(frozen=True)
class CpuParams:
    """One phone's CPU rates (all >= 0) and the 80 % interval of a price (log ratio)."""

    #: what every op costs however small (TFLite's dispatch of one node)
    op_ms: float
    #: matrix products at the CPU's GEMM rate, everything else at its streaming rates
    ms_per_gflop_dense: float
    ms_per_gflop_other: float
    #: fp32 MB read and written, channels unpadded
    ms_per_mb: float
    #: 80 % band of a matrix product's price (family-held-out whole-model fit)
    log_interval: Band = DEFAULT_BAND
    #: the band of every op but a matrix product: the fit saw their cost only inside whole
    #: CNNs, never one alone, so they carry the band of a kind never measured (the analytic
    #: pricer's, calibrated by leaving whole kinds out)
    other_log_interval: Band = DEFAULT_BAND
    #: the USC CPU configuration the rates were fitted on ("1large": one big core)
    config: str = "1large|float"
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: the phones these rates were borrowed from (a transferred phone: tflat.devices.borrowed)
    borrowed_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_rates("cpu pricing", self, _RATES, positive=("ms_per_gflop_dense", "ms_per_mb"))
        check_band("cpu pricing", "log_interval", self.log_interval)
        check_band("cpu pricing", "other_log_interval", self.other_log_interval)

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> CpuParams:
        with reading("cpu pricing"):
            band = band_of(section)
            return cls(
                **{name: float(section[name]) for name in _RATES},
                log_interval=band,
                other_log_interval=band_of(section, "other_log_interval", band),
                config=str(section.get("config", "1large|float")),
                provenance=dict(section.get("provenance", {})),
                borrowed_from=borrowed_of(section),
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in _RATES},
            "log_interval": list(self.log_interval),
            "other_log_interval": list(self.other_log_interval),
            "config": self.config,
            "provenance": dict(self.provenance),
        } | borrowed_dict(self.borrowed_from)

    def op_cost_ms(self, dense_gflop: float, other_gflop: float, mbytes: float) -> float:
        return (
            self.op_ms
            + dense_gflop * self.ms_per_gflop_dense
            + other_gflop * self.ms_per_gflop_other
            + mbytes * self.ms_per_mb
        )


_RATES = ("op_ms", "ms_per_gflop_dense", "ms_per_gflop_other", "ms_per_mb")

#: Op types whose FLOPs run at the CPU's GEMM rate.
DENSE_OPS = frozenset(
    {"CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV", "CONV_3D",
     "CUSTOM:Convolution2DTransposeBias", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
)  # fmt: skip


def op_work(op: Op) -> tuple[float, float, float]:
    """What the CPU model counts of one op: GEMM GFLOP, other GFLOP, fp32 MB."""
    w = kernel_work([op], bytes_per_element=4, slices=False)
    dense = w.gflops if op.type in DENSE_OPS else 0.0
    return dense, w.gflops - dense, w.mbytes


class CpuPricer(FittedPricer, Pricer):
    """Prices kernels the delegate leaves to the CPU (basis ``cpu``): every op of the kernel
    at the phone's CPU rates."""

    basis = Basis.CPU

    params_type = CpuParams
    params: CpuParams

    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        out: list[Price] = []
        for k in kernels:
            ops = kernel_ops(k.op_indices, ctx.ops_by_index)
            if not ops:
                raise ValueError(f"kernel {k.index} has no op of the graph")
            ms = low = high = 0.0
            for op in ops:
                op_ms = self.params.op_cost_ms(*op_work(op))
                lo, hi = (
                    self.params.log_interval
                    if op.type in DENSE_OPS
                    else self.params.other_log_interval
                )
                ms, low, high = ms + op_ms, low + op_ms * math.exp(lo), high + op_ms * math.exp(hi)
            types = ", ".join(sorted({op.type for op in ops}))
            note = f"the GPU delegate refuses {types}: priced on the CPU ({self.params.config})"
            note += borrowed_note(self.params.borrowed_from, "CPU")
            out.append(Price(ms, min(low, ms), max(high, ms), Basis.CPU, note))
        return out
