"""The pricing contract: what one kernel costs on one device, and what that figure rests on.

An estimate is a sum of prices. Every price says what it rests on (its :class:`Basis`), so a
user can tell a figure learned from measurements of that very kind of kernel from one that is
extrapolated, derived from a bytes/FLOPs model of the device, or priced on the CPU because the
GPU delegate refuses the op.

Flow (one device, one graph)::

    Graph --partition--> kernels --registry: kind -> Pricer--> Price per kernel
          --partition edges--> EdgePricer --> Price per GPU<->CPU copy
          --compose--> Estimate (rows add up to the total; basis_ms adds up to total - overhead)

Every implementation of :class:`Pricer` keeps the contract written on it; one test suite runs
over all of them (like optuna's storages).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Graph, Op

#: The level of every interval a pricer returns: ``[low_ms, high_ms]`` should hold the measured
#: time of the kernel (in a whole inference) 80 % of the time.
INTERVAL_LEVEL = 0.8


class Basis(StrEnum):
    """What a price rests on, from most to least trustworthy."""

    #: a regressor trained on measured kernels of this kind, features inside its training range
    LEARNED = "learned"
    #: a learned kind outside its training range, or a precision the data was not measured
    #: with; the price's ``note`` names the feature or the setting; intervals are widened
    EXTRAPOLATED = "extrapolated"
    #: no measurements of this kind: launch + bytes / bandwidth + FLOPs / throughput of the device
    ANALYTIC = "analytic"
    #: the delegate refuses the op: the device's CPU model, plus the GPU<->CPU copies at the
    #: edges of its partition
    CPU = "cpu"
    #: folded at load time (constant weights, fp16 DEQUANTIZE) or layout only (RESHAPE)
    FREE = "free"


@dataclass(frozen=True)
class Price:
    """One kernel's (or one copy's) time in a whole inference, in milliseconds.

    Invariants (checked): every figure finite and ``0 <= low_ms <= ms <= high_ms``. ``note``
    says why, in a few words a user can read ("outside training: log2_cin 11.2 > 10.0").
    """

    ms: float
    low_ms: float
    high_ms: float
    basis: Basis
    note: str = ""

    def __post_init__(self) -> None:
        figures = (self.ms, self.low_ms, self.high_ms)
        if not all(math.isfinite(x) for x in figures):
            raise ValueError(f"price is not finite: {figures}")
        if not 0.0 <= self.low_ms <= self.ms <= self.high_ms:
            raise ValueError(f"price interval out of order: {figures}")

    @classmethod
    def free(cls, note: str = "") -> Price:
        return cls(0.0, 0.0, 0.0, Basis.FREE, note)

    def to_dict(self) -> dict[str, object]:
        return {
            "ms": self.ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "basis": str(self.basis),
            "note": self.note,
        }


@dataclass(frozen=True)
class PartitionEdge:
    """A tensor that crosses between a GPU partition and a CPU partition (either way).

    The delegate copies it (and converts layout/precision) at every inference; ``nbytes`` is the
    tensor's size as the file stores it (fp32: 4 bytes an element).
    """

    tensor_index: int
    nbytes: int
    to_gpu: bool
    #: kernel indices: the producer's kernel (None: a graph input) and the consumer's
    src_kernel: int | None
    dst_kernel: int | None


@dataclass(frozen=True)
class PricingContext:
    """What a pricer may read about the graph it prices (nothing else: no I/O, no globals)."""

    graph: Graph
    #: the whole partition, in execution order (a pricer may look at a kernel's neighbours)
    kernels: tuple[Kernel, ...]
    ops_by_index: Mapping[int, Op]
    #: the math precision the prices are in: the one the device's data was measured in ("fp16",
    #: benchmark_model's --gpu_precision_loss_allowed, for the shipped phones; "fp32" on a
    #: CPU). An estimate in the other one moves the GPU prices afterwards
    #: (:mod:`tflat.pricing.precision`)
    precision: str = "fp16"
    extra: Mapping[str, object] = field(default_factory=dict)


class Pricer(ABC):
    """Prices kernels of one kind (or a few kinds) on one device.

    The contract every implementation keeps:

    * :meth:`price` returns exactly one :class:`Price` per kernel given, in the same order.
    * ``ms`` is milliseconds of one inference on the device, the kernel's share of a whole-graph
      run (not of the kernel alone on an idle device); ``[low_ms, high_ms]`` is an
      :data:`INTERVAL_LEVEL` interval calibrated on data the pricer did not see.
    * Never NaN or inf (:class:`Price` refuses them); a kernel it cannot price at all is a bug
      of the registry, which must never route it here: raise ``ValueError``.
    * Pure and thread-safe after construction: no I/O, no global state, no randomness.
    * Construction from a bundle section validates it (raises ``PredictorError`` naming the
      first problem); a fitted pricer serialises with ``to_dict`` as plain JSON, no pickle.
    """

    #: the basis this pricer's prices usually carry (a learned pricer may also answer
    #: EXTRAPOLATED for a kernel outside its training range)
    basis: Basis

    @abstractmethod
    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        """One price per kernel of ``kernels`` (all from ``ctx.kernels``)."""


class EdgePricer(ABC):
    """Prices the GPU<->CPU copies at partition edges (same contract as :class:`Pricer`)."""

    @abstractmethod
    def price_edges(self, ctx: PricingContext, edges: Sequence[PartitionEdge]) -> list[Price]:
        """One price per edge, basis :attr:`Basis.CPU`."""


class FittedPricer:
    """A pricer whose prices come from the fitted figures of one bundle section: ``params``,
    a frozen dataclass with ``from_dict``/``to_dict`` that checks its figures. Built with
    :meth:`from_dict` (as the registry's hook builds every section) and saved with
    :meth:`to_dict`, plain JSON."""

    #: the params dataclass (its ``from_dict`` reads a section)
    params_type: ClassVar[type[Any]]

    def __init__(self, params: Any) -> None:
        self.params = params

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> Self:
        return cls(cls.params_type.from_dict(section))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.params.to_dict())
