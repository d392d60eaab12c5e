"""Copies at GPU<->CPU partition edges: where a graph splits, every crossing tensor is copied.

When the delegate refuses an op, the graph runs as GPU partitions and CPU ops. Each tensor
produced on one side and read on the other is copied at every inference: the GPU's queue is
waited for (or fed), and the tensor is converted between the GPU's fp16 4-channel layout and the
CPU's fp32 one. One copy costs::

    ms = sync_ms + MB (fp32, as the CPU holds it) * ms_per_mb

basis ``cpu``. Where the two constants come from is in :mod:`tflat.pricing.fit_cpu` (the phone's
CPU streaming rate and its GPU per-inference overhead, both fitted on USC timings); no public
data times a split graph, so the interval is a stated factor of two either way, not a fit.

The graph's own input and output are not edges: their upload and download are part of every
inference, priced in the per-inference overhead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tflat.errors import PredictorError
from tflat.pricing.base import Basis, EdgePricer, PartitionEdge, Price, PricingContext

#: No split graph is measured in the public data: a factor of two each way, stated.
EDGE_LOG_INTERVAL = (math.log(0.5), math.log(2.0))


@dataclass(frozen=True)
class EdgeParams:
    sync_ms: float
    ms_per_mb: float
    log_interval: tuple[float, float] = EDGE_LOG_INTERVAL
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("sync_ms", "ms_per_mb"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise PredictorError(f"edge pricing: {name} must be finite and > 0, not {v}")
        lo, hi = self.log_interval
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0 <= hi):
            raise PredictorError(f"edge pricing: log_interval must hold 0, not {lo}, {hi}")

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> EdgeParams:
        try:
            lo, hi = (float(x) for x in section.get("log_interval", EDGE_LOG_INTERVAL))
            return cls(
                sync_ms=float(section["sync_ms"]),
                ms_per_mb=float(section["ms_per_mb"]),
                log_interval=(lo, hi),
                provenance=dict(section.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PredictorError(f"edge pricing section is malformed: {exc!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "sync_ms": self.sync_ms,
            "ms_per_mb": self.ms_per_mb,
            "log_interval": list(self.log_interval),
            "provenance": dict(self.provenance),
        }


class TransferPricer(EdgePricer):
    """Prices every GPU<->CPU copy of a split graph (basis ``cpu``)."""

    def __init__(self, params: EdgeParams) -> None:
        self.params = params

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> TransferPricer:
        return cls(EdgeParams.from_dict(section))

    def to_dict(self) -> dict[str, Any]:
        return self.params.to_dict()

    def price_edges(self, ctx: PricingContext, edges: Sequence[PartitionEdge]) -> list[Price]:
        lo, hi = self.params.log_interval
        out: list[Price] = []
        for e in edges:
            if e.nbytes < 0:
                raise ValueError(f"edge of tensor {e.tensor_index} has negative size")
            ms = self.params.sync_ms + e.nbytes / 1e6 * self.params.ms_per_mb
            way = "CPU -> GPU" if e.to_gpu else "GPU -> CPU"
            note = f"copy of tensor {e.tensor_index} ({e.nbytes} B) {way}"
            out.append(Price(ms, ms * math.exp(lo), ms * math.exp(hi), Basis.CPU, note))
        return out


def find_edges(ctx: PricingContext) -> list[PartitionEdge]:
    """The tensors that cross between a GPU kernel and a CPU kernel of ``ctx.kernels``, once
    per (tensor, direction): a tensor read by several kernels on the other side is copied once.
    Free kernels (reshapes, constant dequantization) are on the side of the op they feed."""
    side = _sides(ctx)
    producer: dict[int, int] = {}
    for k in ctx.kernels:
        for i in k.op_indices:
            op = ctx.ops_by_index.get(i)
            for t in op.outputs if op is not None else ():
                producer[t.index] = k.index
    seen: set[tuple[int, bool]] = set()
    edges: list[PartitionEdge] = []
    for k in ctx.kernels:
        mine = side[k.index]
        inside = {t.index for i in k.op_indices for t in _outputs(ctx, i)}
        for i in k.op_indices:
            op = ctx.ops_by_index.get(i)
            for t in op.activations if op is not None else ():
                src = producer.get(t.index)
                if src is None or t.index in inside or side[src] == mine:
                    continue
                key = (t.index, mine)
                if key in seen:
                    continue
                seen.add(key)
                nbytes = math.prod(max(int(d), 1) for d in t.shape) * 4
                edges.append(PartitionEdge(t.index, nbytes, mine, src, k.index))
    return edges


def _outputs(ctx: PricingContext, op_index: int) -> Sequence[Any]:
    op = ctx.ops_by_index.get(op_index)
    return op.outputs if op is not None else ()


def _sides(ctx: PricingContext) -> Mapping[int, bool]:
    """True for a kernel on the GPU. A free kernel takes the side of its first reader (a
    reshape between two GPU kernels stays on the GPU), else of its producer."""
    side = {k.index: k.on_gpu for k in ctx.kernels}
    readers: dict[int, list[int]] = {}
    producer: dict[int, int] = {}
    for k in ctx.kernels:
        for i in k.op_indices:
            op = ctx.ops_by_index.get(i)
            if op is None:
                continue
            for t in op.activations:
                readers.setdefault(t.index, []).append(k.index)
            for t in op.outputs:
                producer[t.index] = k.index
    for k in ctx.kernels:
        if k.kind != "free":
            continue
        outs = [t.index for i in k.op_indices for t in _outputs(ctx, i)]
        after = [r for t in outs for r in readers.get(t, []) if r != k.index]
        op = ctx.ops_by_index.get(k.main_op)
        before = [producer[t.index] for t in (op.activations if op else ()) if t.index in producer]
        if after:
            side[k.index] = side[min(after)]
        elif before:
            side[k.index] = side[before[0]]
    return side
