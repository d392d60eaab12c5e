"""Learned pricers: the trained device predictors, as :class:`~tflat.pricing.base.Pricer`.

Two predictors are learned from measurements, and each prices every kernel it is given with
the arithmetic of its own ``predict_graph`` (so estimates keep their figures to the bit):

* :class:`GpuLearnedPricer`, a shipped phone's predictor (:class:`tflat.predict.Predictor`):
  kinds with a regressor (convolutions, depthwise, fully connected, pool, mean, concat) are
  ``learned``; a kind priced through its proxy's regressor (a transposed convolution as a
  convolution), or a kernel outside the trained range (the bundle's ``training_range``: a
  size past the data's, a non-square kernel) is ``extrapolated``, the note naming why, the
  interval the range's wider band; GPU kinds without one (element-wise, resize, pad, ...) cost
  the whole-model term's per-kernel rate (launch + MB written), ``analytic``; kernels the
  delegate refuses cost that rate too, ``cpu``.
* :class:`CpuLearnedPricer`, a calibrated device's predictor
  (:class:`tflat.cpu.predictor.CpuPredictor`): op types with their own regressor are
  ``learned``, others priced by a pooled model (their kind's, or all kinds') are
  ``extrapolated`` with the model named; kernels the delegate refuses are ``cpu``.

Both also answer what only they know about a whole inference: the graph as their runtime
holds it once loaded, its fixed overhead, the interval of a total, and (the GPU one) where each
kernel's time goes, so :mod:`tflat.pricing.precision` can move it to the other math precision
(:class:`LearnedPricer`).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from tflat.errors import PredictorError
from tflat.pricing.base import Basis, Price, Pricer, PricingContext

if TYPE_CHECKING:
    # used as a base class's string subscript only, which ruff does not read as a use
    from tflat.cpu.predictor import CpuPredictor  # noqa: F401
    from tflat.gpu.kernel import Kernel
    from tflat.gpu.precision import PrecisionMove
    from tflat.model.ops import Graph
    from tflat.predict.predictor import DeviceCard, KernelTime, Predictor


class TrainedPredictor(Protocol):
    """What every trained predictor tells about itself: the device, its card, its precision."""

    @property
    def device(self) -> str: ...

    @property
    def card(self) -> DeviceCard: ...

    @property
    def precision(self) -> str: ...


P = TypeVar("P", bound=TrainedPredictor)


class LearnedPricer(Pricer, Generic[P]):
    """A device's trained predictor as a pricer, plus what it knows of a whole inference.

    Besides :meth:`price` (the :class:`Pricer` contract), it partitions a graph with the rules
    it was trained under, gives the per-inference overhead, and the interval of a total from
    its own prices (each predictor calibrated that its own way).
    """

    basis = Basis.LEARNED
    #: the interval level the predictor was calibrated to (0.8)
    interval: float = 0.8

    def __init__(self, predictor: P) -> None:
        self.predictor = predictor
        self.device = predictor.device

    @property
    def card(self) -> DeviceCard:
        """What the device is and where its predictor comes from."""
        return self.predictor.card

    @property
    def precision(self) -> str:
        """The math precision the predictor's data was measured with ("fp16", "fp32")."""
        return self.predictor.precision

    def loaded(self, graph: Graph) -> Graph:
        """``graph`` as the runtime holds it once the model is loaded: what :meth:`kernels`
        and every pricer read (the GPU delegate folds constant fp16/int8 weights)."""
        return graph

    @abstractmethod
    def kernels(self, graph: Graph) -> tuple[Kernel, ...]:
        """The kernels of ``graph`` under the delegate rules the predictor was trained with."""

    @abstractmethod
    def covers(self, kernel: Kernel) -> bool:
        """Whether a regressor of this predictor (its own or a proxy's) prices ``kernel``."""

    @abstractmethod
    def overhead_ms(self, ctx: PricingContext) -> float:
        """The fixed cost of one inference of ``ctx.graph`` (not in any kernel's price)."""

    def cpu_io_ms(self, ctx: PricingContext) -> float:
        """Of :meth:`overhead_ms`: the CPU converting int8 graph inputs and outputs."""
        return 0.0

    def precision_move(
        self, ctx: PricingContext, kernels: Sequence[Kernel], wanted: str
    ) -> PrecisionMove | None:
        """How ``kernels``' times (in :attr:`precision`) move to ``wanted`` math, or None when
        this predictor cannot tell where a kernel's time goes (it prices only the precision
        its data was measured in)."""
        return None

    def in_total_band(self, price: Price) -> bool:
        """Whether one of this pricer's prices shares the band of the total
        (:meth:`total_interval`); any other adds its own bounds to the total's."""
        return True

    @abstractmethod
    def total_interval(
        self, total_ms: float, overhead_ms: float, prices: Sequence[Price]
    ) -> tuple[float, float]:
        """``[low, high]`` of a total of ``total_ms`` made of ``prices`` (this pricer's, in
        kernel order) and ``overhead_ms``."""


def _price(t: KernelTime, basis: Basis, note: str = "") -> Price:
    # plain floats: numpy's float64 would leak into reports as "np.float64(...)"
    figures = (float(t.latency_ms), float(t.low_ms), float(t.high_ms))
    if (
        not all(math.isfinite(x) for x in figures)
        or not 0 <= figures[1] <= figures[0] <= figures[2]
    ):
        # a bundle from outside passed its checks and still overflows: bad input, not a bug
        raise PredictorError(
            f"the predictor prices a kernel at {figures[0]} ms ({figures[1]}..{figures[2]}): "
            "not a time (a damaged or hostile predictor bundle?)"
        )
    return Price(*figures, basis, note)


class GpuLearnedPricer(LearnedPricer["Predictor"]):
    """A shipped (or trained) GPU predictor's prices, with what each rests on."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__(predictor)
        self.interval = predictor.interval

    def loaded(self, graph: Graph) -> Graph:
        return self.predictor.loaded(graph)

    def kernels(self, graph: Graph) -> tuple[Kernel, ...]:
        from tflat.gpu import partition

        p = self.predictor
        return partition(graph, rules=p.rules, gpu_family=p.gpu_family)

    def covers(self, kernel: Kernel) -> bool:
        return kernel.on_gpu and self.predictor.covers(kernel.kind)

    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        from tflat.predict.features import PROXY_KIND

        p = self.predictor
        times = p.kernel_times(ctx.graph, kernels, ctx.ops_by_index)
        prices = []
        for k, t in zip(kernels, times, strict=True):
            if k.kind == "free":
                prices.append(Price.free(k.note))
            elif not k.on_gpu:
                prices.append(
                    _price(t, Basis.CPU, f"refused by the GPU delegate; no CPU model for "
                                         f"{self.device}: a rough time from the whole-model fit")
                )  # fmt: skip
            elif not p.covers(k.kind):
                note = f"no {k.kind} model for {self.device}: a rough time from the whole-model fit"
                prices.append(_price(t, Basis.ANALYTIC, note))
            elif k.kind not in p.kinds or t.outside:
                proxy = PROXY_KIND.get(k.kind, "conv2d")
                notes = (f"no {k.kind} measurements: priced as {proxy}" if k.kind not in p.kinds
                         else "", t.outside)  # fmt: skip
                prices.append(_price(t, Basis.EXTRAPOLATED, "; ".join(n for n in notes if n)))
            else:
                prices.append(_price(t, Basis.LEARNED))
        return prices

    def in_total_band(self, price: Price) -> bool:
        # the whole-model term's band was calibrated on kernels inside the training data
        return price.basis == Basis.LEARNED

    def overhead_ms(self, ctx: PricingContext) -> float:
        return float(self.predictor.whole.overhead_ms) + self.cpu_io_ms(ctx)

    def cpu_io_ms(self, ctx: PricingContext) -> float:
        from tflat.gpu.precision import cpu_io_ms

        return cpu_io_ms(ctx.graph, ctx.kernels)

    def precision_move(
        self, ctx: PricingContext, kernels: Sequence[Kernel], wanted: str
    ) -> PrecisionMove:
        from tflat.gpu.precision import precision_move

        p = self.predictor
        parts = p.time_parts(ctx.graph, kernels, ctx.ops_by_index)
        return precision_move(parts, p.precision, wanted, p.gpu_family)

    def total_interval(
        self, total_ms: float, overhead_ms: float, prices: Sequence[Price]
    ) -> tuple[float, float]:
        # the whole-model term's conformal interval, a ratio of the total
        lo, hi = self.predictor.whole.log_interval
        return total_ms * math.exp(lo), total_ms * math.exp(hi)


class CpuLearnedPricer(LearnedPricer["CpuPredictor"]):
    """A calibrated predictor's prices (single-op regressors through the whole-model term)."""

    def kernels(self, graph: Graph) -> tuple[Kernel, ...]:
        return self.predictor.kernels(graph)

    def covers(self, kernel: Kernel) -> bool:
        return True  # every kind has a model: its own, its kind's pooled one, or all kinds'

    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        from tflat.cpu.features import model_key

        prices = []
        for k, (key, t) in zip(
            kernels, self.predictor.kernel_times(ctx.graph, kernels), strict=True
        ):
            if k.kind == "free":
                prices.append(Price.free(k.note))
                continue
            op_type = ctx.ops_by_index[k.main_op].type
            own = key == model_key(op_type)
            note = "" if own else f"no {op_type} regressor: priced by the pooled model {key}"
            if not k.on_gpu:
                note = "; ".join(x for x in ("run by TFLite, not the delegate", note) if x)
                prices.append(_price(t, Basis.CPU, note))
            else:
                prices.append(_price(t, Basis.LEARNED if own else Basis.EXTRAPOLATED, note))
        return prices

    def overhead_ms(self, ctx: PricingContext) -> float:
        return self.predictor.overhead_ms(ctx.kernels)

    def total_interval(
        self, total_ms: float, overhead_ms: float, prices: Sequence[Price]
    ) -> tuple[float, float]:
        from tflat.predict.predictor import KernelTime

        times = [KernelTime(p.ms, p.low_ms, p.high_ms) for p in prices]
        return self.predictor.total_interval(total_ms, overhead_ms, times)
