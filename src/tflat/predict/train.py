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
    shape_from_usc,
)
from tflat.predict.predictor import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, Predictor, proxy_shape
from tflat.predict.trees import fit_gbdt
from tflat.predict.whole import fit_whole_model, model_features, nnls_relative

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
        unlisted_ops, unlisted_mb, merged_pads = 0, 0.0, 0
        if seen:
            main_nodes.sort(key=lambda p: p[0])
            main_at = dict(main_nodes)
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


def _group_folds(
    groups: Sequence[str], n_folds: int, tags: Sequence[str] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds with whole families, balanced by row count (deterministic).

    With ``tags`` (one per row, e.g. the kernel kind), a family holding a rare tag (one that
    at most ``n_folds`` families have) is put in a fold without that tag when there is one:
    otherwise every family with grouped convolutions (RegNet, ResNeXt) may land in one fold,
    and that fold's model has never seen the kind it must predict.
    """
    g = np.asarray(groups)
    counts: dict[str, int] = defaultdict(int)
    for x in g:
        counts[str(x)] += 1
    fam_tags: dict[str, set[str]] = defaultdict(set)
    if tags is not None:
        for x, t in zip(g, tags, strict=True):
            fam_tags[str(x)].add(str(t))
    k = max(2, min(n_folds, len(counts)))
    tag_families: dict[str, int] = defaultdict(int)
    for ts in fam_tags.values():
        for t in ts:
            tag_families[t] += 1
    rare = {t for t, n in tag_families.items() if 1 < n <= k}
    order = sorted(counts, key=lambda f: (-len(fam_tags[f] & rare), -counts[f], f))
    load = [0] * k
    fold_tags: list[set[str]] = [set() for _ in range(k)]
    fold_of: dict[str, int] = {}
    for fam in order:
        mine = fam_tags[fam] & rare
        free = [i for i in range(k) if not (fold_tags[i] & mine)] or list(range(k))
        i = min(free, key=lambda j: (load[j], j))
        fold_of[fam] = i
        load[i] += counts[fam]
        fold_tags[i] |= mine
    folds = np.array([fold_of[str(x)] for x in g])
    return [(np.where(folds != i)[0], np.where(folds == i)[0]) for i in range(k)]


@dataclass
class _KernelModel:
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


def _fit_kernels(
    shapes: Sequence[KernelShape], y_ms: np.ndarray, params: Mapping[str, Any]
) -> _KernelModel:
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
        row_kind = [s.kind for s in shapes]
        for train_idx, test_idx in _group_folds(row_family, n_folds, row_kind):
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

    # Whole-model term on out-of-fold kernel times.
    oof_by_model: dict[str, list[float]] = defaultdict(list)
    for m, v in zip(row_model, oof, strict=True):
        oof_by_model[m].append(float(v))
    fit_parts = [mp for mp in parts if mp.measured_ms and mp.shapes]
    y_by_model: dict[str, list[float]] = defaultdict(list)
    for m, v in zip(row_model, y, strict=True):
        y_by_model[m].append(float(v))
    whole = fit_whole_model(
        [parts_features(mp, oof_by_model[mp.model]) for mp in fit_parts],
        [float(mp.measured_ms or 0.0) for mp in fit_parts],
        [mp.family for mp in fit_parts],
        INTERVAL,
        measured_features=[parts_features(mp, y_by_model[mp.model]) for mp in fit_parts],
    )

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
            "columns": list(ANALYTIC_COLUMNS),
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
    bundle["analytic_columns"] = list(ANALYTIC_COLUMNS)
    Predictor(bundle)  # refuse to return a bundle that does not load
    return bundle


def _version() -> str:
    from tflat import __version__

    return __version__
