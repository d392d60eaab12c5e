"""The whole-model term: from per-kernel times to the latency of a whole inference.

Kernels profiled one by one do not add up to a model's time: the data does not list every op
(standalone element-wise ops, pads, reshapes), each inference has a fixed overhead, and small
vector kernels (fully connected, mean) and concatenations cost more in a full graph than alone.
The term is linear and non-negative in a few quantities that exist both for a USC model (from
its kernel rows and the gaps in their node ids) and for a real graph (from its partition):

    total = sum_f coef[f] * feature[f]

Candidate designs (:data:`DESIGNS`, and their mean) are fitted; the one with the lowest
family-held-out error
*on the training rows it is given* is kept (so, inside an outer evaluation fold, the choice
never sees the test families: nested selection).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Kernel groups the term may price apart; other listed kinds are "main".
GROUP_OF_KIND = {"fully_connected": "vector", "mean": "vector", "concat": "concat"}
#: Designs: name -> features, each chosen (or averaged into "ensemble") per device by
#: leave-one-family-out error. Per-group designs (separate counts or scales for vector kernels
#: and concatenations) were tried and were no better (benchmarks/results/accuracy_usc.md).
DESIGNS: dict[str, tuple[str, ...]] = {
    "base": ("listed_kernel_sum_ms", "listed_kernels", "unlisted_ops", "unlisted_mb", "one"),
    "pads": (
        "listed_kernel_sum_ms",
        "listed_kernels",
        "unlisted_ops",
        "unlisted_mb",
        "merged_pads",
        "one",
    ),
    "weights": (
        "listed_kernel_sum_ms",
        "listed_kernels",
        "unlisted_ops",
        "unlisted_mb",
        "listed_weight_mb",
        "one",
    ),
    "weights_floor": (
        "listed_kernel_sum_ms",
        "listed_kernels",
        "unlisted_ops",
        "unlisted_mb",
        "listed_weight_mb",
        "listed_floor_ms",
        "one",
    ),
}
#: A listed kernel shorter than this alone costs more in a whole inference: the feature
#: ``listed_floor_ms`` is sum(max(FLOOR_MS - raw, 0)) over listed kernels. The value was
#: picked among 0.01 / 0.02 / 0.05 ms on the USC family folds (see accuracy_usc.md).
FLOOR_MS = 0.05
#: A design must beat the ones before it by this much (relative MAPE) to be chosen; 0: the
#: lowest error wins (a 3 % margin was worse on the USC folds, see accuracy_usc.md).
_MIN_GAIN = 0.0
#: Half-width (log) of the whole-model band when no model could be held out: x0.8 to x1.25.
_NO_DATA_HALF = math.log(1.25)


def kernel_group(kind: str) -> str:
    return GROUP_OF_KIND.get(kind, "main")


def model_features(
    kinds: Sequence[str],
    raw_ms: Sequence[float] | np.ndarray,
    unlisted_ops: int,
    unlisted_mb: float,
    merged_pads: int = 0,
    weight_mb: Sequence[float] | np.ndarray | None = None,
) -> dict[str, float]:
    """Every quantity any design uses, from the listed kernels' kinds, raw times and weight
    sizes (MB, fp16 as the GPU holds them)."""
    raw = np.asarray(raw_ms, dtype=float)
    weights = np.zeros(raw.size) if weight_mb is None else np.asarray(weight_mb, dtype=float)
    groups = np.array([kernel_group(k) for k in kinds])
    out = {
        "listed_kernel_sum_ms": float(raw.sum()),
        "listed_kernels": float(len(raw)),
        "unlisted_ops": float(unlisted_ops),
        "unlisted_mb": float(unlisted_mb),
        "merged_pads": float(merged_pads),
        # Profiled alone, a kernel finds its weights in the GPU's caches (the same op runs
        # again and again); in a whole inference every kernel's weights come from DRAM.
        "listed_weight_mb": float(weights.sum()),
        "listed_floor_ms": float(np.maximum(FLOOR_MS - raw, 0.0).sum()),
        "one": 1.0,
    }
    for g in ("main", "vector", "concat"):
        sel = groups == g
        out[f"{g}_kernel_sum_ms"] = float(raw[sel].sum()) if raw.size else 0.0
        out[f"{g}_kernels"] = float(sel.sum())
    return out


@dataclass(frozen=True)
class WholeModelTerm:
    """A fitted design: ``coef`` by feature name, and the interval of a total (log ratio)."""

    design: str
    coef: Mapping[str, float]
    log_interval: tuple[float, float]

    @property
    def overhead_ms(self) -> float:
        return float(self.coef.get("one", 0.0))

    def listed_kernel_ms(self, kind: str, raw_ms: float, weight_mb: float = 0.0) -> float:
        """What one listed kernel costs inside a whole inference (its share of the total)."""
        g = kernel_group(kind)
        scale = self.coef.get("listed_kernel_sum_ms", 0.0) + self.coef.get(
            f"{g}_kernel_sum_ms", 0.0
        )
        per_kernel = self.coef.get("listed_kernels", 0.0) + self.coef.get(f"{g}_kernels", 0.0)
        return (
            scale * raw_ms
            + per_kernel
            + self.coef.get("listed_weight_mb", 0.0) * weight_mb
            + self.coef.get("listed_floor_ms", 0.0) * max(FLOOR_MS - raw_ms, 0.0)
        )

    @property
    def merged_pad_ms(self) -> float:
        """What a PAD merged into a conv's padding adds to that kernel in a whole inference."""
        return float(self.coef.get("merged_pads", 0.0))

    def unlisted_kernel_ms(self, mb_written: float) -> float:
        return self.coef.get("unlisted_ops", 0.0) + self.coef.get("unlisted_mb", 0.0) * mb_written

    def total(self, features: Mapping[str, float]) -> float:
        return float(sum(c * features.get(name, 0.0) for name, c in self.coef.items()))

    @classmethod
    def from_bundle(cls, wm: Mapping[str, Any]) -> WholeModelTerm:
        lo, hi = float(wm["log_interval"][0]), float(wm["log_interval"][1])
        if "coef" in wm:
            coef = {str(k): float(v) for k, v in wm["coef"].items()}
            return cls(design=str(wm.get("design", "custom")), coef=coef, log_interval=(lo, hi))
        # format 1: the "base" design under named keys
        coef = {
            "listed_kernel_sum_ms": float(wm["listed_scale"]),
            "listed_kernels": float(wm["listed_ms_per_kernel"]),
            "unlisted_ops": float(wm["unlisted_ms_per_kernel"]),
            "unlisted_mb": float(wm["unlisted_ms_per_mb"]),
            "one": float(wm["overhead_ms"]),
        }
        return cls(design="base", coef=coef, log_interval=(lo, hi))


def nnls_relative(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error: min sum(((a @ c) - y) / y)^2."""
    from scipy.optimize import nnls

    w = 1.0 / np.maximum(y, 1e-6)
    coef, _ = nnls(a * w[:, None], y * w)
    return np.asarray(coef, dtype=float)


def _family_folds(families: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    fam = np.asarray(families)
    return [(np.where(fam != f)[0], np.where(fam == f)[0]) for f in sorted(set(families))]


def fit_whole_model(
    features: Sequence[Mapping[str, float]],
    measured_ms: Sequence[float],
    families: Sequence[str],
    interval: float = 0.8,
    measured_features: Sequence[Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """Choose a design by leave-one-family-out error, fit it on all rows, and give the
    interval of a total from the chosen design's held-out residuals (conformal).

    ``features`` come from predicted (out-of-fold) kernel times: what the term is applied to.
    With ``measured_features`` (the same quantities from the measured kernel times) the fit
    may also be made on those: the relation between measured kernels and a measured total,
    free of the kernel models' errors. Which source fits better is chosen like the design,
    always scored by applying the fit to predicted features of held-out families. One more
    candidate, ``ensemble``, is the mean of all the others (coefficients averaged: still one
    non-negative linear term), scored the same way.
    """
    y = np.asarray(measured_ms, dtype=float)
    if y.size == 0:
        return {
            "design": "base",
            "fitted_on": "predicted",
            "coef": {"listed_kernel_sum_ms": 1.0},
            "log_interval": [-_NO_DATA_HALF, _NO_DATA_HALF],
            "features": list(DESIGNS["base"]),
        }
    # Held-out scoring needs three families and, in every fold, at least as many rows as the
    # widest design has terms; with fewer the fit and its band are in-sample (see below).
    fam_sizes = list(Counter(families).values())
    widest = max(len(cols) for cols in DESIGNS.values())
    enough = len(fam_sizes) >= 3 and len(families) - max(fam_sizes) >= widest
    sources = {"predicted": features}
    if measured_features is not None and enough:
        sources["measured"] = measured_features
    all_cols = list(dict.fromkeys(c for cols in DESIGNS.values() for c in cols))
    a_pred_all = np.array([[f.get(c, 0.0) for c in all_cols] for f in features])
    scores: dict[str, float] = {}
    held_out: dict[str, np.ndarray] = {}
    full_coef: dict[str, np.ndarray] = {}
    for name, cols in DESIGNS.items():
        pick = [all_cols.index(c) for c in cols]
        for source, feats in sources.items():
            a_fit = np.array([[f[c] for c in cols] for f in feats])
            key = f"{name}/{source}"
            coef = np.zeros(len(all_cols))
            coef[pick] = nnls_relative(a_fit, y)
            full_coef[key] = coef
            pred = a_pred_all @ coef if not enough else _cv_predictions(
                a_fit, a_pred_all[:, pick], y, families
            )  # fmt: skip
            if np.isnan(pred).all():
                continue
            held_out[key] = pred
    if len(held_out) > 1:
        held_out["ensemble"] = np.mean(list(held_out.values()), axis=0)
        full_coef["ensemble"] = np.mean([full_coef[k] for k in held_out if k != "ensemble"], axis=0)
    residuals: dict[str, np.ndarray] = {}
    for key, pred in held_out.items():
        ok = ~np.isnan(pred)
        res = np.log(y[ok] / np.maximum(pred[ok], 1e-6))
        residuals[key] = res
        scores[key] = float(np.mean(np.abs(np.expm1(-res))) * 100)
    best = next(iter(scores))
    for key in scores:
        if scores[key] < scores[best] * (1 - _MIN_GAIN):
            best = key
    design, _, source = best.partition("/")
    coef = full_coef[best]
    # Split conformal on the held-out families' residuals: a symmetric band in log space with
    # the finite-sample correction (n + 1) / n, so that a family the fit leans the wrong way
    # on still gets the nominal coverage.
    res = residuals[best]
    level = min(1.0, interval * (1 + 1 / max(res.size, 1)))
    half = float(np.quantile(np.abs(res), level))
    if not enough:
        # In-sample residuals of a fit on a handful of models say little about a new one:
        # the band is never narrower than the one given with no whole-model rows at all.
        half = max(half, _NO_DATA_HALF)
    used = [c for c, v in zip(all_cols, coef, strict=True) if v != 0.0 or c in DESIGNS["base"]]
    return {
        "design": design,
        "fitted_on": source or "both",
        "selection": "held-out" if enough else "in-sample",
        "features": used,
        "coef": {c: float(v) for c, v in zip(all_cols, coef, strict=True) if c in used},
        "log_interval": [-half, half],
        "selection_mape_pct": scores,
        "defined_on": (
            "listed kernels = kernels of the per-kernel kinds (vector: fully_connected, mean; "
            "concat; main: the rest); unlisted = other non-free kernels (USC: node ids no "
            "kernel name mentions, a run of them one kernel, one before a spatial conv or "
            "pool a merged pad), MB = fp16 bytes they write; listed_weight_mb = fp16 "
            f"weights of the listed kernels; listed_floor_ms = sum max({FLOOR_MS} - raw, 0)"
        ),
        "_metrics": {"model_oof_mape_pct": scores[best]},
    }


def _cv_predictions(
    a_fit: np.ndarray, a_pred: np.ndarray, y: np.ndarray, families: Sequence[str]
) -> np.ndarray:
    """Leave-one-family-out totals: fitted on ``a_fit`` rows of the other families, applied
    to the held-out family's ``a_pred`` rows (NaN where a fold has too few rows)."""
    out = np.full(len(y), np.nan)
    for train_idx, test_idx in _family_folds(families):
        if train_idx.size < a_fit.shape[1]:
            continue
        c = nnls_relative(a_fit[train_idx], y[train_idx])
        out[test_idx] = a_pred[test_idx] @ c
    return out
