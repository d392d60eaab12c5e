"""Train a device predictor from per-kernel and whole-model measurements.

``fit_device`` is the one entry point: USC public data for the shipped phones, or a device's
own benchmarks (host-cpu calibration) given as the same row types. Steps, each fitted only on
the rows it is given:

1. analytic term per kernel kind: non-negative ``launch + ms/GFLOP * GFLOP + ms/MB * MB``,
   fitted on relative error (so small kernels count as much as big ones);
2. one boosted-tree model on ``log(measured / analytic)`` over all kinds (kind is a feature),
   so the trees correct the analytic term but never replace it: outside the data the
   correction is bounded and the analytic term extrapolates;
3. out-of-fold predictions over architecture families give calibrated kernel intervals
   (residual quantiles in log space, per kind) and honest kernel sums for step 4;
4. whole-model term: non-negative least squares of measured whole-model latency on
   (out-of-fold kernel sum, number of kernels, number of unlisted ops, MB those ops write, 1),
   on relative error; its family-held-out residuals give the interval of a total.
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
    FEATURE_NAMES,
    KernelShape,
    analytic_inputs,
    feature_matrix,
    shape_from_usc,
)
from tflat.predict.predictor import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, Predictor
from tflat.predict.trees import fit_gbdt

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
INTERVAL = 0.8
WHOLE_MODEL_FEATURES = (
    "listed_kernel_sum_ms",
    "listed_kernels",
    "unlisted_ops",
    "unlisted_mb",
    "one",
)


@dataclass(frozen=True)
class ModelParts:
    """One whole model as the training sees it: its listed kernels and what the data omits."""

    model: str
    family: str
    shapes: tuple[KernelShape, ...]
    unlisted_ops: int
    unlisted_mb: float
    measured_ms: float | None


_NODE = re.compile(r"_(\d+)(?=_linked_|$)")


def _nodes(kernel_name: str) -> list[int]:
    return [int(n) for n in _NODE.findall(kernel_name)]


def model_parts(
    op_rows: Sequence[UscOpRow],
    model_rows: Sequence[UscModelRow],
    gpu_family: str,
    rules: str = "tflite_gpu",
) -> list[ModelParts]:
    """Group per-kernel rows by model; count the graph nodes no kernel name mentions.

    Kernel names carry the delegate's node ids ("convolution_2d_3_linked_:_relu_4"): ids below
    the largest that no kernel mentions are ops the data does not list (standalone element-wise,
    merged pads, reshapes). Their bytes are taken as the output of the listed kernel before
    them, the tensor such an op works on. The same quantities exist for a real graph
    (:meth:`Predictor.predict_graph`): kernels of kinds the per-kernel models do not cover.
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
        unlisted_ops, unlisted_mb = 0, 0.0
        if seen:
            main_nodes.sort(key=lambda p: p[0])
            for node in range(max(seen) + 1):
                if node in seen:
                    continue
                unlisted_ops += 1
                before = [s for n, s in main_nodes if n < node]
                ref = before[-1] if before else (main_nodes[0][1] if main_nodes else None)
                if ref is not None:
                    unlisted_mb += ref.h_out * ref.w_out * 4 * ref.slices_out * 2 / 1e6
        family = families.get(model) or (rows[0].family if rows else model)
        out.append(
            ModelParts(
                model=model,
                family=family,
                shapes=tuple(shapes),
                unlisted_ops=unlisted_ops,
                unlisted_mb=unlisted_mb,
                measured_ms=measured.get(model),
            )
        )
    return out


def _nnls_relative(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error: min sum(((a @ c) - y) / y)^2."""
    from scipy.optimize import nnls

    w = 1.0 / np.maximum(y, 1e-6)
    coef, _ = nnls(a * w[:, None], y * w)
    return np.asarray(coef, dtype=float)


def _group_folds(groups: Sequence[str], n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds with whole families, balanced by row count (deterministic)."""
    g = np.asarray(groups)
    counts: dict[str, int] = defaultdict(int)
    for x in g:
        counts[str(x)] += 1
    order = sorted(counts, key=lambda k: (-counts[k], k))
    k = max(2, min(n_folds, len(order)))
    load = [0] * k
    fold_of: dict[str, int] = {}
    for fam in order:
        i = int(np.argmin(load))
        fold_of[fam] = i
        load[i] += counts[fam]
    folds = np.array([fold_of[str(x)] for x in g])
    return [(np.where(folds != i)[0], np.where(folds == i)[0]) for i in range(k)]


@dataclass
class _KernelModel:
    kinds: tuple[str, ...]
    analytic: dict[str, np.ndarray]
    trees: Any

    def predict(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        analytic = _analytic(self.analytic, shapes)
        x = feature_matrix(shapes, self.kinds, analytic)
        return np.asarray(analytic * np.exp(self.trees.predict(x)))


def _analytic(coefs: Mapping[str, np.ndarray], shapes: Sequence[KernelShape]) -> np.ndarray:
    cols = analytic_inputs(shapes)
    fallback = next(iter(coefs.values()))
    return np.array(
        [max(float(cols[i] @ coefs.get(s.kind, fallback)), 1e-4) for i, s in enumerate(shapes)]
    )


def _fit_kernels(
    shapes: Sequence[KernelShape], y_ms: np.ndarray, params: Mapping[str, Any]
) -> _KernelModel:
    kinds = tuple(sorted({s.kind for s in shapes}))
    cols = analytic_inputs(shapes)
    analytic: dict[str, np.ndarray] = {}
    kind_arr = np.array([s.kind for s in shapes])
    for kind in kinds:
        sel = kind_arr == kind
        coef = _nnls_relative(cols[sel], y_ms[sel])
        if coef[0] <= 0:
            coef[0] = float(np.quantile(y_ms[sel], 0.05)) * 0.5
        analytic[kind] = coef
    base = _analytic(analytic, shapes)
    x = feature_matrix(shapes, kinds, base)
    trees = fit_gbdt(x, np.log(y_ms / base), params)
    return _KernelModel(kinds=kinds, analytic=analytic, trees=trees)


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
) -> dict[str, Any]:
    """Train a predictor bundle (a JSON-ready dict) for one device.

    ``op_rows``: one row per measured kernel (``UscOpRow``; ``kernel_name`` may carry node ids);
    ``model_rows``: whole-model latencies of the same models (``config`` "gpu|float" for a
    GPU). Rows of other devices must be filtered out by the caller.
    """
    if not op_rows:
        raise PredictorError("no kernel measurements to train on")
    p = dict(GBDT_PARAMS, **(params or {}))
    parts = model_parts(op_rows, model_rows, gpu_family, rules)
    shapes = [s for mp in parts for s in mp.shapes]
    y = np.array(
        [
            r.latency_ms
            for mp in parts
            for r in sorted((r for r in op_rows if r.model == mp.model), key=lambda r: r.position)
        ]
    )
    if len(y) != len(shapes):
        raise PredictorError("kernel rows and shapes do not line up")
    y = np.maximum(y, 1e-4)
    row_family = [mp.family for mp in parts for _ in mp.shapes]
    row_model = [mp.model for mp in parts for _ in mp.shapes]

    # Out-of-fold kernel predictions over families: intervals and honest kernel sums.
    oof = np.full(len(y), np.nan)
    n_families = len(set(row_family))
    if n_families >= 2:
        for train_idx, test_idx in _group_folds(row_family, n_folds):
            km = _fit_kernels([shapes[i] for i in train_idx], y[train_idx], p)
            oof[test_idx] = km.predict([shapes[i] for i in test_idx])
    final = _fit_kernels(shapes, y, p)
    if np.isnan(oof).any():
        oof = np.where(np.isnan(oof), final.predict(shapes), oof)

    log_res = np.log(y / oof)
    lo_q, hi_q = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    kind_arr = np.array([s.kind for s in shapes])
    kernel_interval: dict[str, list[float]] = {}
    for kind in final.kinds:
        r = log_res[kind_arr == kind]
        r = r if r.size >= 10 else log_res
        kernel_interval[kind] = [float(np.quantile(r, lo_q)), float(np.quantile(r, hi_q))]

    # Whole-model term on out-of-fold kernel sums.
    sums: dict[str, float] = defaultdict(float)
    for m, v in zip(row_model, oof, strict=True):
        sums[m] += float(v)
    fit_parts = [mp for mp in parts if mp.measured_ms and mp.shapes]
    whole = _fit_whole_model(fit_parts, sums)

    kernel_mape = float(np.mean(np.abs(oof - y) / y) * 100)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "device": dict(device or {"id": "unknown"}),
        "gpu_family": gpu_family,
        "rules": rules,
        "tflat_version": _version(),
        "trained_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "provenance": dict(provenance or {}),
        "features": list(FEATURE_NAMES),
        "kinds": list(final.kinds),
        "analytic": {
            "columns": ["launch_ms", "ms_per_gflop_executed", "ms_per_mb_moved"],
            **{k: [float(c) for c in v] for k, v in final.analytic.items()},
        },
        "trees": final.trees.to_dict(),
        "gbdt_params": p,
        "kernel_interval": {"level": INTERVAL, "log_ratio": kernel_interval},
        "whole_model": whole,
        "training_rows": {"kernels": len(y), "models": len(fit_parts)},
        "metrics": {"kernel_oof_mape_pct": kernel_mape, **whole.pop("_metrics", {})},
    }
    bundle["analytic"].pop("columns")
    bundle["analytic_columns"] = ["launch_ms", "ms_per_gflop_executed", "ms_per_mb_moved"]
    Predictor(bundle)  # refuse to return a bundle that does not load
    return bundle


def _whole_design(parts: Sequence[ModelParts], sums: Mapping[str, float]) -> np.ndarray:
    return np.array(
        [[sums[mp.model], len(mp.shapes), mp.unlisted_ops, mp.unlisted_mb, 1.0] for mp in parts]
    )


def _fit_whole_model(parts: Sequence[ModelParts], sums: Mapping[str, float]) -> dict[str, Any]:
    if not parts:
        return {
            "listed_scale": 1.0,
            "listed_ms_per_kernel": 0.0,
            "unlisted_ms_per_kernel": 0.0,
            "unlisted_ms_per_mb": 0.0,
            "overhead_ms": 0.0,
            "log_interval": [math.log(0.8), math.log(1.25)],
            "features": list(WHOLE_MODEL_FEATURES),
        }
    a = _whole_design(parts, sums)
    y = np.array([float(mp.measured_ms or 0.0) for mp in parts])
    coef = _nnls_relative(a, y)
    # Family-held-out residuals of the whole-model fit give the interval of a total.
    fams = [mp.family for mp in parts]
    res = np.full(len(y), np.nan)
    if len(set(fams)) >= 3:
        for train_idx, test_idx in _group_folds(fams, len(set(fams))):
            c = _nnls_relative(a[train_idx], y[train_idx])
            res[test_idx] = np.log(y[test_idx] / np.maximum(a[test_idx] @ c, 1e-6))
    else:
        res = np.log(y / np.maximum(a @ coef, 1e-6))
    lo_q, hi_q = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    return {
        "listed_scale": float(coef[0]),
        "listed_ms_per_kernel": float(coef[1]),
        "unlisted_ms_per_kernel": float(coef[2]),
        "unlisted_ms_per_mb": float(coef[3]),
        "overhead_ms": float(coef[4]),
        "log_interval": [float(np.quantile(res, lo_q)), float(np.quantile(res, hi_q))],
        "features": list(WHOLE_MODEL_FEATURES),
        "defined_on": (
            "listed kernels = kernels of the per-kernel kinds; unlisted = other non-free "
            "kernels (USC: node ids no kernel name mentions), MB = fp16 bytes they write"
        ),
        "_metrics": {"model_oof_mape_pct": float(np.mean(np.abs(np.expm1(-res))) * 100)},
    }


def _version() -> str:
    from tflat import __version__

    return __version__
