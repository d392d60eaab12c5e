"""Analytic prices: kernels of kinds nobody measured, from what the device is measured to do.

A GPU kernel of a kind without a learned regressor (element-wise ops of any arity, activations,
PAD, RESIZE, SOFTMAX, TRANSPOSE, BATCH_MATMUL, GATHER, copies, reductions, the pieces of a
layer norm, ...) costs, on one device::

    ms = factor[class] * (launches * launch_ms + MB moved * ms_per_mb + GFLOP * ms_per_gflop
                          + wave steps / 1000 * ms_per_k_wave_steps)

with the work counted by :mod:`tflat.pricing.work` (fp16 tensors in slices of 4 channels, as the
delegate stores them). The four rates are fitted per device on the USC kernels of every
measured kind (``scripts/fit_pricing.py``, :mod:`tflat.pricing.fitting`); the 80 % interval
``log_interval`` comes from pricing whole measured kinds as if nobody had measured them (leave
one kind out), so it says how far off a kind the data never saw lands. It is asymmetric around
the central price, which is never shifted (a whole-model term fitted on these prices stays
valid when the interval is recalibrated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tflat.predict.rates import AnalyticParams, KernelWork, shape_works
from tflat.predict.sections import borrowed_note
from tflat.pricing.base import Basis, FittedPricer, Price, Pricer, PricingContext
from tflat.pricing.work import kernel_ops, kernel_work

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel

#: Kinds the learned side describes as a KernelShape: their work is counted its way.
SHAPE_KINDS = frozenset(
    {"conv2d", "grouped_conv2d", "depthwise_conv2d", "transpose_conv", "fully_connected",
     "pool", "mean", "concat"}
)  # fmt: skip


class AnalyticPricer(FittedPricer, Pricer):
    """Prices any GPU kernel from the device's analytic rates (basis ``analytic``)."""

    basis = Basis.ANALYTIC

    params_type = AnalyticParams
    params: AnalyticParams

    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        bpe = 4 if ctx.precision == "fp32" else 2
        out: list[Price] = []
        for k, work in zip(kernels, self.works(ctx, kernels, bpe), strict=True):
            ms = self.params.ms(work)
            lo, hi = self.params.log_interval
            note = (
                f"no {k.kind} measurements on this device: {work.mbytes:.3g} MB moved, "
                f"{work.gflops:.3g} GFLOP at its fitted rates"
            ) + borrowed_note(self.params.borrowed_from, "GPU")
            out.append(Price(ms, ms * math.exp(lo), ms * math.exp(hi), Basis.ANALYTIC, note))
        return out

    def works(
        self, ctx: PricingContext, kernels: Sequence[Kernel], bytes_per_element: int = 2
    ) -> list[KernelWork]:
        """The work of each kernel: kinds the learned side describes as shapes are counted
        its way (as the rates were fitted), every other kind from its ops."""
        from tflat.predict.shapes import shape_from_kernel

        family = self.params.gpu_family
        out: list[KernelWork] = []
        for k in kernels:
            ops = kernel_ops(k.op_indices, ctx.ops_by_index)
            if not ops:
                raise ValueError(f"kernel {k.index} has no op of the graph")
            if k.kind in SHAPE_KINDS and ops[0].outputs and ops[0].activations:
                shape = shape_from_kernel(
                    ctx.graph, k.op_indices, k.kind, k.name, ctx.ops_by_index, family
                )
                out.extend(shape_works([shape], bytes_per_element))
            else:
                out.append(kernel_work(ops, family, bytes_per_element))
        return out
