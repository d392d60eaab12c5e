"""The analytic interval of every device, calibrated on kinds left out across all of them.

:func:`tflat.predict.rates.leave_kind_out` prices each measured kind of a device as if nobody
had measured it. Four kinds per device are too few to say how far off a fifth, unseen kind may
land, so the interval is calibrated over the held-out kinds of all six USC phones together,
every (device, kind) weighing the same. Its level is chosen honestly: each kind is judged by
the band the *other* kinds (on every device) give, and the narrowest level of :data:`LEVELS`
whose mean coverage reaches 80 % is kept (:func:`global_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tflat.predict.rates import INTERVAL_LEVEL, Interval, calibrate

#: Quantile levels tried for the global analytic interval, narrowest first.
LEVELS = (0.80, 0.85, 0.90, 0.95, 0.98)


def nested_coverage(
    residuals: Mapping[tuple[str, str], np.ndarray], level: float
) -> dict[tuple[str, str], dict[str, float]]:
    """Per (device, kind): the share of its kernels inside the interval calibrated on the
    *other kinds* (of every device) at ``level``, and its error. No kind's own residuals,
    on any device, set the interval it is judged by."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key, r in residuals.items():
        others = {k: v for k, v in residuals.items() if k[1] != key[1]}
        if not others:
            continue
        lo, hi = calibrate(others, level)
        out[key] = {
            "kernels": float(r.size),
            "coverage_pct": float(np.mean((r >= lo) & (r <= hi)) * 100),
            "mape_pct": float(np.mean(np.abs(np.exp(-r) - 1)) * 100),
            "median_log_ratio": float(np.median(r)),
            "interval_ratio": float(math.exp(hi - lo)),
        }
    return out


def mean_coverage(nested: Mapping[Any, Mapping[str, float]]) -> float:
    """Coverage over (device, kind) sets, every set weighing the same."""
    return float(np.mean([v["coverage_pct"] for v in nested.values()]))


def global_interval(
    residuals: Mapping[tuple[str, str], np.ndarray],
) -> tuple[Interval, float, dict[str, Any]]:
    """The analytic interval for every device: the narrowest level of :data:`LEVELS` whose
    nested coverage (each kind judged by the other kinds' band) reaches 80 %, the band at
    that level over all held-out kinds of all devices, and the record of the search."""
    tried: dict[str, float] = {}
    chosen = LEVELS[-1]
    for level in LEVELS:
        cov = mean_coverage(nested_coverage(residuals, level))
        tried[f"{level:.2f}"] = cov
        if cov >= INTERVAL_LEVEL * 100:
            chosen = level
            break
    record = {
        "levels_tried": tried,
        "level": chosen,
        "held_out": {f"{d}/{k}": v for (d, k), v in nested_coverage(residuals, chosen).items()},
    }
    return calibrate(residuals, chosen), chosen, record
