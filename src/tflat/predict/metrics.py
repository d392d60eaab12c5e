"""Accuracy figures of predictions against measurements (all errors relative, in %)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    # average ranks of ties
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return np.asarray(sums[inv] / counts[inv])


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def accuracy(
    measured: Sequence[float] | np.ndarray,
    predicted: Sequence[float] | np.ndarray,
    low: Sequence[float] | np.ndarray | None = None,
    high: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """MAPE, share within ±5 % / ±10 %, Spearman and (with bounds) interval coverage."""
    m = np.asarray(measured, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if m.size == 0:
        return {"n": 0}
    err = np.abs(p - m) / m
    out: dict[str, Any] = {
        "n": int(m.size),
        "mape_pct": float(err.mean() * 100),
        "median_ape_pct": float(np.median(err) * 100),
        "within_5_pct": float((err <= 0.05).mean() * 100),
        "within_10_pct": float((err <= 0.10).mean() * 100),
        "spearman": spearman(m, p),
    }
    if low is not None and high is not None:
        lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        out["interval_coverage_pct"] = float(((m >= lo) & (m <= hi)).mean() * 100)
    return out
