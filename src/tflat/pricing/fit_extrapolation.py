"""How far off a learned kind lands outside its training range: the extrapolation interval.

A regressor's own interval is calibrated on held-out families whose kernels mostly look like
the training ones. To see what happens beyond the trained range, the kernels at one end of a
size feature are held out (for each kind, the rows above its 90th or below its 10th percentile
of log2 FLOPs, output channels, output pixels or input channels), the kernel models are trained
on the rest, and the held-out kernels that the training range marks as outside
(:class:`~tflat.predict.ranges.TrainingRange`: past the margin) are priced. A kernel that is
not square (1x7, 7x1: the data's convolutions all are) is priced as the 1x1 convolution doing
the same work (:func:`tflat.predict.shapes.as_pointwise`); two more experiments say how far off
that lands: every square 3x3 (then 7x7) convolution held out and priced so by models trained
on the other sizes. The pooled log ratios measured / predicted of those kernels, over all six
USC phones and every experiment weighing the same, give the 80 % band of an extrapolated price
(the range's ``extrapolation``); :func:`nested_coverage` judges each experiment by the band of
the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tflat.predict.ranges import TrainingRange
from tflat.predict.rates import INTERVAL_LEVEL, calibrate

#: Features whose ends are held out, and the share of each kind's rows held out at one end.
HOLD_OUT_FEATURES = ("log2_flops_eff", "log2_cout", "log2_pixels_out", "log2_cin")
TAIL = 0.1
#: Square kernel sizes held out whole and priced as their 1x1 equivalent.
POINTWISE_KERNELS = (3, 7)


def extrapolation_residuals(
    op_rows: Sequence[Any], model_rows: Sequence[Any], gpu_family: str
) -> dict[str, np.ndarray]:
    """``{"feature/end": log ratios}`` of kernels priced outside the range they were trained
    on, on one device."""
    from tflat.predict.features import FEATURE_NAMES, feature_matrix
    from tflat.predict.ranges import compute_ranges
    from tflat.predict.shapes import as_pointwise
    from tflat.predict.train import GBDT_PARAMS, _rows, fit_kernels

    rows = _rows(op_rows, model_rows, gpu_family, "tflite_gpu")
    kinds_all = sorted({s.kind for s in rows.shapes})
    x = feature_matrix(rows.shapes, kinds_all, np.ones(len(rows.shapes)))
    kind = np.array([s.kind for s in rows.shapes])
    out: dict[str, np.ndarray] = {}
    for feature in HOLD_OUT_FEATURES:
        col = x[:, FEATURE_NAMES.index(feature)]
        for end in ("high", "low"):
            test = np.zeros(len(col), dtype=bool)
            for k in kinds_all:
                sel = kind == k
                q = np.quantile(col[sel], 1 - TAIL if end == "high" else TAIL)
                test |= sel & ((col > q) if end == "high" else (col < q))
            train = ~test
            if test.sum() < 10 or train.sum() < 50:
                continue
            ranges = TrainingRange.from_dict(
                {"kinds": compute_ranges(x[train], kind[train].tolist(), FEATURE_NAMES)},
                FEATURE_NAMES,
            )
            outside = np.array(
                [i for i in np.where(test)[0] if ranges.out_of_range(kind[i], x[i]) is not None]
            )
            if outside.size < 5:
                continue
            km = fit_kernels([rows.shapes[i] for i in np.where(train)[0]], rows.y[train],
                              GBDT_PARAMS, export=False)  # fmt: skip
            pred = km.predict([rows.shapes[i] for i in outside])
            out[f"{feature}/{end}"] = np.log(rows.y[outside] / np.maximum(pred, 1e-6))
    for size in POINTWISE_KERNELS:
        held = np.array(
            [s.kind == "conv2d" and s.kernel == size and not s.winograd and not s.kernel_taps
             for s in rows.shapes]
        )  # fmt: skip
        if held.sum() < 5:
            continue
        rest = np.where(~held)[0]
        km = fit_kernels([rows.shapes[i] for i in rest], rows.y[rest], GBDT_PARAMS,
                          export=False)  # fmt: skip
        pred = km.predict([as_pointwise(rows.shapes[i]) for i in np.where(held)[0]])
        out[f"kernel {size}x{size} as 1x1"] = np.log(rows.y[held] / np.maximum(pred, 1e-6))
    return out


def nested_coverage(
    residuals: Mapping[tuple[str, str], np.ndarray], level: float = INTERVAL_LEVEL
) -> dict[str, dict[str, float]]:
    """Per (device, experiment): coverage of the band calibrated on the other experiments
    (every device), and the error of the extrapolated price."""
    out: dict[str, dict[str, float]] = {}
    for key, r in residuals.items():
        others = {k: v for k, v in residuals.items() if k[1] != key[1]}
        if not others:
            continue
        lo, hi = calibrate(others, level)
        out[f"{key[0]}/{key[1]}"] = {
            "kernels": float(r.size),
            "coverage_pct": float(np.mean((r >= lo) & (r <= hi)) * 100),
            "mape_pct": float(np.mean(np.abs(np.exp(-r) - 1)) * 100),
            "median_log_ratio": float(np.median(r)),
        }
    return out
