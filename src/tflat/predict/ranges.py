"""Where the learned regressors were trained, and what to say when a kernel falls outside.

A boosted tree is constant beyond the last split it learned: outside the range of its training
rows a learned price is the analytic term's extrapolation with a frozen correction, a guess
rather than a measurement. The training range of each kind (min and max of a few size features
over the training rows, and the aspect of the kernels: the USC convolutions are all square)
ships in the bundle (``"training_range"``, from :func:`training_range`);
:meth:`TrainingRange.out_of_range` names the first feature a kernel lies outside of, so its
price says ``extrapolated`` and carries the wider band of the section's ``"extrapolation"``
(calibrated by :mod:`tflat.pricing.fit_extrapolation` on kernels held out at the ends of the
data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflat.errors import PredictorError
from tflat.predict.sections import DEFAULT_BAND, Band, band_of, check_band, reading

#: The features whose range is checked: the kernel's size, not derived quantities.
RANGE_FEATURES = (
    "log2_pixels_out",
    "log2_cin",
    "log2_cout",
    "kernel",
    "stride",
    "log2_groups",
    "log2_flops_eff",
    "log2_weight_bytes",
    "n_inputs",
)
#: kernel height x width against its taps: 1 for a square kernel, 7 for a 1x7 one. Not a
#: regressor column (the trees see ``kernel`` = the longer side), so it is checked apart.
ASPECT = "kernel_aspect"
#: How far past the trained range (log2 units) a size feature may go before it counts as
#: extrapolated: 0.5 is a factor 1.41 (a 1088-channel output next to 1024 trained is not a
#: new regime); counts (kernel, stride, inputs, aspect) must be inside exactly.
LOG2_MARGIN = 0.5


def kernel_aspect(shape: Any) -> float:
    """(longer side)^2 / taps of a kernel shape: 1 when square, kh/kw or kw/kh when not."""
    taps = int(getattr(shape, "kernel_taps", 0) or 0)
    return float(shape.kernel) ** 2 / taps if taps > 0 else 1.0


def compute_ranges(
    x: np.ndarray,
    kinds: Sequence[str],
    names: Sequence[str],
    aspects: Sequence[float] | None = None,
) -> dict[str, Any]:
    """``{kind: {feature: [min, max]}}`` of the training rows ``x`` (columns ``names``) and,
    given, their kernels' aspects."""
    col = {n: i for i, n in enumerate(names)}
    kind_arr = np.asarray(kinds)
    aspect = np.ones(len(kind_arr)) if aspects is None else np.asarray(aspects, dtype=float)
    out: dict[str, Any] = {}
    for kind in sorted(set(kind_arr.tolist())):
        sel = kind_arr == kind
        rows = x[sel]
        out[kind] = {
            f: [float(rows[:, col[f]].min()), float(rows[:, col[f]].max())]
            for f in RANGE_FEATURES
            if f in col
        }
        out[kind][ASPECT] = [float(aspect[sel].min()), float(aspect[sel].max())]
    return out


def training_range(
    shapes: Sequence[Any], kinds: Sequence[str], analytic: Mapping[str, Any]
) -> dict[str, Any]:
    """A bundle's ``training_range`` section from the training rows' kernel shapes (as the
    regressors saw them: proxied kinds already replaced), the regressors' kinds and their
    analytic coefficients. Its ``extrapolation`` band is the default until
    ``scripts/fit_pricing.py`` calibrates it."""
    from tflat.predict.features import FEATURE_NAMES, analytic_ms, feature_matrix

    x = feature_matrix(shapes, kinds, analytic_ms(analytic, shapes))
    ranges = compute_ranges(
        x, [s.kind for s in shapes], FEATURE_NAMES, [kernel_aspect(s) for s in shapes]
    )
    return TrainingRange(ranges, tuple(FEATURE_NAMES)).to_dict()


@dataclass(frozen=True)
class TrainingRange:
    """The trained range of each kind's size features (a bundle's ``training_range``) and the
    band of a price outside it: ``[ms * exp(lo), ms * exp(hi)]``, the 80 % band of
    log(measured / predicted) of kernels that were outside the range of the regressor that
    priced them."""

    ranges: Mapping[str, Mapping[str, tuple[float, float]]]
    feature_names: tuple[str, ...]
    log_interval: Band = DEFAULT_BAND
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_band("extrapolation", "log_interval", self.log_interval)
        for kind, feats in self.ranges.items():
            for f, (a, b) in feats.items():
                if (f not in self.feature_names and f != ASPECT) or not (
                    math.isfinite(a) and math.isfinite(b)
                ):
                    raise PredictorError(f"training_range of {kind}: bad feature {f!r}")
                if a > b:
                    raise PredictorError(f"training_range of {kind}.{f}: min > max")

    @classmethod
    def from_dict(cls, section: Mapping[str, Any], feature_names: Sequence[str]) -> TrainingRange:
        """Read a bundle's ``training_range``; a problem -> PredictorError."""
        with reading("training_range"):
            ranges = {
                str(kind): {str(f): (float(v[0]), float(v[1])) for f, v in feats.items()}
                for kind, feats in section["kinds"].items()
            }
            band = section.get("extrapolation", {})
            interval = band_of(band, default=DEFAULT_BAND)
            provenance = dict(band.get("provenance", {}))
        return cls(ranges, tuple(feature_names), interval, provenance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [*RANGE_FEATURES, ASPECT],
            "log2_margin": LOG2_MARGIN,
            "kinds": {
                k: {f: list(v) for f, v in feats.items()} for k, feats in self.ranges.items()
            },
            "extrapolation": {
                "log_interval": list(self.log_interval),
                "provenance": dict(self.provenance),
            },
        }

    def out_of_range(
        self, kind: str, feature_row: Sequence[float] | np.ndarray, aspect: float = 1.0
    ) -> str | None:
        """A note naming the first feature of ``feature_row`` (a row of the learned side's
        feature matrix, columns ``feature_names``; ``aspect`` its kernel's) outside
        ``kind``'s trained range, or None. A kind with no recorded range is outside."""
        feats = self.ranges.get(kind)
        if feats is None:
            return f"no training rows of kind {kind}"
        for f, (lo, hi) in feats.items():
            v = aspect if f == ASPECT else float(feature_row[self.feature_names.index(f)])
            margin = LOG2_MARGIN if f.startswith("log2_") else 0.0
            if v < lo - margin - 1e-9:
                return f"outside training: {f} {v:.3g} < {lo:.3g}"
            if v > hi + margin + 1e-9:
                return f"outside training: {f} {v:.3g} > {hi:.3g}"
        return None

    def trained_aspect(self, kind: str) -> float:
        """The most elongated kernel ``kind`` was trained on (1: square only; a range without
        the aspect comes from square data, as the USC's)."""
        return float(self.ranges.get(kind, {}).get(ASPECT, (1.0, 1.0))[1])

    def widen(self, ms: float, low_ms: float, high_ms: float) -> tuple[float, float]:
        """The wider of the learned interval and the extrapolation band around ``ms``."""
        lo, hi = self.log_interval
        return min(low_ms, ms * math.exp(lo)), max(high_ms, ms * math.exp(hi))
