"""Interim composition of the pricers with today's partition and predictor, for benchmarks.

The registry (kind -> pricer per device) and the composition of prices into an Estimate are
being built on another branch (tflat.pricing.registry / compose). Until they land, the
benchmarks here compose the pricers of this branch the way the issue asks, so their figures can
be checked end to end:

* a GPU kernel of a kind the regressors cover: the shipped predictor's price in a whole
  inference (basis ``learned``), ``extrapolated`` when the training range says it lies outside
  (interval widened by the bundle's extrapolation band);
* any other GPU kernel: :class:`~tflat.pricing.analytic.AnalyticPricer` (``analytic``), at face
  value, as the whole-model term was fitted (the analytic price is an offset);
* a kernel the delegate refuses: :class:`~tflat.pricing.cpu.CpuPricer` (``cpu``), and a copy
  at every partition edge (:class:`~tflat.pricing.edges.TransferPricer`);
* the per-inference overhead of the whole-model term.

The total's interval: the learned part (kernels and overhead) with the whole-model term's
band, every other price's distance to its own bounds added (errors of one basis are assumed
to move together: a rate fitted too low prices every kernel of that basis too low).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tflat.gpu import partition
from tflat.gpu.kernel import Kernel
from tflat.model.ops import Graph
from tflat.predict import load_predictor
from tflat.predict.features import (
    FEATURE_NAMES,
    feature_matrix,
    ops_by_index,
    shape_from_kernel,
)
from tflat.predict.predictor import PROXY_KIND, proxy_shape
from tflat.pricing.analytic import AnalyticPricer
from tflat.pricing.base import Basis, PartitionEdge, Price, PricingContext
from tflat.pricing.cpu import CpuPricer
from tflat.pricing.edges import TransferPricer, find_edges
from tflat.pricing.ranges import Extrapolation, TrainingRange

LEARNED_SHARE_WARNING = 0.9


def shared_data_dir() -> Path:
    """The public data folder: beside TFLAT_USC_DIR when set, else ../shared/data next to the
    repository (the package ships only the USC files)."""
    env = os.environ.get("TFLAT_USC_DIR")
    if env:
        return Path(env).parent
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Composed:
    device: str
    kernels: tuple[Kernel, ...]
    prices: list[Price]
    edges: list[PartitionEdge]
    edge_prices: list[Price]
    overhead_ms: float
    total_ms: float
    total_low_ms: float
    total_high_ms: float
    basis_ms: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def transfer_ms(self) -> float:
        return sum(p.ms for p in self.edge_prices)

    @property
    def relative_interval(self) -> float:
        return (self.total_high_ms - self.total_low_ms) / self.total_ms

    def share(self, basis: str) -> float:
        priced = self.total_ms - self.overhead_ms
        return self.basis_ms.get(basis, 0.0) / priced if priced > 0 else 0.0


def compose(graph: Graph, device: str, precision: str = "fp16") -> Composed:
    pred = load_predictor(device)
    bundle: dict[str, Any] = pred.bundle
    sections = bundle["pricing"]
    analytic = AnalyticPricer.from_dict(sections["analytic"])
    cpu = CpuPricer.from_dict(sections["cpu"])
    transfer = TransferPricer.from_dict(sections["edges"])
    extrapolation = Extrapolation.from_dict(sections["extrapolation"])
    trange = TrainingRange.from_dict(bundle["training_range"], FEATURE_NAMES)
    kernels = partition(graph, rules=pred.rules, gpu_family=pred.gpu_family)
    by_index = ops_by_index(graph)
    ctx = PricingContext(graph, kernels, by_index, precision)
    prices: dict[int, Price] = {}
    learned = [k for k in kernels if k.on_gpu and k.kind != "free" and pred.covers(k.kind)]
    prices.update(_learned(pred, graph, learned, trange, extrapolation))
    rest_gpu = [k for k in kernels if k.on_gpu and k.kind != "free" and k.index not in prices]
    prices.update(zip((k.index for k in rest_gpu), analytic.price(ctx, rest_gpu), strict=True))
    on_cpu = [k for k in kernels if not k.on_gpu and k.kind != "free"]
    prices.update(zip((k.index for k in on_cpu), cpu.price(ctx, on_cpu), strict=True))
    for k in kernels:
        prices.setdefault(k.index, Price.free("no GPU work"))
    edges = find_edges(ctx)
    edge_prices = transfer.price_edges(ctx, edges)
    ordered = [prices[k.index] for k in kernels]
    overhead = pred.whole.overhead_ms
    basis_ms: dict[str, float] = defaultdict(float)
    for p in (*ordered, *edge_prices):
        basis_ms[str(p.basis)] += p.ms
    total = sum(basis_ms.values()) + overhead
    lo, hi = pred.whole.log_interval
    base = basis_ms.get("learned", 0.0) + overhead
    others = [p for p in (*ordered, *edge_prices) if p.basis != Basis.LEARNED]
    low = base * math.exp(lo) + sum(p.low_ms for p in others)
    high = base * math.exp(hi) + sum(p.high_ms for p in others)
    out = Composed(device, kernels, ordered, edges, edge_prices, overhead, total, low, high,
                   dict(basis_ms))  # fmt: skip
    out.warnings = _warnings(out)
    return out


def _learned(
    pred: Any, graph: Graph, kernels: list[Kernel], trange: TrainingRange, ex: Extrapolation
) -> dict[int, Price]:
    if not kernels:
        return {}
    by_index = ops_by_index(graph)
    shapes = [
        shape_from_kernel(graph, k.op_indices, k.kind, k.name, by_index, pred.gpu_family)
        for k in kernels
    ]
    raw = pred.predict_shapes(shapes)
    proxied = [proxy_shape(s, pred.kinds) for s in shapes]
    x = feature_matrix(proxied, pred.kinds, pred.analytic_ms(proxied))
    out: dict[int, Price] = {}
    for i, (k, s) in enumerate(zip(kernels, shapes, strict=True)):
        kind = PROXY_KIND.get(k.kind, k.kind)
        ms = pred.whole.listed_kernel_ms(kind, float(raw[i]), s.weight_bytes / 1e6)
        if any(by_index[j].type in ("PAD", "PADV2", "MIRROR_PAD") for j in k.op_indices[1:]):
            ms += pred.whole.merged_pad_ms
        klo, khi = pred.kernel_log_interval.get(kind, (math.log(0.6), math.log(1.6)))
        low, high = ms * math.exp(klo), ms * math.exp(khi)
        note = trange.out_of_range(proxied[i].kind, x[i])
        if note is None:
            out[k.index] = Price(ms, low, high, Basis.LEARNED)
        else:
            low, high = ex.widen(ms, low, high)
            out[k.index] = Price(ms, low, high, Basis.EXTRAPOLATED, note)
    return out


def _warnings(c: Composed) -> list[str]:
    out = []
    learned = c.share("learned")
    if learned < LEARNED_SHARE_WARNING:
        shares: dict[str, float] = defaultdict(float)
        for k, p in zip(c.kernels, c.prices, strict=True):
            if p.basis != Basis.LEARNED and p.ms > 0:
                shares[f"{k.kind} ({p.basis})"] += p.ms
        for p in c.edge_prices:
            shares["partition copies (cpu)"] += p.ms
        top = sorted(shares.items(), key=lambda kv: -kv[1])[:4]
        priced = c.total_ms - c.overhead_ms
        out.append(
            f"only {learned:.0%} of the time is learned: "
            + ", ".join(f"{name} {ms / priced:.0%}" for name, ms in top)
        )
    notes = sorted({p.note for p in c.prices if p.basis == Basis.EXTRAPOLATED})
    if notes:
        out.append(f"{len(notes)} kinds of kernel outside the training range, e.g. {notes[0]}")
    return out
