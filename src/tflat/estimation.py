"""Graph + device predictor -> :class:`Estimate`: per layer, per kernel, total, intervals.

The predictor works on GPU kernels (an op and the ops the delegate fuses into it); users read
layers (the ops of the file). This module maps one onto the other without losing anything:

* every op of the main subgraph appears exactly once, in file order;
* a kernel's time sits on its main op's row; ops fused into it show the kernel they belong to
  and 0 ms of their own, so the rows add up: ``total_ms == sum(layer.latency_ms) + overhead_ms``;
* ops the GPU delegate would not take are flagged (``fallback``) and keep their CPU estimate;
* ops of other subgraphs (control flow bodies) are listed as not estimated, with a note.

Collecting (here) and rendering (:mod:`tflat.report`) are separate steps.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from tflat.model.ops import Graph, Op

if TYPE_CHECKING:
    from tflat.model.shapes import InputShapes

log = logging.getLogger(__name__)


class Role(StrEnum):
    """What a layer row stands for in the estimate."""

    KERNEL = "kernel"  # the main op of a GPU (or CPU fallback) kernel: carries its time
    FUSED = "fused"  # fused into another op's kernel: 0 ms of its own
    FREE = "free"  # costs nothing (reshape, constant fp16 DEQUANTIZE folded away)
    NOT_ESTIMATED = "not_estimated"  # outside the main subgraph, or in no kernel


# The shapes of what tflat.gpu and tflat.predict return, as far as this module reads them.
class _Kernel(Protocol):
    index: int
    name: str
    kind: str
    op_indices: tuple[int, ...]
    on_gpu: bool
    note: str


class _KernelTime(Protocol):
    latency_ms: float
    low_ms: float
    high_ms: float


class _GraphPrediction(Protocol):
    device: str
    kernels: Sequence[_Kernel]
    kernel_times: Sequence[_KernelTime]
    overhead_ms: float
    total_ms: float
    total_low_ms: float
    total_high_ms: float
    interval: float


class _Predictor(Protocol):
    def predict_graph(self, graph: Graph) -> Any: ...


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
    ``fallback`` marks an op the GPU delegate does not take (it runs on the CPU).
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
    #: False for a GPU kernel of a kind the predictor has no model for (see ``note``)
    modelled: bool = True

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
            "note": self.note,
        }


@dataclass(frozen=True)
class KernelEstimate:
    """One kernel as the delegate would run it: its ops (main op first) and its time."""

    index: int
    name: str
    kind: str
    op_indices: tuple[int, ...]
    on_gpu: bool
    latency_ms: float
    low_ms: float
    high_ms: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "op_indices": list(self.op_indices),
            "on_gpu": self.on_gpu,
            "latency_ms": self.latency_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "note": self.note,
        }


@dataclass(frozen=True)
class Estimate:
    """A model's estimated latency on one device.

    ``total_ms == sum(layer.latency_ms for layer in layers) + overhead_ms``; the total's
    interval ``[total_low_ms, total_high_ms]`` covers ``interval`` (e.g. 0.8) of the outcomes.
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
        return sum(k.latency_ms for k in self.kernels if not k.on_gpu)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "total_ms": self.total_ms,
            "total_low_ms": self.total_low_ms,
            "total_high_ms": self.total_high_ms,
            "interval": self.interval,
            "overhead_ms": self.overhead_ms,
            "total_flops": self.total_flops,
            "gpu_ms": self.gpu_ms,
            "cpu_fallback_ms": self.cpu_ms,
            "fallback_ops": [layer.index for layer in self.fallback_layers],
            "warnings": list(self.warnings),
            "layers": [layer.to_dict() for layer in self.layers],
            "kernels": [k.to_dict() for k in self.kernels],
        }


def estimate(
    path_or_graph: str | os.PathLike[str] | Graph,
    device: str = "pixel4",
    db_url: str | None = None,
    input_shapes: InputShapes | None = None,
) -> Estimate:
    """Estimate a model (a .tflite path or a read :class:`Graph`) on ``device``.

    ``input_shapes`` sets the model's input shapes, as :func:`~tflat.model.reader.read_model`
    takes them (needed for an input with a dynamic height or width; a path only).
    Raises :class:`~tflat.errors.ModelFormatError` for an unreadable model and
    :class:`~tflat.errors.PredictorError` for a device without a predictor.
    """
    from tflat.predict import load_predictor

    graph = _as_graph(path_or_graph, input_shapes)
    predictor = load_predictor(device, db_url=db_url)
    return estimate_with(graph, predictor)


def estimate_with(graph: Graph, predictor: _Predictor) -> Estimate:
    """Estimate ``graph`` with an already loaded predictor (no database or file access)."""
    prediction: _GraphPrediction = predictor.predict_graph(graph)
    return build_estimate(graph, prediction, unmodelled=_unmodelled(predictor, prediction))


def _unmodelled(predictor: _Predictor, prediction: _GraphPrediction) -> dict[int, str]:
    """Kernel index -> note for GPU kernels of a kind the predictor has no model for: their
    time (possibly 0 ms) comes from the whole-model term, and the reader should see that."""
    covers = getattr(predictor, "covers", None)
    if covers is None:
        return {}
    device = getattr(prediction, "device", "this device")
    return {
        k.index: f"no {k.kind} model for {device}: a rough time from the whole-model fit"
        for k in prediction.kernels
        if k.on_gpu and k.kind != "free" and not covers(k.kind)
    }


def _as_graph(
    path_or_graph: str | os.PathLike[str] | Graph, input_shapes: InputShapes | None = None
) -> Graph:
    if isinstance(path_or_graph, Graph):
        if input_shapes:
            raise TypeError("input_shapes applies to a path; read the Graph with them instead")
        return path_or_graph
    from tflat.model import read_model

    return read_model(path_or_graph, input_shapes=input_shapes)


def build_estimate(
    graph: Graph, prediction: _GraphPrediction, *, unmodelled: Mapping[int, str] | None = None
) -> Estimate:
    """Map a kernel-level prediction onto the graph's ops. Never drops an op.

    ``unmodelled`` (kernel index -> note) names kernels the predictor has no model for: their
    layers are flagged (``modelled=False``) and carry the note."""
    notes = unmodelled or {}
    kernels = tuple(prediction.kernels)
    times = tuple(prediction.kernel_times)
    if len(kernels) != len(times):
        raise ValueError(f"prediction has {len(kernels)} kernels but {len(times)} kernel times")
    warnings: list[str] = []
    ops_by_index = {op.index: op for op in graph.ops}
    owner: dict[int, tuple[_Kernel, _KernelTime, bool]] = {}  # op index -> kernel, time, is main
    kernel_rows: list[KernelEstimate] = []
    for kernel, kt in zip(kernels, times, strict=True):
        for pos, oi in enumerate(kernel.op_indices):
            if oi not in ops_by_index:
                warnings.append(f"kernel {kernel.index} names op {oi}, not in the model")
            elif oi in owner:
                warnings.append(f"op {oi} is in kernels {owner[oi][0].index} and {kernel.index}")
            else:
                owner[oi] = (kernel, kt, pos == 0)
        kernel_rows.append(
            KernelEstimate(
                index=kernel.index,
                name=kernel.name,
                kind=kernel.kind,
                op_indices=tuple(kernel.op_indices),
                on_gpu=kernel.on_gpu,
                latency_ms=float(kt.latency_ms),
                low_ms=float(kt.low_ms),
                high_ms=float(kt.high_ms),
                note=notes.get(kernel.index, kernel.note),
            )
        )
    from tflat.model.shapes import unresolved_warnings

    warnings.extend(unresolved_warnings(graph.ops))
    overhead_ms = float(prediction.overhead_ms)
    drafts = [_main_row(op, owner.get(op.index), ops_by_index, warnings, notes) for op in graph.ops]
    drafts += [_other_subgraph_row(op) for sg in graph.subgraphs[1:] for op in sg.ops]
    total_ms = sum(d["latency_ms"] for d in drafts) + overhead_ms
    if not math.isclose(total_ms, float(prediction.total_ms), rel_tol=1e-9, abs_tol=1e-9):
        warnings.append(
            f"predictor total {prediction.total_ms:.6g} ms differs from the sum of kernels "
            f"{total_ms:.6g} ms"
        )
    for w in warnings:
        log.warning("%s: %s", graph.name, w)
    layers = tuple(
        LayerEstimate(**d, share=(d["latency_ms"] / total_ms if total_ms > 0 else 0.0))
        for d in drafts
    )
    return Estimate(
        model=graph.name,
        device=str(prediction.device),
        layers=layers,
        overhead_ms=overhead_ms,
        total_ms=total_ms,
        total_low_ms=float(prediction.total_low_ms),
        total_high_ms=float(prediction.total_high_ms),
        interval=float(prediction.interval),
        kernels=tuple(kernel_rows),
        total_flops=sum(op.flops for op in graph.ops),
        warnings=tuple(warnings),
    )


def _shape(op: Op) -> tuple[int, ...]:
    return tuple(op.outputs[0].shape) if op.outputs else ()


def _main_row(
    op: Op,
    owned: tuple[_Kernel, _KernelTime, bool] | None,
    ops_by_index: dict[int, Op],
    warnings: list[str],
    notes: Mapping[int, str],
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "index": op.index,
        "type": op.type,
        "output_shape": _shape(op),
        "flops": op.flops,
        "known": op.known,
        "subgraph": op.subgraph,
    }
    if owned is None:
        warnings.append(f"op {op.index} ({op.type}) is in no kernel: not estimated")
        return base | {
            "kernel": None,
            "role": Role.NOT_ESTIMATED,
            "latency_ms": 0.0,
            "low_ms": 0.0,
            "high_ms": 0.0,
            "on_gpu": False,
            "fallback": False,
            "note": "in no kernel of the GPU partition: not estimated",
        }
    kernel, kt, is_main = owned
    ref = KernelRef(index=kernel.index, name=kernel.name, kind=kernel.kind)
    fallback = not kernel.on_gpu
    if is_main:
        role = Role.FREE if kernel.kind == "free" else Role.KERNEL
        return base | {
            "kernel": ref,
            "role": role,
            "latency_ms": float(kt.latency_ms),
            "low_ms": float(kt.low_ms),
            "high_ms": float(kt.high_ms),
            "on_gpu": kernel.on_gpu,
            "fallback": fallback,
            "modelled": kernel.index not in notes,
            "note": notes.get(kernel.index, kernel.note),
        }
    main = ops_by_index.get(kernel.op_indices[0])
    main_text = f"{main.type} #{main.index}" if main is not None else f"#{kernel.op_indices[0]}"
    return base | {
        "kernel": ref,
        "role": Role.FREE if kernel.kind == "free" else Role.FUSED,
        "latency_ms": 0.0,
        "low_ms": 0.0,
        "high_ms": 0.0,
        "on_gpu": kernel.on_gpu,
        "fallback": fallback,
        "note": f"fused into {main_text}",
    }


def _other_subgraph_row(op: Op) -> dict[str, Any]:
    return {
        "index": op.index,
        "type": op.type,
        "output_shape": _shape(op),
        "flops": op.flops,
        "known": op.known,
        "subgraph": op.subgraph,
        "kernel": None,
        "role": Role.NOT_ESTIMATED,
        "latency_ms": 0.0,
        "low_ms": 0.0,
        "high_ms": 0.0,
        "on_gpu": False,
        "fallback": False,
        "note": f"in subgraph {op.subgraph}: only the main subgraph is estimated",
    }
