"""A predictor for a new phone from a few whole-model timings and the shipped phones' predictors.

The method (measured in benchmarks/device_transfer.py, leaving each USC phone out in turn):

1. every source predictor prices each kernel of the new phone's partition (its delegate family
   decides Winograd and dispatch); the sources are combined per kernel by their geometric mean,
   so no single phone's quirks dominate;
2. one scale per kernel class (1x1, spatial and Winograd convolutions, grouped, depthwise,
   fully connected, pooling and mean, concatenation) and a per-inference overhead are fitted
   to the timings: ``total = sum_c scale_c * kernels_c + overhead``, least squares on log
   totals, the class scales pulled towards their common value by a ridge whose strength is
   chosen by leave-one-timing-out error. Classes a phone runs differently (Adreno's grouped
   convolutions, Mali's Winograd) get their own scale from the models that use them;
3. the fitted pricing is distilled into an ordinary predictor bundle: the analytic term and
   trees of :func:`tflat.predict.train.fit_device` are trained on kernels of many real
   networks priced by step 2, then the whole-model term (scale and overhead) is refitted on
   the timings with the distilled kernels, so the bundle reproduces them;
4. the interval of a total is the conformal band of the leave-one-timing-out residuals: it
   rests on the timings given, and says so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tflat.errors import TflatError
from tflat.predict.features import KernelShape
from tflat.predict.predictor import Predictor
from tflat.predict.train import ModelParts

log = logging.getLogger(__name__)

#: Kernel classes that get a scale of their own.
CLASSES = (
    "conv1x1",
    "conv_spatial",
    "winograd",
    "grouped",
    "depthwise",
    "fully_connected",
    "pool_mean",
    "concat",
    "unlisted",
)
_CLASS_OF_KIND = {
    "grouped_conv2d": "grouped",
    "depthwise_conv2d": "depthwise",
    "fully_connected": "fully_connected",
    "pool": "pool_mean",
    "mean": "pool_mean",
    "concat": "concat",
}
#: Ridge strengths tried (leave-one-timing-out error picks one).
ALPHAS = (0.3, 1.0, 3.0, 10.0)
INTERVAL = 0.8
MIN_TIMINGS = 3
#: The copy kernel an unlisted kernel is priced as (channels; pixels follow from its MB).
_COPY_CHANNELS = 64
_MB_GRID = np.geomspace(1e-4, 300.0, 48)


def kernel_class(shape: KernelShape) -> str:
    if shape.kind in ("conv2d", "transpose_conv"):
        if shape.winograd:
            return "winograd"
        return "conv1x1" if shape.taps == 1 else "conv_spatial"
    return _CLASS_OF_KIND.get(shape.kind, "conv_spatial")


def source_log_ms(sources: Sequence[Predictor], shapes: Sequence[KernelShape]) -> np.ndarray:
    """log of each source's raw (measured-alone) time of each kernel: (sources, kernels)."""
    if not shapes:
        return np.zeros((len(sources), 0))
    return np.log(np.maximum(np.vstack([s.predict_shapes(shapes) for s in sources]), 1e-6))


def class_sums(parts: ModelParts, mixed_ms: np.ndarray, unlisted_ms: float = 0.0) -> np.ndarray:
    """Per kernel class, the sum of the mixed kernel times of one model (its unlisted kernels,
    priced apart, in the last class)."""
    idx = [CLASSES.index(kernel_class(s)) for s in parts.shapes]
    sums = np.bincount(np.asarray(idx, dtype=int), weights=mixed_ms, minlength=len(CLASSES))
    sums[CLASSES.index("unlisted")] = unlisted_ms
    return sums


def unlisted_mb_each(parts: ModelParts) -> tuple[float, ...]:
    """The MB each unlisted kernel of ``parts`` writes (spread evenly when only the total is
    known)."""
    each = getattr(parts, "unlisted_mb_each", ())
    if each or not parts.unlisted_ops:
        return tuple(each)
    return (parts.unlisted_mb / parts.unlisted_ops,) * parts.unlisted_ops


@dataclass(frozen=True)
class ClassFit:
    """``total = sum_c scale[c] * kernels_c + overhead_ms`` on the mixed source times."""

    scale: dict[str, float]
    overhead_ms: float
    alpha: float

    def total(self, sums: np.ndarray) -> float:
        lam = np.array([self.scale[c] for c in CLASSES])
        return float(sums @ lam + self.overhead_ms)


def _fit_classes(x: np.ndarray, y: np.ndarray, alpha: float) -> ClassFit:
    """Least squares on log totals; class scales (log) ridge-pulled to the mean of the classes
    the models use (a class none of them uses gets that mean)."""
    from scipy.optimize import least_squares

    nc = len(CLASSES)
    used = x.sum(axis=0) > 0
    base = float(np.log(np.median(y / np.maximum(x.sum(axis=1), 1e-9))))

    def model(th: np.ndarray) -> np.ndarray:
        return np.asarray(x @ np.exp(th[:nc]) + np.exp(th[nc]))

    def residuals(th: np.ndarray) -> np.ndarray:
        mean = np.mean(th[:nc][used]) if used.any() else base
        pen = math.sqrt(alpha) * (th[:nc] - mean)
        return np.concatenate([np.log(model(th)) - np.log(y), pen])

    th0 = np.concatenate([np.full(nc, base), [math.log(max(0.05 * float(np.median(y)), 1e-3))]])
    lo = np.concatenate([np.full(nc, base - 8.0), [math.log(1e-4)]])
    hi = np.concatenate([np.full(nc, base + 8.0), [math.log(max(float(y.max()), 1e-3))]])
    sol = least_squares(residuals, np.clip(th0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi))
    th = sol.x
    return ClassFit(
        scale={c: float(math.exp(th[i])) for i, c in enumerate(CLASSES)},
        overhead_ms=float(math.exp(th[nc])),
        alpha=alpha,
    )


def _loo(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """log(measured / predicted) of each timing, fitted without it."""
    out = np.zeros(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        fit = _fit_classes(x[keep], y[keep], alpha)
        out[i] = math.log(y[i] / max(fit.total(x[i]), 1e-9))
    return out


def conformal_half_width(log_residuals: np.ndarray, level: float = INTERVAL) -> float:
    """Half-width (log) of a symmetric band that held-out residuals say covers ``level``,
    with the finite-sample factor (n + 1) / n."""
    r = np.abs(np.asarray(log_residuals, dtype=float))
    if r.size == 0:
        return math.log(1.6)
    return float(np.quantile(r, min(1.0, level * (1 + 1 / r.size))))


@dataclass(frozen=True)
class TimingFit:
    """What the timings taught: the class fit, and how it does on each timing held out."""

    fit: ClassFit
    sources: tuple[str, ...]
    models: tuple[str, ...]
    measured_ms: tuple[float, ...]
    fitted_ms: tuple[float, ...]
    loo_log_residuals: tuple[float, ...]
    design_loo_mape_pct: dict[str, float] = field(default_factory=dict)

    @property
    def loo_mape_pct(self) -> float:
        return float(np.mean(np.abs(np.expm1(-np.asarray(self.loo_log_residuals)))) * 100)

    @property
    def log_half_width(self) -> float:
        return conformal_half_width(np.asarray(self.loo_log_residuals))


class SourceMix:
    """The source predictors' geometric mean per kernel (log ms), cached per model."""

    def __init__(self, sources: Sequence[Predictor]) -> None:
        if not sources:
            raise TflatError("no source devices to transfer from")
        self.sources = list(sources)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.device for s in self.sources)

    def mixed_ms(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        return np.asarray(np.exp(source_log_ms(self.sources, shapes).mean(axis=0)))

    def copy_ms(self, mb: Sequence[float] | np.ndarray, gpu_family: str) -> np.ndarray:
        """The mixed time of a kernel that reads and writes ``mb`` (fp16): a 1x1 pooling, the
        sources' plainest memory-bound kernel. Element-wise ops, activations and reshapes the
        USC rows never list cost what moving their bytes costs on each source."""
        grid = self._copy_grid(gpu_family)
        x = np.log(np.clip(np.asarray(mb, dtype=float), _MB_GRID[0], _MB_GRID[-1]))
        return np.asarray(np.exp(np.interp(x, np.log(_MB_GRID), np.log(grid))))

    def _copy_grid(self, gpu_family: str) -> np.ndarray:
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_copy_cache", {})
        if gpu_family not in cache:
            shapes = []
            for mb in _MB_GRID:
                px = max(1, round(math.sqrt(mb * 1e6 / (2 * _COPY_CHANNELS))))
                shapes.append(KernelShape(kind="pool", h_in=px, w_in=px, cin=_COPY_CHANNELS,
                                          h_out=px, w_out=px, cout=_COPY_CHANNELS,
                                          flops=px * px * _COPY_CHANNELS,
                                          gpu_family=gpu_family))  # fmt: skip
            cache[gpu_family] = self.mixed_ms(shapes)
        return cache[gpu_family]

    def class_sums(self, parts: ModelParts) -> np.ndarray:
        family = parts.shapes[0].gpu_family if parts.shapes else "default"
        unlisted = float(self.copy_ms(unlisted_mb_each(parts), family).sum())
        return class_sums(parts, self.mixed_ms(parts.shapes), unlisted)


def fit_timings(
    mix: SourceMix, timed: Sequence[ModelParts], alphas: Sequence[float] = ALPHAS
) -> TimingFit:
    """Fit the class scales and overhead to whole-model timings (``measured_ms`` of each part),
    the ridge strength chosen by leave-one-timing-out error."""
    timed = [p for p in timed if p.measured_ms]
    if len(timed) < MIN_TIMINGS:
        raise TflatError(f"a transfer needs at least {MIN_TIMINGS} timed models, got {len(timed)}")
    x = np.vstack([mix.class_sums(p) for p in timed])
    y = np.array([float(p.measured_ms or 0.0) for p in timed])
    scores: dict[str, float] = {}
    residuals: dict[float, np.ndarray] = {}
    for a in alphas:
        r = _loo(x, y, a)
        residuals[a] = r
        scores[f"alpha={a:g}"] = float(np.mean(np.abs(np.expm1(-r))) * 100)
    # the lowest error wins; on a tie the stronger pooling
    best = min(alphas, key=lambda a: (scores[f"alpha={a:g}"], -a))
    fit = _fit_classes(x, y, best)
    return TimingFit(
        fit=fit,
        sources=mix.names,
        models=tuple(p.model for p in timed),
        measured_ms=tuple(float(v) for v in y),
        fitted_ms=tuple(fit.total(row) for row in x),
        loo_log_residuals=tuple(float(v) for v in residuals[best]),
        design_loo_mape_pct=scores,
    )


def predict_total(mix: SourceMix, tf: TimingFit, parts: ModelParts) -> float:
    """The transfer's whole-model estimate of one model (before distillation)."""
    return tf.fit.total(mix.class_sums(parts))


def _kernel_corpus(corpus: Sequence[ModelParts]) -> list[KernelShape]:
    """Distinct kernel shapes of the corpus models and their :func:`_variants`, in a stable
    order."""
    seen: dict[KernelShape, None] = {}
    for p in corpus:
        for s in p.shapes:
            seen.setdefault(s, None)
    for s in list(seen):
        for v in _variants(s):
            seen.setdefault(v, None)
    return list(seen)


#: Pixel grids a fully connected kernel is also distilled on (a Dense layer on an image).
_FC_GRIDS = (7, 14, 28, 56)


def _variants(s: KernelShape) -> list[KernelShape]:
    """Kernels the corpus networks lack but real ones have, priced by the sources so the
    distilled trees need not extrapolate on their own: a fully connected kernel over a pixel
    grid (a Dense layer on an image, as in ConvNeXt), FLOPs scaled with the pixels. (Doubling
    every kernel's size and channels as well was tried: the USC leave-one-phone-out bundle
    lost 0.7 points of ±10 % share.)"""
    if s.kind != "fully_connected" or s.h_out != 1 or s.w_out != 1:
        return []
    return [replace(s, h_in=g, w_in=g, h_out=g, w_out=g, flops=g * g * s.flops) for g in _FC_GRIDS]


def _kernel_interval(
    mix: SourceMix, shapes: Sequence[KernelShape], kinds: Sequence[str]
) -> dict[str, list[float]]:
    """Per kind, the 10-90 % spread of the sources around their mean once each source's own
    level for the kind is taken out: how much the phones disagree on a kernel's relative cost."""
    logs = source_log_ms(mix.sources, shapes)
    kind_arr = np.array([s.kind for s in shapes])
    out: dict[str, list[float]] = {}
    lo_q, hi_q = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    for kind in kinds:
        sel = kind_arr == kind
        if sel.sum() < 5:
            sel = np.ones(len(shapes), dtype=bool)
        d = logs[:, sel] - logs[:, sel].mean(axis=0)
        d = d - np.median(d, axis=1, keepdims=True)
        out[kind] = [float(np.quantile(d, lo_q)), float(np.quantile(d, hi_q))]
    return out


def _precision(mix: SourceMix) -> str:
    """The GPU math precision of the sources' measurements (they must agree)."""
    found = {str(getattr(s, "precision", "fp16")) for s in mix.sources}
    if len(found) != 1:
        raise TflatError(f"source devices were measured in different precisions: {sorted(found)}")
    return found.pop()


def distill(
    mix: SourceMix,
    tf: TimingFit,
    corpus: Sequence[ModelParts],
    timed: Sequence[ModelParts],
    *,
    device: Mapping[str, Any],
    gpu_family: str,
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """An ordinary predictor bundle that prices kernels as the class fit does, with its
    whole-model term refitted on the timings (``timed``, with ``measured_ms``)."""
    import datetime as _dt

    from tflat.predict.features import ANALYTIC_COLUMNS, FEATURE_NAMES
    from tflat.predict.predictor import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION
    from tflat.predict.train import GBDT_PARAMS, fit_kernels
    from tflat.predict.whole import nnls_relative
    from tflat.version import __version__

    shapes = _kernel_corpus([*corpus, *timed])
    if not shapes:
        raise TflatError("no kernels to distil the transfer into")
    mixed = mix.mixed_ms(shapes)
    scale = np.array([tf.fit.scale[kernel_class(s)] for s in shapes])
    km = fit_kernels(shapes, np.maximum(mixed * scale, 1e-5), dict(GBDT_PARAMS))
    # The whole-model term on the distilled kernels: a scale on their sum and the overhead,
    # refitted on the timings, so that what the bundle says of them is what they measured.
    given = [p for p in timed if p.measured_ms]
    sums = np.array([float(km.predict(p.shapes).sum()) if p.shapes else 0.0 for p in given])
    y = np.array([float(p.measured_ms or 0.0) for p in given])
    fit = tf.fit
    # Unlisted kernels: the bundle prices each at u_count + u_mb * MB (its whole-model term);
    # those two are fitted to the transfer's copy price of the unlisted kernels seen.
    family = next((s.gpu_family for s in shapes), "default")
    mbs = np.array([mb for p in [*corpus, *timed] for mb in unlisted_mb_each(p)] or [0.01])
    target = fit.scale["unlisted"] * mix.copy_ms(mbs, family)
    u_coef = nnls_relative(np.column_stack([np.ones(len(mbs)), mbs]), target)
    unlisted = np.array([u_coef[0] * p.unlisted_ops + u_coef[1] * p.unlisted_mb for p in given])
    # the unlisted kernels keep the class fit's price; scale and overhead take the rest
    rest = np.maximum(y - unlisted, 0.05 * y)
    coef = nnls_relative(np.column_stack([sums, np.ones(len(y))]), rest)
    if coef[0] <= 0:
        coef = np.array([1.0, fit.overhead_ms])
    half = tf.log_half_width
    refit_res = np.log(y / np.maximum(sums * coef[0] + coef[1] + unlisted, 1e-9))
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "device": dict(device),
        "gpu_family": gpu_family,
        "rules": "tflite_gpu",
        # the sources' data was measured in this math precision; the transfer inherits it
        "precision": _precision(mix),
        "tflat_version": __version__,
        "trained_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "provenance": dict(provenance),
        "features": list(FEATURE_NAMES),
        "kinds": list(km.kinds),
        "analytic": {k: [float(c) for c in v] for k, v in km.analytic.items()},
        "analytic_columns": list(ANALYTIC_COLUMNS),
        "trees": km.trees.to_dict(),
        "gbdt_params": dict(GBDT_PARAMS),
        "kernel_interval": {
            "level": INTERVAL,
            "log_ratio": _kernel_interval(mix, shapes, km.kinds),
        },
        "whole_model": {
            "design": "transfer",
            "fitted_on": "timings",
            "features": ["listed_kernel_sum_ms", "unlisted_ops", "unlisted_mb", "one"],
            "coef": {
                "listed_kernel_sum_ms": float(coef[0]),
                "unlisted_ops": float(u_coef[0]),
                "unlisted_mb": float(u_coef[1]),
                "one": float(coef[1]),
            },
            "log_interval": [-half, half],
            "defined_on": (
                "listed kernels priced by the distilled transfer; the scale and overhead "
                "refitted on the whole-model timings; the interval is the conformal band of "
                "the leave-one-timing-out residuals of the class fit"
            ),
        },
        "training_rows": {"kernels": len(shapes), "models": len(given)},
        "metrics": {
            "model_loo_mape_pct": tf.loo_mape_pct,
            "timings_refit_mape_pct": float(np.mean(np.abs(np.expm1(-refit_res))) * 100),
        },
    }
    Predictor(bundle)  # refuse to return a bundle that does not load
    return bundle
