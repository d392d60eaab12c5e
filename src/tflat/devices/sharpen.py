"""Sharpening a calibrated device with a few whole-model timings.

A calibrated ``host-cpu`` or ``android:SERIAL`` predictor prices single ops measured one by
one; a whole network runs on colder caches, other clocks and another thread schedule. A few
whole-model timings of that very device correct it: one factor on the whole-model term (the
kernels' share of a total; the invoke overhead of a CPU predictor stays), the median of the
measured / predicted ratios, so three timings are enough and a stray one cannot pull it. Its
leave-one-timing-out error is kept in the provenance and widens a GPU bundle's interval of a
total. The sharpened predictor is saved in the database the calibration lives in, so
``-d ID`` uses it from then on.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from tflat.errors import TflatError

log = logging.getLogger(__name__)


def _ratio(measured: np.ndarray, predicted: np.ndarray, fixed: np.ndarray) -> float:
    """The median of (measured - fixed) / (predicted - fixed): the factor on the variable part."""
    var_meas = np.maximum(measured - fixed, 0.05 * measured)
    var_pred = np.maximum(predicted - fixed, 1e-9)
    return float(np.exp(np.median(np.log(var_meas / var_pred))))


def sharpen_factor(
    measured_ms: np.ndarray, predicted_ms: np.ndarray, fixed_ms: np.ndarray
) -> tuple[float, np.ndarray]:
    """The factor and the leave-one-out log residuals of the corrected totals."""
    factor = _ratio(measured_ms, predicted_ms, fixed_ms)
    loo = np.zeros(len(measured_ms))
    for i in range(len(measured_ms)):
        keep = np.arange(len(measured_ms)) != i
        f = _ratio(measured_ms[keep], predicted_ms[keep], fixed_ms[keep])
        corrected = fixed_ms[i] + f * (predicted_ms[i] - fixed_ms[i])
        loo[i] = math.log(measured_ms[i] / max(corrected, 1e-9))
    return factor, loo


def sharpened_bundle(
    bundle: dict[str, Any], factor: float, loo: np.ndarray, timings: list[dict[str, Any]]
) -> dict[str, Any]:
    """``bundle`` with its whole-model term scaled by ``factor`` (GPU bundles: every
    coefficient but the overhead; CPU bundles: the kernel scales and per-kernel term)."""
    from tflat.cpu.predictor import BUNDLE_FORMAT as CPU_FORMAT
    from tflat.devices.transfer import conformal_half_width

    out = copy.deepcopy(bundle)
    wm = out["whole_model"]
    if out.get("format") == CPU_FORMAT:
        for key in ("scale", "cache_scale", "per_kernel_ms", "int8_scale"):
            if key in wm:
                wm[key] = float(wm[key]) * factor
    else:
        wm["coef"] = {k: (v if k == "one" else float(v) * factor) for k, v in wm["coef"].items()}
        lo, hi = (float(v) for v in wm["log_interval"])
        half = conformal_half_width(loo)
        wm["log_interval"] = [min(lo, -half), max(hi, half)]
    prov = out.setdefault("provenance", {})
    prov["sharpened"] = {
        "method": "whole-model term scaled by the median measured / predicted ratio of the "
        "kernels' share of each timed model",
        "factor": factor,
        "timings": timings,
        "loo_mape_pct": float(np.mean(np.abs(np.expm1(-loo))) * 100) if len(loo) else None,
    }
    return out


def sharpen_device(device: str, timings_csv: Path, db_url: str | None) -> Any:
    """The calibrated predictor of ``device`` corrected by the timings (an
    :class:`~tflat.devices.add.AddResult`; :func:`save_sharpened` stores it)."""
    from tflat.devices.add import AddResult
    from tflat.devices.timings import read_timings
    from tflat.model import read_model
    from tflat.pricing.predictors import load_predictor, predictor_from_bundle

    rows = read_timings(timings_csv)
    predictor = load_predictor(device, db_url)
    from tflat.cpu.predictor import CpuPredictor

    found: Any = predictor
    # a CPU predictor keeps no bundle dict: it writes one
    bundle = found.to_bundle() if isinstance(found, CpuPredictor) else found.bundle
    measured, predicted, fixed = [], [], []
    for t in rows:
        if t.path is None:
            raise TflatError(f"{timings_csv}:{t.line}: {t.model} is not a .tflite file")
        try:
            gp = predictor.predict_graph(read_model(t.path))
        except TflatError as exc:
            raise TflatError(f"{timings_csv}:{t.line}: {exc}") from exc
        measured.append(t.latency_ms)
        predicted.append(gp.total_ms)
        fixed.append(gp.overhead_ms)
    factor, loo = sharpen_factor(np.array(measured), np.array(predicted), np.array(fixed))
    timing_list = [{"model": t.model, "ms": t.latency_ms} for t in rows]
    new = sharpened_bundle(bundle, factor, loo, timing_list)
    predictor_from_bundle(new)  # refuse to return a bundle that does not load
    fitted = tuple(
        (t.model, m, f + factor * (p - f))
        for t, m, p, f in zip(rows, measured, predicted, fixed, strict=True)
    )
    note = f"whole-model term x {factor:.3f}"
    return AddResult(device, "sharpen", new, timings=len(rows), fitted=fitted, notes=(note,))


def save_sharpened(device: str, bundle: dict[str, Any], db_url: str | None) -> None:
    """Store a sharpened predictor as the device's newest in the database."""
    from tflat.store import open_store

    store = open_store(db_url)
    try:
        store.save_predictor(device, bundle, provenance=bundle.get("provenance"))
    finally:
        store.close()
