"""The GPU math precision of an estimate: which one it assumes, and GPU prices moved to it.

A device's data was measured in one math precision (its bundle says which; the shipped phones'
in fp16, benchmark_model's default). Every pricer prices in that one
(``PricingContext.precision``). An estimate in the other one (``--precision``) moves each GPU
kernel's price by its own factor (:func:`tflat.gpu.precision.time_factor`, from where the
learned predictor says its time goes): basis ``extrapolated`` (an ``analytic`` price stays
``analytic``, the weaker of the two), a note naming both precisions and the factor, the
interval stretched to the least and most any kernel's factor can be, and a warning on the
estimate. Kernels on the CPU compute in fp32 whatever the GPU does and keep their price.

A predictor that cannot tell where a kernel's time goes (a calibrated CPU or phone) prices the
precision its data was measured in only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tflat.errors import PredictorError
from tflat.pricing.base import Basis, Price, PricingContext

if TYPE_CHECKING:
    from tflat.gpu.precision import PrecisionMove
    from tflat.pricing.learned import LearnedPricer


@dataclass(frozen=True)
class InPrecision:
    """Prices moved to another math precision, with the total's interval and the warning."""

    prices: dict[int, Price]
    low_ms: float
    high_ms: float
    warning: str


def check_precision(learned: LearnedPricer, asked: str | None) -> str:
    """The precision an estimate assumes: ``asked`` ("fp16" or "fp32", else a one-line
    :class:`~tflat.errors.SpecError`), or the one the device's data was measured in."""
    from tflat.gpu.precision import load_precision_facts

    return learned.precision if asked is None else load_precision_facts().check(asked)


def in_precision(
    ctx: PricingContext,
    learned: LearnedPricer,
    prices: Mapping[int, Price],
    interval: tuple[float, float],
    base_total_ms: float,
    wanted: str,
) -> InPrecision:
    """``prices`` (in ``ctx.precision``, every kernel of ``ctx.kernels``) and the total's
    ``interval`` (of ``base_total_ms``) in ``wanted`` math. Raises
    :class:`~tflat.errors.PredictorError` when the predictor cannot move them."""
    measured = ctx.precision
    gpu = [k for k in ctx.kernels if k.on_gpu and k.kind != "free" and prices[k.index].ms > 0]
    move = learned.precision_move(ctx, gpu, wanted)
    if move is None:
        raise PredictorError(
            f"{learned.device} computes in {measured} only: its predictor cannot extrapolate "
            f"--precision {wanted} (that is for the GPU phones' predictors)"
        )
    moved = dict(prices)
    for k in gpu:
        moved[k.index] = _moved(prices[k.index], move.factor(k.index), move)
    shift_ms = sum(moved[k.index].ms - prices[k.index].ms for k in gpu)
    low, high = _stretched(interval, base_total_ms, sum(prices[k.index].ms for k in gpu), move)
    total = base_total_ms + shift_ms
    warning = (
        f"{wanted} math is extrapolated from {measured} measurements (tensor bytes and ALU "
        "rates of the delegate's two precisions, per kernel)"
    )
    return InPrecision(moved, min(low, total), max(high, total), warning)


def _moved(price: Price, factor: float, move: PrecisionMove) -> Price:
    basis = Basis.EXTRAPOLATED if price.basis == Basis.LEARNED else price.basis
    why = f"{move.wanted} math extrapolated from {move.measured} measurements (x{factor:.2f})"
    return Price(
        price.ms * factor,
        price.low_ms * move.least,
        price.high_ms * move.most,
        basis,
        "; ".join(n for n in (price.note, why) if n),
    )


def _stretched(
    interval: tuple[float, float], base_total_ms: float, gpu_ms: float, move: PrecisionMove
) -> tuple[float, float]:
    """The total's interval with its GPU share (``gpu_ms`` of ``base_total_ms``) taken at the
    least and the most factor a kernel can have: in the other precision the GPU time may lie
    anywhere between (fp16 -> fp32: x1 to x2)."""
    if base_total_ms <= 0:
        return interval
    low, high = interval
    low *= (base_total_ms + (move.least - 1.0) * gpu_ms) / base_total_ms
    high *= (base_total_ms + (move.most - 1.0) * gpu_ms) / base_total_ms
    return low, high
