"""Pricing sections of a transferred phone, borrowed from its source phones.

A phone added from whole-model GPU timings (:mod:`tflat.devices.add`) has no measurement of
one op on its CPU, nor of a GPU kernel of a kind the sources' data lacks. What an op the
delegate refuses costs on its CPU (``pricing.cpu``), a copy at a partition edge
(``pricing.edges``) and a GPU kernel of a kind nobody measured (``pricing.analytic``) can only
be borrowed from the source phones' own sections, and every price made from them says so
(each section's ``borrowed_from``, in the price's note; an estimate warns,
:mod:`tflat.pricing.compose`).

- ``cpu``: the rates whose prices come closest (least squares on relative error) to the
  geometric mean of the sources' CPU prices over the ops of the corpus networks, so that no
  one source's CPU dominates. No timing says which source the new CPU resembles, so the band
  is the sources' own fitted band widened (in quadrature) by the 10-90 % spread of
  log(source price / combined price): the level of the sources included (they span about 7x).
- ``edges``: one launch of the borrowed GPU rates plus the borrowed CPU's streaming rate;
  the sources' band (a stated factor of two) widened by the spread of their streaming rates.
- ``analytic``: the same combination of the sources' analytic prices over the GPU kernels of
  the corpus networks, times the transfer's ``unlisted`` class scale (the scale the timings
  fitted on the kernels the sources price as memory-bound copies), as the transfer scales its
  GPU kernels. The timings set that level, so the band is widened by the spread once each
  source's median level is taken out.

Whole-model CPU timings of the phone, when given (``device add --cpu-timings``), set the level
of the borrowed CPU rates (:func:`timed_cpu`): the sources keep the shape, the phone the level.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tflat.errors import TflatError

if TYPE_CHECKING:
    from tflat.model.ops import Graph, Op
    from tflat.predict.predictor import Predictor
    from tflat.predict.rates import AnalyticParams, KernelWork
    from tflat.pricing.cpu import CpuParams

log = logging.getLogger(__name__)

#: The spread quantiles a borrowed band is widened by (an 80 % band).
SPREAD_Q = (0.1, 0.9)


@dataclass(frozen=True)
class CpuWork:
    """One op as the CPU pricer counts it: GEMM GFLOP, other GFLOP, fp32 MB."""

    dense_gflop: float
    other_gflop: float
    mbytes: float


def reference_work(
    graphs: Sequence[Graph], gpu_family: str, precision: str = "fp16"
) -> tuple[list[CpuWork], list[KernelWork]]:
    """The work of every non-free op (as the CPU prices it) and of every non-free GPU kernel
    (as the analytic pricer counts it) of ``graphs``, partitioned for ``gpu_family``."""
    from tflat.gpu import partition
    from tflat.predict.rates import AnalyticParams
    from tflat.pricing.analytic import AnalyticPricer
    from tflat.pricing.base import PricingContext

    counter = AnalyticPricer(AnalyticParams(gpu_family, 1.0, 0.0, 0.0, 0.0))
    bpe = 4 if precision == "fp32" else 2
    cpu: list[CpuWork] = []
    gpu: list[KernelWork] = []
    for graph in graphs:
        kernels = partition(graph, rules="tflite_gpu", gpu_family=gpu_family)
        by_index = {op.index: op for op in graph.ops}
        ctx = PricingContext(graph, kernels, by_index, precision=precision)
        priced = [k for k in kernels if k.kind != "free"]
        cpu.extend(_op_work([by_index[i] for k in priced for i in k.op_indices]))
        gpu.extend(counter.works(ctx, [k for k in priced if k.on_gpu], bpe))
    return cpu, gpu


def _op_work(ops: Sequence[Op]) -> list[CpuWork]:
    from tflat.pricing.cpu import op_work

    return [CpuWork(*op_work(op)) for op in ops]


def cpu_run_work(graph: Graph) -> list[CpuWork]:
    """The work of every op of ``graph`` run wholly on the CPU (layout-only ops free, as
    the delegate's partition counts them)."""
    from tflat.gpu import partition

    by_index = {op.index: op for op in graph.ops}
    kernels = partition(graph, rules="tflite_gpu")
    return _op_work([by_index[i] for k in kernels if k.kind != "free" for i in k.op_indices])


def cpu_ms(params: CpuParams, work: Sequence[CpuWork]) -> float:
    """The CPU price of ``work`` (every op at ``params``' rates)."""
    return sum(params.op_cost_ms(w.dense_gflop, w.other_gflop, w.mbytes) for w in work)


def timed_cpu(
    sections: Mapping[str, Any], timed: Sequence[tuple[str, Sequence[CpuWork], float]]
) -> dict[str, Any]:
    """``sections`` (borrowed) with the CPU's level set by whole-model CPU timings of the phone
    (``(model, its work, ms)``): one factor on every CPU rate, the geometric mean of measured /
    priced; the borrowed mix of the sources keeps the shape (GEMM vs streaming). The band of a
    price: the leave-one-timing-out residuals of that factor, in quadrature with the sources'
    own band and their spread once each one's level is taken out (these few whole models do
    not test every kind of op alone)."""
    from tflat.pricing.cpu import CpuParams
    from tflat.pricing.edges import EdgeParams

    if len(timed) < 2:
        raise TflatError(f"CPU timings: need at least 2 models, got {len(timed)}")
    cpu = CpuParams.from_dict(sections["cpu"])
    logs = np.array([math.log(ms / max(cpu_ms(cpu, work), 1e-9)) for _, work, ms in timed])
    level = float(np.exp(logs.mean()))
    loo = np.array([logs[i] - np.delete(logs, i).mean() for i in range(len(logs))])
    spread = np.array([min(loo.min(), 0.0), max(loo.max(), 0.0)])
    # the sources' own bands: what the borrowed band was before the level spread widened it
    own = np.array(sections["cpu"]["provenance"]["source_bands"])
    shape = np.array(sections["cpu"]["provenance"]["shape_spread"])

    def band(i: int) -> tuple[float, float]:
        return (-math.hypot(own[i][0], spread[0], shape[i][0]),
                math.hypot(own[i][1], spread[1], shape[i][1]))  # fmt: skip

    rates = ("op_ms", "ms_per_gflop_dense", "ms_per_gflop_other", "ms_per_mb")
    timed_rates = {n: getattr(cpu, n) * level for n in rates}
    new_cpu = replace(cpu, **timed_rates, log_interval=band(0), other_log_interval=band(1),
                      config=f"level from {len(timed)} whole-model CPU timings")  # fmt: skip
    edges = EdgeParams.from_dict(sections["edges"])
    new_edges = replace(edges, ms_per_mb=new_cpu.ms_per_mb)
    record = {
        "method": "one factor on the borrowed CPU rates: the geometric mean of measured / "
        "priced over whole models run on the CPU; band: leave-one-timing-out residuals of the "
        "factor, in quadrature with the sources' own band and their spread, level taken out",
        "level": level,
        "timings": [{"model": m, "ms": ms} for m, _, ms in timed],
        "loo_log_residuals": [float(x) for x in loo],
        "loo_mape_pct": float(np.mean(np.abs(np.expm1(-loo))) * 100),
    }
    out = dict(sections)
    out["cpu"] = new_cpu.to_dict() | {
        "provenance": dict(sections["cpu"]["provenance"]) | {"cpu_timings": record}
    }
    out["edges"] = new_edges.to_dict() | {
        "provenance": dict(sections["edges"]["provenance"])
        | {"ms_per_mb": "the CPU's streaming rate, its level set by the CPU timings"}
    }
    return out


def _sections(sources: Sequence[Predictor]) -> list[tuple[str, Mapping[str, Any]]]:
    """(device, pricing sections) of the sources that have cpu, edges and analytic ones."""
    out = []
    for s in sources:
        pricing = s.bundle.get("pricing") or {}
        if all(name in pricing for name in ("cpu", "edges", "analytic")):
            out.append((s.device, pricing))
        else:
            log.info("%s has no pricing sections to borrow", s.device)
    return out


def _combine(prices: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rates (>= 0) whose prices come closest to the geometric mean of ``prices``
    (sources x items) on relative error, and those prices."""
    from tflat.predict.whole import nnls_relative

    target = np.exp(np.log(np.maximum(prices, 1e-9)).mean(axis=0))
    rates = nnls_relative(columns, target)
    return rates, np.maximum(columns @ rates, 1e-9)


def _widened(band: np.ndarray, spread: np.ndarray) -> tuple[float, float]:
    """The mean of the sources' bands ``band`` (sources x 2), widened by the quantiles of the
    log ``spread`` of their prices around the combined price: the two errors (a source's fit,
    which source the phone is like) independent, so added in quadrature."""
    q_lo, q_hi = (float(np.quantile(spread, q)) for q in SPREAD_Q)
    lo, hi = band.mean(axis=0)
    return (-math.hypot(min(lo, 0.0), min(q_lo, 0.0)), math.hypot(max(hi, 0.0), max(q_hi, 0.0)))


def _borrowed_cpu(
    found: Sequence[tuple[str, Mapping[str, Any]]], work: Sequence[CpuWork]
) -> tuple[CpuParams, np.ndarray, list[list[float]]]:
    from tflat.pricing.cpu import CpuParams

    params = [CpuParams.from_dict(p["cpu"]) for _, p in found]
    cols = np.array([[1.0, w.dense_gflop, w.other_gflop, w.mbytes] for w in work])
    prices = np.vstack([[p.op_cost_ms(*c[1:]) for c in cols] for p in params])
    rates, combined = _combine(prices, cols)
    spread = np.log(np.maximum(prices, 1e-9) / combined)
    dense = cols[:, 1] > 0
    bands = np.array([p.log_interval for p in params])
    other_bands = np.array([p.other_log_interval for p in params])
    # a rate the combination leaves at 0 would price nothing: the smallest source's instead
    floor = {n: min(getattr(p, n) for p in params) for n in ("ms_per_gflop_dense", "ms_per_mb")}
    cpu = CpuParams(
        op_ms=float(rates[0]),
        ms_per_gflop_dense=max(float(rates[1]), floor["ms_per_gflop_dense"]),
        ms_per_gflop_other=float(rates[2]),
        ms_per_mb=max(float(rates[3]), floor["ms_per_mb"]),
        log_interval=_widened(bands, spread[:, dense] if dense.any() else spread),
        other_log_interval=_widened(other_bands, spread[:, ~dense] if (~dense).any() else spread),
        config=params[0].config,
        borrowed_from=tuple(d for d, _ in found),
    )
    # the sources' disagreement on what one op costs against another, each one's level taken
    # out: what CPU timings of the phone, which set the level, leave open
    shape = spread - np.median(spread, axis=1, keepdims=True)
    shapes = [_quantiles(shape[:, sel] if sel.any() else shape) for sel in (dense, ~dense)]
    return cpu, np.array([p.ms_per_mb for p in params]), shapes


def _quantiles(spread: np.ndarray) -> list[float]:
    return [float(min(np.quantile(spread, SPREAD_Q[0]), 0.0)),
            float(max(np.quantile(spread, SPREAD_Q[1]), 0.0))]  # fmt: skip


def _borrowed_analytic(
    found: Sequence[tuple[str, Mapping[str, Any]]],
    work: Sequence[KernelWork],
    gpu_family: str,
    unlisted_scale: float,
) -> AnalyticParams:
    from tflat.predict.rates import AnalyticParams

    params = [AnalyticParams.from_dict(p["analytic"]) for _, p in found]
    classes = {c for p in params for c in p.class_factor}
    factor = {c: math.exp(np.mean([math.log(p.class_factor.get(c, 1.0)) for p in params]))
              for c in classes}  # fmt: skip
    cols = np.array([[w.launches, w.mbytes, w.gflops, w.wave_steps / 1e3] for w in work])
    per_class = np.array([factor.get(w.op_class, 1.0) for w in work])
    prices = np.vstack([[p.ms(w) for w in work] for p in params]) * unlisted_scale
    rates, combined = _combine(prices / per_class, cols)
    spread = np.log(np.maximum(prices / per_class, 1e-9) / combined)
    spread = spread - np.median(spread, axis=1, keepdims=True)  # the timings set the level
    return AnalyticParams(
        gpu_family=gpu_family,
        launch_ms=max(float(rates[0]), min(p.launch_ms for p in params) * unlisted_scale),
        ms_per_mb=float(rates[1]),
        ms_per_gflop=float(rates[2]),
        ms_per_k_wave_steps=float(rates[3]),
        log_interval=_widened(np.array([p.log_interval for p in params]), spread),
        class_factor=factor,
        borrowed_from=tuple(d for d, _ in found),
    )


def borrowed_pricing(
    sources: Sequence[Predictor],
    graphs: Sequence[Graph],
    gpu_family: str,
    unlisted_scale: float,
    precision: str = "fp16",
) -> dict[str, Any]:
    """The ``pricing`` sections of a phone transferred from ``sources`` (empty when no source
    has them), each with its provenance: how it was combined, from which phones."""
    from tflat.pricing.edges import EdgeParams

    found = _sections(sources)
    if not found:
        log.warning("no source phone has pricing sections: refused ops priced roughly")
        return {}
    cpu_work, gpu_work = reference_work(graphs, gpu_family, precision)
    cpu, source_mb_rates, shape_spread = _borrowed_cpu(found, cpu_work)
    own_bands = [
        np.mean([p["cpu"]["log_interval"] for _, p in found], axis=0).tolist(),
        np.mean([p["cpu"].get("other_log_interval", p["cpu"]["log_interval"])
                 for _, p in found], axis=0).tolist(),
    ]  # fmt: skip
    analytic = _borrowed_analytic(found, gpu_work, gpu_family, unlisted_scale)
    edge_bands = np.array([EdgeParams.from_dict(p["edges"]).log_interval for _, p in found])
    mb_spread = np.log(source_mb_rates / cpu.ms_per_mb)
    edges = EdgeParams(
        convert_ms=analytic.launch_ms,
        ms_per_mb=cpu.ms_per_mb,
        log_interval=_widened(edge_bands, mb_spread),
        borrowed_from=cpu.borrowed_from,
    )
    names = [d for d, _ in found]
    common = {
        "basis": "borrowed",
        "sources": names,
        "reference": f"{len(graphs)} corpus networks: {len(cpu_work)} ops, "
        f"{len(gpu_work)} GPU kernels",
    }
    how = "rates fitted (NNLS, relative error) to the geometric mean of the sources' prices"
    sections: dict[str, Any] = {
        "cpu": cpu.to_dict()
        | {"provenance": common | {
            "method": f"this phone's CPU was not timed: {how} of every reference op; band = the "
            "sources' mean band widened by the 10-90 % spread of log(source / combined "
            "price), in quadrature",
            "source_bands": own_bands,
            "shape_spread": shape_spread}},
        "edges": edges.to_dict()
        | {"provenance": common | {
            "method": "convert_ms: one launch of the borrowed analytic rates; ms_per_mb: the "
            "borrowed CPU's; band = the sources' widened by the spread of their CPU MB rates"}},
        "analytic": analytic.to_dict()
        | {"provenance": common | {
            "method": f"{how} of every reference GPU kernel, times the transfer's 'unlisted' "
            f"class scale {unlisted_scale:.4g}; band = the sources' widened by the 10-90 % "
            "spread of log(source / combined price), each source's median level taken out, "
            "in quadrature"}},
    }  # fmt: skip
    return sections
