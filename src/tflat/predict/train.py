"""Train a device predictor from per-kernel and whole-model measurements.

``fit_device`` is the one entry point: USC public data for the shipped phones, or a device's
own benchmarks (host-cpu calibration) given as the same row types. Steps, each fitted only on
the rows it is given:

1. analytic term per kernel kind: non-negative ``launch + ms/GFLOP * GFLOP + ms/MB * MB
   + ms/kstep * serial steps`` (:data:`~tflat.predict.features.ANALYTIC_COLUMNS`), fitted on
   relative error (so small kernels count as much as big ones);
2. one boosted-tree model on ``log(measured / analytic)`` over all kinds (kind is a feature),
   so the trees correct the analytic term but never replace it: outside the data the
   correction is bounded and the analytic term extrapolates;
3. out-of-fold predictions over architecture families give calibrated kernel intervals
   (residual quantiles in log space, per kind) and honest kernel sums for step 4;
4. whole-model term (:mod:`tflat.predict.whole`): non-negative least squares of measured
   whole-model latency on out-of-fold kernel sums and counts (by kernel group), unlisted ops,
   the MB they write and 1, on relative error; the design is chosen by leave-one-family-out
   error on these rows, whose residuals also give the interval of a total.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflat.datasets.usc import UscModelRow, UscOpRow
from tflat.errors import PredictorError
from tflat.gpu.partition import load_gpu_rules
from tflat.predict.features import (
    ANALYTIC_COLUMNS,
    FEATURE_NAMES,
    KernelShape,
    analytic_inputs,
    analytic_ms,
    feature_matrix,
)
from tflat.predict.folds import group_folds as _group_folds
from tflat.predict.predictor import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, Predictor, proxy_shape
from tflat.predict.ranges import training_range
from tflat.predict.rates import fit_analytic_or_none
from tflat.predict.shapes import shape_from_usc
from tflat.predict.trees import fit_gbdt, train_booster
from tflat.predict.whole import fit_whole_model, model_features, nnls_relative
from tflat.progress import ProgressCallback, Ticker
from tflat.version import __version__

log = logging.getLogger(__name__)

GBDT_PARAMS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 5,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}
#: Candidate tree settings (overrides of :data:`GBDT_PARAMS`), chosen per training set by the
#: out-of-fold kernel error of its inner family folds (``fit_device(tune=True)``): fewer
#: or more leaves, a stronger penalty with larger leaves, and robust losses on the log ratio
#: (huber: residuals beyond 0.1, about 10 %, count linearly; l1: the median), because a few
#: kernels whose profiled time is far off (warm-up, clock changes) pull a least-squares fit.
GBDT_GRID: dict[str, dict[str, Any]] = {
    "default": {},
    "leaves7": {"num_leaves": 7},
    "leaves31": {"num_leaves": 31, "min_data_in_leaf": 10},
    "regularised": {"lambda_l2": 10.0, "min_data_in_leaf": 20},
    "huber": {"objective": "huber", "alpha": 0.1},
    "l1": {"objective": "regression_l1"},
}
INTERVAL = 0.8
#: How ``fit_device(tune_by=...)`` scores a tree setting on the inner family folds.
TUNE_RULES = {
    "model": "lowest leave-one-family-out whole-model MAPE on the inner family folds",
    "kernel": "lowest out-of-fold kernel MAPE on the inner family folds",
}
#: Kinds whose analytic term is fitted together with a richer kind: grouped convolutions come
#: from few families whose FLOPs hardly vary (ResNeXt), too little to separate launch cost
#: from throughput; the dense convolution's rows pin both down, the trees correct the rest.
ANALYTIC_SHARED: dict[str, str] = {"grouped_conv2d": "conv2d"}


@dataclass(frozen=True)
class ModelParts:
    """One whole model as the training sees it: its listed kernels and what the data omits."""

    model: str
    family: str
    shapes: tuple[KernelShape, ...]
    unlisted_ops: int
    unlisted_mb: float
    measured_ms: float | None
    #: unlisted nodes right before a spatial conv or pool: the converter's explicit PADs,
    #: which the delegate merges into that kernel's padding (not counted in ``unlisted_ops``)
    merged_pads: int = 0


_NODE = re.compile(r"_(\d+)(?=_linked_|$)")


def _nodes(kernel_name: str) -> list[int]:
    """Graph node ids in a delegate kernel name: the id that ends each linked part
    ("convolution_2d_3_linked_:_relu_4" -> 3, 4).

    Metal's fused "depthwise_conv_plus_1x1_conv_5_6_7" yields only 7, so 5 and 6 count as
    unlisted ops. Reading every id token (and, apart from that, counting the pair as one
    launch) was tried: iPhone figures got worse (benchmarks/results/accuracy_usc.md)."""
    return [int(n) for n in _NODE.findall(kernel_name)]


def _unlisted_mb(node: int, main_nodes: Sequence[tuple[int, KernelShape]]) -> float:
    """MB (fp16, slices of 4) an unlisted op writes, taken as the output of the listed kernel
    before it, the tensor such an op works on.

    A squeeze-and-excitation block's broadcast MUL comes right after a fully connected kernel
    yet writes the whole feature map (the next conv's input); counting that map instead was
    tried and made the family-held-out figures worse (a03s 4.34 -> 5.55 % model MAPE: RegNetY's
    SE blocks priced too high), so the rule stays as the term was fitted with.
    """
    before = [s for n, s in main_nodes if n < node]
    ref = before[-1] if before else (main_nodes[0][1] if main_nodes else None)
    if ref is None:
        return 0.0
    return ref.h_out * ref.w_out * 4 * ref.slices_out * 2 / 1e6


def model_parts(
    op_rows: Sequence[UscOpRow],
    model_rows: Sequence[UscModelRow],
    gpu_family: str,
    rules: str = "tflite_gpu",
) -> list[ModelParts]:
    """Group per-kernel rows by model; count the graph nodes no kernel name mentions.

    Kernel names carry the delegate's node ids ("convolution_2d_3_linked_:_relu_4"): ids below
    the largest that no kernel mentions are ops the data does not list (standalone element-wise,
    merged pads, reshapes); their bytes come from :func:`_unlisted_mb`. The same quantities
    exist for a real graph (:meth:`Predictor.predict_graph`): kernels of kinds the per-kernel
    models do not cover.
    """
    gpu_rules = load_gpu_rules(rules) if rules != "xnnpack" else None
    by_model: dict[str, list[UscOpRow]] = defaultdict(list)
    for r in op_rows:
        by_model[r.model].append(r)
    measured = {m.model: m.mean_ms for m in model_rows}
    families = {m.model: m.family for m in model_rows}
    out: list[ModelParts] = []
    for model in sorted(set(by_model) | set(measured)):
        rows = sorted(by_model.get(model, []), key=lambda r: r.position)
        shapes = [
            shape_from_usc(r.operation, r.feature, r.kernel_name, gpu_family, gpu_rules)
            for r in rows
        ]
        seen: set[int] = set()
        main_nodes: list[tuple[int, KernelShape]] = []
        for r, s in zip(rows, shapes, strict=True):
            ids = _nodes(r.kernel_name)
            seen.update(ids)
            if ids:
                main_nodes.append((ids[0], s))
        unlisted_ops, unlisted_mb, merged_pads = 0, 0.0, 0
        if seen:
            main_nodes.sort(key=lambda p: p[0])
            main_at: dict[int, KernelShape] = {}
            for n, s in main_nodes:  # a kernel named on two rows: its first row reads
                main_at.setdefault(n, s)
            for node in range(max(seen) + 1):
                if node in seen:
                    continue
                if _pads_into(main_at.get(node + 1)):
                    merged_pads += 1
                    continue
                if node > 0 and node - 1 not in seen:
                    # the next op of a run of unlisted element-wise ops (DenseNet's batch norm:
                    # MUL, ADD, RELU) is linked into the run's first kernel, as the partition
                    # links it: one kernel, one launch
                    continue
                unlisted_ops += 1
                unlisted_mb += _unlisted_mb(node, main_nodes)
        family = families.get(model) or (rows[0].family if rows else model)
        out.append(
            ModelParts(
                model=model,
                family=family,
                shapes=tuple(shapes),
                unlisted_ops=unlisted_ops,
                unlisted_mb=unlisted_mb,
                measured_ms=measured.get(model),
                merged_pads=merged_pads,
            )
        )
    return out


#: Kernel kinds a PAD merges into when it is their only input (rules' ``pad_merges_into``).
_PAD_TARGETS = frozenset({"conv2d", "depthwise_conv2d", "grouped_conv2d", "pool"})


def _pads_into(shape: KernelShape | None) -> bool:
    """Whether an unlisted node just before this kernel is a PAD merged into it: the converter
    writes an explicit PAD before every VALID spatial conv or pool it pads (see
    :mod:`tflat.model.zoo`), and the partition merges it (:func:`tflat.gpu.partition`)."""
    return shape is not None and shape.kind in _PAD_TARGETS and shape.kernel > 1


_nnls_relative = nnls_relative


def parts_features(mp: ModelParts, raw_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """The whole-model term's inputs of one model from its listed kernels' raw times."""
    return model_features(
        [s.kind for s in mp.shapes],
        raw_ms,
        mp.unlisted_ops,
        mp.unlisted_mb,
        mp.merged_pads,
        [s.weight_bytes / 1e6 for s in mp.shapes],
    )


@dataclass
class KernelModel:
    """Per-kernel regressors of one device: an analytic term per kind, trees on the log ratio
    (what a bundle's ``analytic`` and ``trees`` hold, before they are saved)."""

    kinds: tuple[str, ...]
    analytic: dict[str, np.ndarray]
    trees: Any

    def predict(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        # a kind absent from these training rows is priced as its proxy, as Predictor does
        shapes = [proxy_shape(s, self.kinds) for s in shapes]
        analytic = _analytic(self.analytic, shapes)
        x = feature_matrix(shapes, self.kinds, analytic)
        return np.asarray(analytic * np.exp(self.trees.predict(x)))


def _analytic(coefs: Mapping[str, np.ndarray], shapes: Sequence[KernelShape]) -> np.ndarray:
    return analytic_ms(coefs, shapes)


def fit_kernels(
    shapes: Sequence[KernelShape],
    y_ms: np.ndarray,
    params: Mapping[str, Any],
    export: bool = True,
) -> KernelModel:
    """Analytic term per kind, then the trees on the log ratio; ``export=False`` keeps the
    LightGBM booster (inner-fold predictions only: faster, never saved). Public: the transfer
    (:mod:`tflat.devices.transfer`) and the extrapolation fit train kernel models with it."""
    kinds = tuple(sorted({s.kind for s in shapes}))
    cols = analytic_inputs(shapes)
    analytic: dict[str, np.ndarray] = {}
    kind_arr = np.array([s.kind for s in shapes])
    for kind in kinds:
        sel = kind_arr == kind
        shared = ANALYTIC_SHARED.get(kind)
        if shared is not None and (kind_arr == shared).sum() >= 20:
            sel = sel | (kind_arr == shared)
        coef = _nnls_relative(cols[sel], y_ms[sel])
        if coef[0] <= 0:
            coef[0] = float(np.quantile(y_ms[sel], 0.05)) * 0.5
        analytic[kind] = coef
    base = _analytic(analytic, shapes)
    x = feature_matrix(shapes, kinds, base)
    target = np.log(y_ms / base)
    trees = fit_gbdt(x, target, params) if export else train_booster(x, target, params)
    return KernelModel(kinds=kinds, analytic=analytic, trees=trees)


@dataclass
class _Rows:
    """The training rows of one device, lined up: one entry per listed kernel."""

    parts: list[ModelParts]
    shapes: list[KernelShape]
    y: np.ndarray
    family: list[str]
    model: list[str]


@dataclass
class _Candidate:
    """One tree setting scored on the inner folds: out-of-fold kernel times and the
    whole-model term fitted on them (its leave-one-family-out error is the score)."""

    name: str
    params: dict[str, Any]
    oof: np.ndarray
    whole: dict[str, Any]

    @property
    def model_mape_pct(self) -> float:
        return float(self.whole.get("_metrics", {}).get("model_oof_mape_pct", math.inf))

    def kernel_mape_pct(self, y: np.ndarray) -> float:
        return float(np.mean(np.abs(self.oof - y) / y) * 100)


def _rows(
    op_rows: Sequence[UscOpRow], model_rows: Sequence[UscModelRow], gpu_family: str, rules: str
) -> _Rows:
    parts = model_parts(op_rows, model_rows, gpu_family, rules)
    by_model: dict[str, list[UscOpRow]] = defaultdict(list)
    for r in op_rows:
        by_model[r.model].append(r)
    y = np.array(
        [
            r.latency_ms
            for mp in parts
            for r in sorted(by_model.get(mp.model, []), key=lambda r: r.position)
        ]
    )
    shapes = [s for mp in parts for s in mp.shapes]
    if len(y) != len(shapes):
        raise PredictorError("kernel rows and shapes do not line up")
    return _Rows(
        parts=parts,
        shapes=shapes,
        y=np.maximum(y, 1e-4),
        family=[mp.family for mp in parts for _ in mp.shapes],
        model=[mp.model for mp in parts for _ in mp.shapes],
    )


def _candidate(
    name: str,
    rows: _Rows,
    params: dict[str, Any],
    n_folds: int,
    tick: Ticker,
) -> _Candidate:
    """Out-of-fold kernel predictions over families, and the whole-model term on them."""
    y, shapes = rows.y, rows.shapes
    oof = np.full(len(y), np.nan)
    if len(set(rows.family)) >= 2:
        row_kind = [s.kind for s in shapes]
        for train_idx, test_idx in _group_folds(rows.family, n_folds, row_kind):
            km = fit_kernels([shapes[i] for i in train_idx], y[train_idx], params, False)
            oof[test_idx] = km.predict([shapes[i] for i in test_idx])
            tick()
    if np.isnan(oof).any():
        km = fit_kernels(shapes, y, params)
        oof = np.where(np.isnan(oof), km.predict(shapes), oof)
    return _Candidate(name=name, params=params, oof=oof, whole=whole_term_on(rows, oof))


def whole_term_on(rows: _Rows, oof: np.ndarray) -> dict[str, Any]:
    """The whole-model term of the timed models of ``rows``, fitted on their kernels'
    out-of-fold times ``oof`` (one per row) or on the measured ones (:func:`fit_whole_model`
    chooses, by family-held-out error)."""
    oof_by_model: dict[str, list[float]] = defaultdict(list)
    y_by_model: dict[str, list[float]] = defaultdict(list)
    for m, v, t in zip(rows.model, oof, rows.y, strict=True):
        oof_by_model[m].append(float(v))
        y_by_model[m].append(float(t))
    fit_parts = [mp for mp in rows.parts if mp.measured_ms and mp.shapes]
    return fit_whole_model(
        [parts_features(mp, oof_by_model[mp.model]) for mp in fit_parts],
        [float(mp.measured_ms or 0.0) for mp in fit_parts],
        [mp.family for mp in fit_parts],
        INTERVAL,
        measured_features=[parts_features(mp, y_by_model[mp.model]) for mp in fit_parts],
    )


def _kernel_interval(
    shapes: Sequence[KernelShape], y: np.ndarray, oof: np.ndarray, kinds: Sequence[str]
) -> dict[str, list[float]]:
    """Per-kind 80 % band of log(measured / out-of-fold), all kinds pooled for a rare one."""
    log_res = np.log(y / oof)
    lo_q, hi_q = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    kind_arr = np.array([s.kind for s in shapes])
    out: dict[str, list[float]] = {}
    for kind in kinds:
        r = log_res[kind_arr == kind]
        r = r if r.size >= 10 else log_res
        out[kind] = [float(np.quantile(r, lo_q)), float(np.quantile(r, hi_q))]
    return out


def fit_device(
    op_rows: Sequence[UscOpRow],
    model_rows: Sequence[UscModelRow],
    rules: str = "tflite_gpu",
    *,
    device: Mapping[str, Any] | None = None,
    gpu_family: str = "default",
    provenance: Mapping[str, Any] | None = None,
    n_folds: int = 4,
    params: Mapping[str, Any] | None = None,
    tune: bool = False,
    tune_by: str = "kernel",
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train a predictor bundle (a JSON-ready dict) for one device.

    ``op_rows``: one row per measured kernel (``UscOpRow``; ``kernel_name`` may carry node ids);
    ``model_rows``: whole-model latencies of the same models (``config`` "gpu|float" for a
    GPU). Rows of other devices must be filtered out by the caller.

    With ``tune``, every setting of :data:`GBDT_GRID` is scored over ``n_folds`` family folds
    of these rows (the same folds that give the intervals) and the lowest wins (the first on a
    tie): ``tune_by="model"`` scores the leave-one-family-out whole-model error of the term
    fitted on those out-of-fold kernel times, ``"kernel"`` the out-of-fold kernel error itself
    (thousands of rows: less noisy than some 60 models). ``params`` still override every
    candidate. Inside an outer evaluation fold that choice never sees the test families.
    Off by default: on the USC data the tuned trees gave no better whole-model figures
    (benchmarks/results/accuracy_usc.md) and training takes about six times longer.
    """
    if not op_rows:
        raise PredictorError("no kernel measurements to train on")
    rows = _rows(op_rows, model_rows, gpu_family, rules)
    analytic = fit_analytic_or_none(op_rows, gpu_family, provenance)
    grid = GBDT_GRID if tune else {"default": {}}
    tick = Ticker(progress, len(grid) * n_folds + 1, "training")  # each fold, the final fit
    candidates = [
        _candidate(name, rows, {**GBDT_PARAMS, **over, **(params or {})}, n_folds, tick)
        for name, over in grid.items()
    ]
    if tune_by not in TUNE_RULES:
        raise PredictorError(f"tune_by must be one of {', '.join(TUNE_RULES)}, not {tune_by!r}")
    score = {
        c.name: c.model_mape_pct if tune_by == "model" else c.kernel_mape_pct(rows.y)
        for c in candidates
    }
    best = min(candidates, key=lambda c: score[c.name])  # first of equals: min is stable
    final = fit_kernels(rows.shapes, rows.y, best.params)
    whole = best.whole
    fit_parts = [mp for mp in rows.parts if mp.measured_ms and mp.shapes]
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "device": dict(device or {"id": "unknown"}),
        "gpu_family": gpu_family,
        "rules": rules,
        "tflat_version": __version__,
        "trained_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "provenance": dict(provenance or {}),
        "features": list(FEATURE_NAMES),
        "kinds": list(final.kinds),
        "analytic": {k: [float(c) for c in v] for k, v in final.analytic.items()},
        "analytic_columns": list(ANALYTIC_COLUMNS),
        "trees": final.trees.to_dict(),
        "gbdt_params": best.params,
        "gbdt_selection": {
            "chosen": best.name,
            "rule": TUNE_RULES[tune_by],
            "candidates": {
                c.name: {
                    "model_oof_mape_pct": c.model_mape_pct,
                    "kernel_oof_mape_pct": c.kernel_mape_pct(rows.y),
                }
                for c in candidates
            },
        },
        "kernel_interval": {
            "level": INTERVAL,
            "log_ratio": _kernel_interval(rows.shapes, rows.y, best.oof, final.kinds),
        },
        "whole_model": whole,
        "training_range": training_range(
            [proxy_shape(s, final.kinds) for s in rows.shapes], final.kinds, final.analytic
        ),
        "training_rows": {"kernels": len(rows.y), "models": len(fit_parts)},
        "metrics": {
            "kernel_oof_mape_pct": best.kernel_mape_pct(rows.y),
            **whole.pop("_metrics", {}),
        },
    }
    if analytic is not None:
        bundle["pricing"] = {"analytic": analytic.to_dict()}
    Predictor(bundle)  # refuse to return a bundle that does not load
    tick.finish()
    return bundle
