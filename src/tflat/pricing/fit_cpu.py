"""Fitting a phone's CPU rates and its GPU<->CPU copy costs from the USC whole-model timings.

CPU (:class:`~tflat.pricing.cpu.CpuParams`): the USC data times every model on one big core
(``<dev>|1large|float|mean``). A model's time is the sum of its ops' costs, so the rates are a
non-negative least squares on relative error of the measured total over, per model, the number
of ops, the GFLOP of its matrix products (convolutions, fully connected), the GFLOP of every
other op (depthwise, pooling, means, the element-wise ops the GPU rows omit) and the MB its ops
read and write in fp32. Each model's quantities come from its GPU kernel rows (the same ops)
and the ops those rows omit (:func:`tflat.predict.train.model_parts`). The interval is the
80 % band of the family-held-out log ratios (every family out of the fit in turn).

Copies at partition edges (:class:`~tflat.pricing.edges.EdgeParams`): the data has no split
model, so the two constants come from what it has. A copy streams the tensor through the CPU
at the CPU model's ``ms_per_mb`` and is converted to or from the GPU's fp16 4-channel layout by
one kernel of the delegate, a launch of the GPU's analytic rates (``launch_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflat.predict.whole import nnls_relative
from tflat.pricing.base import INTERVAL_LEVEL
from tflat.pricing.cpu import CpuParams
from tflat.pricing.edges import EdgeParams

CPU_CONFIG = "1large|float"
#: columns of the CPU fit, in the order of CpuParams' rates
CPU_COLUMNS = ("ops", "dense_gflop", "other_gflop", "mbytes")
_DENSE_KINDS = frozenset({"conv2d", "grouped_conv2d", "fully_connected"})


@dataclass(frozen=True)
class CpuRow:
    model: str
    family: str
    measured_ms: float
    x: tuple[float, float, float, float]


def cpu_rows(op_rows: Sequence[Any], cpu_models: Sequence[Any], gpu_family: str) -> list[CpuRow]:
    """One row per model with a CPU timing: the quantities of :data:`CPU_COLUMNS`."""
    from tflat.predict.train import model_parts

    measured = {m.model: m.mean_ms for m in cpu_models}
    out = []
    for mp in model_parts(op_rows, cpu_models, gpu_family):
        if mp.model not in measured or not mp.shapes:
            continue
        dense = sum(s.flops for s in mp.shapes if s.kind in _DENSE_KINDS) / 1e9
        other = sum(s.flops for s in mp.shapes if s.kind not in _DENSE_KINDS) / 1e9
        mb = 0.0
        for s in mp.shapes:
            act = s.h_in * s.w_in * s.cin + s.h_out * s.w_out * s.cout
            if s.kind == "concat":  # the inputs are as large as the output together
                act = 2 * s.h_out * s.w_out * s.cout
            mb += (act + _weights(s)) * 4 / 1e6
        # an omitted (element-wise) op reads and writes the tensor its MB describe (fp16,
        # slices of 4 on the GPU: the same elements, twice the bytes in fp32), one FLOP each
        mb += 2 * 2 * mp.unlisted_mb
        other += mp.unlisted_mb * 1e6 / 2 / 1e9
        ops = len(mp.shapes) + mp.unlisted_ops + mp.merged_pads
        out.append(CpuRow(mp.model, mp.family, float(measured[mp.model]), (ops, dense, other, mb)))
    return out


def _weights(s: Any) -> float:
    if s.kind in _DENSE_KINDS:
        return float(s.taps * s.cin / max(s.groups, 1) * s.cout)
    if s.kind == "depthwise_conv2d":
        return float(s.taps * s.cout)
    return 0.0


def fit_cpu(
    op_rows: Sequence[Any],
    cpu_models: Sequence[Any],
    gpu_family: str,
    provenance: Mapping[str, Any] | None = None,
) -> tuple[CpuParams, dict[str, Any]]:
    """The CPU rates of one phone and the record of their family-held-out error."""
    rows = cpu_rows(op_rows, cpu_models, gpu_family)
    if len(rows) < len(CPU_COLUMNS) + 1:
        raise ValueError(f"{len(rows)} models with a CPU timing: too few to fit the CPU rates")
    x = np.array([r.x for r in rows], dtype=float)
    y = np.array([r.measured_ms for r in rows], dtype=float)
    fams = np.array([r.family for r in rows])
    held = np.full(len(rows), np.nan)
    for fam in sorted(set(fams.tolist())):
        test = fams == fam
        held[test] = x[test] @ nnls_relative(x[~test], y[~test])
    log_ratio = np.log(y / np.maximum(held, 1e-6))
    tail = (1 - INTERVAL_LEVEL) / 2
    lo, hi = _band(log_ratio)
    # honest coverage: each family judged by the band of the other families' residuals
    inside = np.zeros(len(rows), dtype=bool)
    for fam in sorted(set(fams.tolist())):
        flo, fhi = _band(log_ratio[fams != fam])
        inside[fams == fam] = (log_ratio[fams == fam] >= flo) & (log_ratio[fams == fam] <= fhi)
    coef = nnls_relative(x, y)
    dense = max(float(coef[1]), 1e-6)
    mb_rate = max(float(coef[3]), 1e-6)
    record = {
        "config": CPU_CONFIG,
        "models": len(rows),
        "columns": list(CPU_COLUMNS),
        "family_held_out_mape_pct": float(np.mean(np.abs(held / y - 1)) * 100),
        "family_held_out_within_10_pct": float(np.mean(np.abs(held / y - 1) <= 0.10) * 100),
        "family_held_out_coverage_pct": float(np.mean(inside) * 100),
        "quantiles_log_ratio": [float(np.quantile(log_ratio, q)) for q in (tail, 0.5, 1 - tail)],
        "method": "NNLS on relative error of the whole-model CPU time over ops, GEMM GFLOP, "
        "other GFLOP and fp32 MB; interval from family-held-out log ratios (split conformal)",
    }
    params = CpuParams(
        op_ms=float(coef[0]),
        ms_per_gflop_dense=dense,
        ms_per_gflop_other=float(coef[2]),
        ms_per_mb=mb_rate,
        log_interval=(lo, hi),
        config=CPU_CONFIG,
        provenance={**dict(provenance or {}), "method": record["method"]},
    )
    return params, record


def _band(log_ratio: np.ndarray) -> tuple[float, float]:
    """80 % band of log ratios around their median (split conformal: level 0.8 (n + 1) / n),
    widened to hold 0."""
    level = min(1.0, INTERVAL_LEVEL * (1 + 1 / max(log_ratio.size, 1)))
    mid = float(np.median(log_ratio))
    half = float(np.quantile(np.abs(log_ratio - mid), level))
    return min(mid - half, 0.0), max(mid + half, 0.0)


def fit_edges(
    cpu: CpuParams, launch_ms: float, provenance: Mapping[str, Any] | None = None
) -> EdgeParams:
    """Copy costs at partition edges from the CPU's streaming rate and the GPU's kernel launch
    (see the module docstring)."""
    return EdgeParams(
        convert_ms=launch_ms,
        ms_per_mb=cpu.ms_per_mb,
        provenance={
            **dict(provenance or {}),
            "convert_ms": "one kernel launch of the GPU's analytic rates (the layout conversion)",
            "ms_per_mb": "the CPU model's streaming rate (fp32 MB) of the same phone",
        },
    )
