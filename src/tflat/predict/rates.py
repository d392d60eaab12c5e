"""Analytic rates of a GPU: what a kernel costs from the work it does, fitted on measured kernels.

The regressors price the kinds the data measured; every other kind (element-wise ops, copies,
reductions, ...) is priced from the device's rates::

    ms = factor[class] * (launches * launch_ms + MB moved * ms_per_mb + GFLOP * ms_per_gflop
                          + wave steps / 1000 * ms_per_k_wave_steps)

This module holds what training needs: the work of a kernel described as the learned side
describes it (a :class:`~tflat.predict.features.KernelShape`: USC rows and learned kinds), the
rates (:class:`AnalyticParams`) and their fit on one device's measured kernels;
:mod:`tflat.pricing.analytic` prices the kernels of a real graph with the same rates.

The fit is one non-negative least squares on relative error over the device's measured kernels,
every measured kind weighing the same however many rows it has (so 2000 convolutions do not
drown 70 pools); Winograd convolutions are left out (their executed FLOPs are a different
algorithm's). How far off a kind nobody measured lands is measured by pricing whole measured
kinds as if they had no rows (:func:`leave_kind_out`): for concatenation, mean, pooling and
fully connected in turn the rates are refitted without the kind and its kernels priced; the
log ratios measured / price of those held-out kinds give the interval.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflat.errors import PredictorError
from tflat.predict.features import BYTES_PER_ELEMENT, KernelShape, _Columns
from tflat.predict.sections import (
    DEFAULT_BAND,
    MAX_RATE,
    Band,
    band_of,
    borrowed_dict,
    borrowed_of,
    check_band,
    check_rates,
    reading,
)

log = logging.getLogger(__name__)
INTERVAL_LEVEL = 0.8


@dataclass(frozen=True)
class KernelWork:
    """The work of one kernel. ``wave_steps``: serial steps of one work item times the waves
    of work items the GPU runs them in (an under-filled GPU or a long loop shows here)."""

    op_class: str
    mbytes: float
    gflops: float
    wave_steps: float
    launches: int = 1


#: The class of each kernel kind the learned side describes as a :class:`KernelShape`.
SHAPE_CLASS = {"conv2d": "matmul", "grouped_conv2d": "matmul", "transpose_conv": "matmul",
               "fully_connected": "matmul", "depthwise_conv2d": "matmul", "pool": "pool",
               "mean": "reduce", "concat": "copy"}  # fmt: skip


def shape_works(shapes: Sequence[KernelShape], bytes_per_element: int = 2) -> list[KernelWork]:
    """The work of kernels described as the learned side describes them (a USC row or a
    graph kernel of a learned kind): the very columns its features use, so an analytic price
    fitted on USC rows of one kind applies to a graph kernel of another alike."""
    if not shapes:
        return []
    # the learned side's vectorised properties (bytes moved, executed FLOPs, wave steps)
    cols = _Columns(shapes)
    scale = bytes_per_element / BYTES_PER_ELEMENT
    return [
        KernelWork(SHAPE_CLASS.get(s.kind, "matmul"), float(mb) * scale / 1e6, float(gf) / 1e9,
                   float(ws))
        for s, mb, gf, ws in zip(
            shapes, cols.bytes_moved, cols.flops_eff, cols.wave_steps, strict=True
        )
    ]  # fmt: skip


#: A copy that reorders elements costs more than one that streams them: on the Adreno 640 the
#: nn-Meter fusion tests (TFLite 2.1, 28x28x16 tensors) measured a layout-changing reshape at
#: 8.0 us against 5.0 us for an add of the same tensor (rule_tflite_gpu.json, "reshape" vs "add").
DEFAULT_CLASS_FACTOR = {"layout": 8.0 / 5.0}
_RATES = ("launch_ms", "ms_per_mb", "ms_per_gflop", "ms_per_k_wave_steps")


@dataclass(frozen=True)
class AnalyticParams:
    """One device's analytic rates (all >= 0) and how much to trust them."""

    gpu_family: str
    launch_ms: float
    ms_per_mb: float
    ms_per_gflop: float
    ms_per_k_wave_steps: float
    #: 80 % interval of log(measured / price) on kinds left out of the fit (lo <= 0 <= hi)
    log_interval: Band = DEFAULT_BAND
    class_factor: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CLASS_FACTOR))
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: the phones these rates were borrowed from (a transferred phone: tflat.devices.borrowed)
    borrowed_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_rates("analytic pricing", self, _RATES, positive=("launch_ms",))
        check_band("analytic pricing", "log_interval", self.log_interval)
        for cls, f in self.class_factor.items():
            if not (math.isfinite(f) and 0 < f <= MAX_RATE):
                raise PredictorError(f"analytic pricing: class_factor[{cls}] must be in (0, 1e6]")

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> AnalyticParams:
        """Read a bundle's ``pricing.analytic`` section; a problem -> PredictorError."""
        with reading("analytic pricing"):
            factors = section.get("class_factor", DEFAULT_CLASS_FACTOR)
            return cls(
                gpu_family=str(section["gpu_family"]),
                **{name: float(section[name]) for name in _RATES},
                log_interval=band_of(section),
                class_factor={str(k): float(v) for k, v in factors.items()},
                provenance=dict(section.get("provenance", {})),
                borrowed_from=borrowed_of(section),
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu_family": self.gpu_family,
            **{name: getattr(self, name) for name in _RATES},
            "log_interval": list(self.log_interval),
            "class_factor": dict(self.class_factor),
            "provenance": dict(self.provenance),
        } | borrowed_dict(self.borrowed_from)

    def ms(self, work: KernelWork) -> float:
        """The central price of one kernel's work."""
        raw = (
            work.launches * self.launch_ms
            + work.mbytes * self.ms_per_mb
            + work.gflops * self.ms_per_gflop
            + work.wave_steps / 1e3 * self.ms_per_k_wave_steps
        )
        return raw * self.class_factor.get(work.op_class, 1.0)


#: Kinds priced analytically as if never measured, to calibrate the analytic interval.
LEAVE_OUT_KINDS = ("concat", "mean", "pool", "fully_connected")
#: Kinds whose rows the rates are fitted on.
FIT_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected", "pool", "mean", "concat")


@dataclass(frozen=True)
class UscKernels:
    """One device's measured kernels as the analytic pricer sees them."""

    works: tuple[KernelWork, ...]
    kinds: np.ndarray
    measured_ms: np.ndarray
    usable: np.ndarray  # rows the fit may use (not Winograd)

    def columns(self) -> np.ndarray:
        return np.array(
            [[w.launches, w.mbytes, w.gflops, w.wave_steps / 1e3] for w in self.works], dtype=float
        ).reshape(len(self.works), 4)


def usc_kernels(op_rows: Sequence[Any], gpu_family: str) -> UscKernels:
    """The USC rows of one device (``UscOpRow``) as kernel works (fp16, slices of 4)."""
    from tflat.predict.shapes import shape_from_usc

    shapes = [shape_from_usc(r.operation, r.feature, r.kernel_name, gpu_family) for r in op_rows]
    return UscKernels(
        works=tuple(shape_works(shapes)),
        kinds=np.array([s.kind for s in shapes]),
        measured_ms=np.maximum(np.array([r.latency_ms for r in op_rows], dtype=float), 1e-4),
        usable=np.array([not s.winograd for s in shapes], dtype=bool),
    )


def fit_rates(data: UscKernels, kinds: Sequence[str]) -> np.ndarray:
    """[launch_ms, ms_per_mb, ms_per_gflop, ms_per_k_wave_steps] fitted on ``kinds``' rows."""
    from scipy.optimize import nnls

    sel = data.usable & np.isin(data.kinds, list(kinds))
    if not sel.any():
        raise ValueError("no measured kernels to fit the analytic rates on")
    weight = np.zeros(len(data.kinds))
    for kind in set(data.kinds[sel].tolist()):
        rows = sel & (data.kinds == kind)
        weight[rows] = 1.0 / math.sqrt(rows.sum())  # every kind weighs the same
    x, y = data.columns()[sel], data.measured_ms[sel]
    w = weight[sel] / y
    coef, _ = nnls(x * w[:, None], y * w)
    if coef[0] <= 0:  # a launch is never free: the fastest measured kernels bound it
        coef[0] = float(np.quantile(y, 0.02))
    return np.asarray(coef, dtype=float)


def predict_rows(data: UscKernels, coef: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.maximum(data.columns()[rows] @ coef, 1e-6)


def leave_kind_out(data: UscKernels, kinds: Sequence[str] = LEAVE_OUT_KINDS) -> dict[str, Any]:
    """Per held-out kind: log(measured / analytic price) of its kernels, the rates fitted
    on every other kind."""
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        rows = data.kinds == kind
        if not rows.any():
            continue
        coef = fit_rates(data, [k for k in FIT_KINDS if k != kind])
        out[kind] = np.log(data.measured_ms[rows] / predict_rows(data, coef, rows))
    return out


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, cum, v))


Interval = tuple[float, float]


def calibrate(residuals: Mapping[Any, np.ndarray], level: float = INTERVAL_LEVEL) -> Interval:
    """The central ``level`` band of held-out log ratios (every kind weighing the same),
    widened to hold 0: the central price itself is never shifted."""
    vals = np.concatenate([r for r in residuals.values()])
    wts = np.concatenate([np.full(r.size, 1.0 / r.size) for r in residuals.values()])
    tail = (1 - level) / 2
    lo = weighted_quantile(vals, wts, tail)
    hi = weighted_quantile(vals, wts, 1 - tail)
    return min(lo, 0.0), max(hi, 0.0)


def fit_analytic(
    op_rows: Sequence[Any],
    gpu_family: str,
    provenance: Mapping[str, Any] | None = None,
    interval: Interval | None = None,
) -> tuple[AnalyticParams, dict[str, np.ndarray]]:
    """The analytic rates of one device from its USC kernel rows, and the log ratios of its
    kinds left out in turn. ``interval`` (e.g. :func:`global_interval`'s) replaces the one
    calibrated on this device's own held-out kinds."""
    data = usc_kernels(op_rows, gpu_family)
    coef = fit_rates(data, FIT_KINDS)
    residuals = leave_kind_out(data)
    params = AnalyticParams(
        gpu_family=gpu_family,
        launch_ms=float(coef[0]),
        ms_per_mb=float(coef[1]),
        ms_per_gflop=float(coef[2]),
        ms_per_k_wave_steps=float(coef[3]),
        log_interval=interval or calibrate(residuals),
        provenance={
            **dict(provenance or {}),
            "fitted_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "kernel_rows": int(data.usable.sum()),
            "method": "NNLS on relative error over the measured kernels (every kind weighing "
            "the same, Winograd rows left out); interval from leaving whole kinds out "
            f"({', '.join(LEAVE_OUT_KINDS)})",
        },
    )
    return params, residuals


def fit_analytic_or_none(
    op_rows: Sequence[Any], gpu_family: str, provenance: Mapping[str, Any] | None = None
) -> AnalyticParams | None:
    """:func:`fit_analytic`'s rates, or None (logged) when these rows cannot fit them (no
    kernel of a fitted kind): training a predictor never fails for want of them."""
    try:
        params, _ = fit_analytic(op_rows, gpu_family, {"source": (provenance or {}).get("source")})
    except ValueError as exc:
        log.info("no analytic rates for this device: %s", exc)
        return None
    return params
