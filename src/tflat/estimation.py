"""What an estimate is: a model's latency on one device, per layer, per kernel, per partition.

The estimate is a sum of prices (:mod:`tflat.pricing`), and these records keep that sum
readable:

* every op of the main subgraph appears exactly once, in file order;
* a kernel's time sits on its main op's row; ops fused into it show the kernel they belong to
  and 0 ms of their own, so the rows add up: ``total_ms == sum(layer.latency_ms) + overhead_ms``;
* every kernel says what its price rests on (``basis``: learned, extrapolated, analytic, cpu,
  free), and ``basis_ms`` adds up to ``total_ms - overhead_ms``;
* ops the GPU delegate would not take are flagged (``fallback``) and keep their CPU estimate;
* ops of other subgraphs (control flow bodies) are listed as not estimated, with a note.

:func:`tflat.pricing.compose.compose` builds these; :mod:`tflat.report` renders them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

#: The bases a price can rest on, most trustworthy first (``tflat.pricing.base.Basis``).
BASES = ("learned", "extrapolated", "analytic", "cpu", "free")


class Role(StrEnum):
    """What a layer row stands for in the estimate."""

    KERNEL = "kernel"  # the main op of a GPU (or CPU fallback) kernel: carries its time
    FUSED = "fused"  # fused into another op's kernel: 0 ms of its own
    FREE = "free"  # costs nothing (reshape, constant fp16 DEQUANTIZE folded away)
    NOT_ESTIMATED = "not_estimated"  # outside the main subgraph, or in no kernel


@dataclass(frozen=True)
class KernelRef:
    """The kernel a layer belongs to: its index in the estimate and the delegate's name for it."""

    index: int
    name: str
    kind: str


@dataclass(frozen=True)
class LayerEstimate:
    """One op of the model with its share of the estimate.

    ``latency_ms``/``low_ms``/``high_ms`` are the op's own time and its interval: the whole
    kernel's for a main op, 0 for a fused or free op. ``share`` is of ``Estimate.total_ms``.
    ``fallback`` marks an op the GPU delegate does not take (it runs on the CPU). ``basis`` is
    its kernel's (None for an op in no kernel).
    """

    index: int
    type: str
    output_shape: tuple[int, ...]
    kernel: KernelRef | None
    role: Role
    flops: int
    latency_ms: float
    low_ms: float
    high_ms: float
    share: float
    on_gpu: bool
    fallback: bool
    known: bool = True
    subgraph: int = 0
    note: str = ""
    #: False for a GPU kernel of a kind no regressor was trained on (basis analytic)
    modelled: bool = True
    basis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subgraph": self.subgraph,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "kernel_index": self.kernel.index if self.kernel else None,
            "kernel": self.kernel.name if self.kernel else None,
            "kernel_kind": self.kernel.kind if self.kernel else None,
            "role": str(self.role),
            "flops": self.flops,
            "latency_ms": self.latency_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "share": self.share,
            "on_gpu": self.on_gpu,
            "fallback": self.fallback,
            "known": self.known,
            "modelled": self.modelled,
            "basis": self.basis,
            "note": self.note,
        }


@dataclass(frozen=True)
class KernelEstimate:
    """One kernel as the delegate would run it: its ops (main op first), its time and what
    that time rests on (``basis``, ``basis_note``). ``transfer_ms`` is the part of
    ``latency_ms`` spent copying tensors across a GPU<->CPU partition edge (on the kernel on
    the CPU side of the edge)."""

    index: int
    name: str
    kind: str
    op_indices: tuple[int, ...]
    on_gpu: bool
    latency_ms: float
    low_ms: float
    high_ms: float
    note: str = ""
    basis: str = "learned"
    basis_note: str = ""
    transfer_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "op_indices": list(self.op_indices)}  # fields in their order


@dataclass(frozen=True)
class PartitionEstimate:
    """A run of kernels on one side (the delegate's or the CPU's), in execution order; a free
    kernel joins the run it stands in."""

    index: int
    on_gpu: bool
    kernel_indices: tuple[int, ...]
    ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "on_gpu": self.on_gpu,
            "kernels": list(self.kernel_indices),
            "ms": self.ms,
        }


@dataclass(frozen=True)
class Estimate:
    """A model's estimated latency on one device.

    ``total_ms == sum(layer.latency_ms for layer in layers) + overhead_ms``; the total's
    interval ``[total_low_ms, total_high_ms]`` covers ``interval`` (e.g. 0.8) of the outcomes;
    ``basis_ms`` splits ``total_ms - overhead_ms`` by what the prices rest on.
    """

    model: str
    device: str
    layers: tuple[LayerEstimate, ...]
    overhead_ms: float
    total_ms: float
    total_low_ms: float
    total_high_ms: float
    interval: float
    kernels: tuple[KernelEstimate, ...] = ()
    total_flops: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: the GPU math precision assumed ("fp16" for the shipped phones, "fp32" on a CPU), and
    #: the one the device's data was measured in: when they differ, every GPU kernel's time
    #: is extrapolated (``precision_basis``)
    precision: str = ""
    measured_precision: str = ""
    #: of ``overhead_ms``: the CPU converting int8 graph inputs and outputs every inference
    cpu_io_ms: float = 0.0

    @property
    def precision_basis(self) -> str:
        """What the assumed precision rests on: "learned" when the device's data was measured
        in it, else "extrapolated" (no measured precision given: taken as measured)."""
        same = self.measured_precision in ("", self.precision)
        return "learned" if same else "extrapolated"

    def top(self, n: int = 10) -> tuple[LayerEstimate, ...]:
        """The ``n`` layers with the largest own latency, largest first (ties: file order)."""
        timed = [layer for layer in self.layers if layer.latency_ms > 0]
        return tuple(sorted(timed, key=lambda layer: (-layer.latency_ms, layer.index))[:n])

    @property
    def fallback_layers(self) -> tuple[LayerEstimate, ...]:
        return tuple(layer for layer in self.layers if layer.fallback)

    @property
    def gpu_ms(self) -> float:
        return sum(k.latency_ms for k in self.kernels if k.on_gpu)

    @property
    def cpu_ms(self) -> float:
        """CPU compute of the kernels the delegate refuses (their copies not included)."""
        return sum(k.latency_ms - k.transfer_ms for k in self.kernels if not k.on_gpu)

    @property
    def transfer_ms(self) -> float:
        """GPU<->CPU copies at partition edges (0 until a device prices them)."""
        return sum(k.transfer_ms for k in self.kernels)

    @property
    def basis_ms(self) -> dict[str, float]:
        """Milliseconds by basis, every basis listed; adds up to ``total_ms - overhead_ms``
        (copies count with the CPU kernels they serve)."""
        out = dict.fromkeys(BASES, 0.0)
        for k in self.kernels:
            out[k.basis] = out.get(k.basis, 0.0) + k.latency_ms
        return out

    @property
    def partitions(self) -> tuple[PartitionEstimate, ...]:
        """Runs of kernels on one side, in order (see :class:`PartitionEstimate`)."""
        runs: list[tuple[bool, list[KernelEstimate]]] = []
        waiting: list[KernelEstimate] = []  # free kernels before the first run
        for k in self.kernels:
            if k.kind == "free":
                (runs[-1][1] if runs else waiting).append(k)
            elif runs and runs[-1][0] == k.on_gpu:
                runs[-1][1].append(k)
            else:
                runs.append((k.on_gpu, [*waiting, k]))
                waiting = []
        if waiting:
            runs.append((waiting[0].on_gpu, waiting))
        return tuple(
            PartitionEstimate(i, side, tuple(k.index for k in ks), sum(k.latency_ms for k in ks))
            for i, (side, ks) in enumerate(runs)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "total_ms": self.total_ms,
            "total_low_ms": self.total_low_ms,
            "total_high_ms": self.total_high_ms,
            "interval": self.interval,
            "overhead_ms": self.overhead_ms,
            "cpu_io_ms": self.cpu_io_ms,
            "total_flops": self.total_flops,
            "gpu_ms": self.gpu_ms,
            "cpu_fallback_ms": self.cpu_ms,
            "transfer_ms": self.transfer_ms,
            "basis_ms": self.basis_ms,
            "precision": self.precision,
            "measured_precision": self.measured_precision,
            "precision_basis": self.precision_basis,
            "fallback_ops": [layer.index for layer in self.fallback_layers],
            "partitions": [p.to_dict() for p in self.partitions],
            "warnings": list(self.warnings),
            "layers": [layer.to_dict() for layer in self.layers],
            "kernels": [k.to_dict() for k in self.kernels],
        }
