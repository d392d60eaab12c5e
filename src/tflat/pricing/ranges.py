"""Where a learned regressor was trained, and what to say when a kernel falls outside.

A boosted tree is constant beyond the last split it learned: outside the range of its training
rows a learned price is the analytic term's extrapolation with a frozen correction, a guess
rather than a measurement. The training range of each kind (min and max of a few size features
over the training rows) ships in the bundle (``"training_range"``); :meth:`TrainingRange.
out_of_range` names the first feature a kernel lies outside of, so the learned pricer can say
``extrapolated`` and widen its interval (:class:`Extrapolation`, calibrated by
:mod:`tflat.pricing.calibrate_extrapolation`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflat.errors import PredictorError
from tflat.predict.ranges import LOG2_MARGIN, RANGE_FEATURES


@dataclass(frozen=True)
class TrainingRange:
    """The trained range of each kind's size features (a bundle's ``training_range``)."""

    ranges: Mapping[str, Mapping[str, tuple[float, float]]]
    feature_names: tuple[str, ...]

    @classmethod
    def from_dict(cls, section: Mapping[str, Any], feature_names: Sequence[str]) -> TrainingRange:
        try:
            ranges = {
                str(kind): {str(f): (float(v[0]), float(v[1])) for f, v in feats.items()}
                for kind, feats in section["kinds"].items()
            }
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PredictorError(f"training_range section is malformed: {exc!r}") from exc
        for kind, feats in ranges.items():
            for f, (lo, hi) in feats.items():
                if f not in feature_names or not (math.isfinite(lo) and math.isfinite(hi)):
                    raise PredictorError(f"training_range of {kind}: bad feature {f!r}")
                if lo > hi:
                    raise PredictorError(f"training_range of {kind}.{f}: min > max")
        return cls(ranges, tuple(feature_names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(RANGE_FEATURES),
            "log2_margin": LOG2_MARGIN,
            "kinds": {
                k: {f: list(v) for f, v in feats.items()} for k, feats in self.ranges.items()
            },
        }

    def out_of_range(self, kind: str, feature_row: Sequence[float] | np.ndarray) -> str | None:
        """A note naming the first feature of ``feature_row`` (a row of the learned side's
        feature matrix, columns ``feature_names``) outside ``kind``'s trained range, or None.
        A kind with no recorded range is outside by definition."""
        feats = self.ranges.get(kind)
        if feats is None:
            return f"no training rows of kind {kind}"
        for f, (lo, hi) in feats.items():
            v = float(feature_row[self.feature_names.index(f)])
            margin = LOG2_MARGIN if f.startswith("log2_") else 0.0
            if v < lo - margin - 1e-9:
                return f"outside training: {f} {v:.3g} < {lo:.3g}"
            if v > hi + margin + 1e-9:
                return f"outside training: {f} {v:.3g} > {hi:.3g}"
        return None


@dataclass(frozen=True)
class Extrapolation:
    """How an extrapolated learned price is widened: its interval becomes
    ``[ms * exp(lo), ms * exp(hi)]``, the 80 % band of log(measured / predicted) of kernels
    that were outside the training range of the regressor that priced them."""

    log_interval: tuple[float, float] = (math.log(0.5), math.log(2.0))
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lo, hi = self.log_interval
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0 <= hi):
            raise PredictorError(f"extrapolation: log_interval must hold 0, not {lo}, {hi}")

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> Extrapolation:
        try:
            lo, hi = (float(v) for v in section["log_interval"])
            return cls((lo, hi), dict(section.get("provenance", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise PredictorError(f"extrapolation section is malformed: {exc!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"log_interval": list(self.log_interval), "provenance": dict(self.provenance)}

    def widen(self, ms: float, low_ms: float, high_ms: float) -> tuple[float, float]:
        """The wider of the learned interval and the extrapolation band around ``ms``."""
        lo, hi = self.log_interval
        return min(low_ms, ms * math.exp(lo)), max(high_ms, ms * math.exp(hi))
