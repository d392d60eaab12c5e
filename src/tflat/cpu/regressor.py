"""The CPU latency regressor of one op type: a non-negative work model x a nearest-neighbour
correction, fitted on single-op measurements.

The linear part (NNLS on the work terms of :mod:`tflat.cpu.features`) extrapolates sanely; the
distance-weighted nearest-neighbour correction in log space learns the shape-dependent
efficiency. It is plain numbers, so a bundle is JSON: no pickle, no library version lock-in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tflat.cpu.features import FEATURE_NAMES, WORK_TERMS, model_key, work_terms
from tflat.errors import PredictorError

if TYPE_CHECKING:
    import numpy as np

#: The fallback when an op type has no regressor: the pooled regressor of its kernel kind.
POOLED_PREFIX = "kind:"
ANY_MODEL = "kind:any"
_K = 6
_EPS_MS = 1e-4
_FLOOR_MS = 0.003


def _vector(features: Mapping[str, float]) -> list[float]:
    return [math.log2(1.0 + float(features.get(name, 0.0))) for name in FEATURE_NAMES]


class CpuLatencyModel:
    """Latency (ms, invoke overhead excluded) of one op type: NNLS work model x kNN correction.

    ``fit(features, latency_ms)`` returns self; learned state ends in ``_``.
    """

    def __init__(self, *, k: int = _K) -> None:
        self.k = k

    def fit(
        self, features: Sequence[Mapping[str, float]], latency_ms: Sequence[float]
    ) -> CpuLatencyModel:
        import numpy as np
        from scipy.optimize import nnls

        if not features:
            raise PredictorError("cannot fit a CPU latency model on no rows")
        y = np.maximum(np.asarray(latency_ms, dtype=float), _EPS_MS)
        work = np.array([work_terms(f) for f in features], dtype=float)
        scale = np.maximum(work.max(axis=0), 1e-12)
        # Relative least squares (each row divided by its latency), except that ops below a few
        # microseconds, mostly timer noise once the invoke overhead is gone, weigh as that floor.
        w = 1.0 / np.maximum(y, _FLOOR_MS)
        coef, _ = nnls((work / scale) * w[:, None], y * w)
        self.coef_ = [float(c) for c in coef / scale]
        base = np.maximum(work @ np.asarray(self.coef_), _EPS_MS)
        self.x_ = [_vector(f) for f in features]
        x = np.asarray(self.x_)
        self.mu_ = [float(v) for v in x.mean(axis=0)]
        self.sd_ = [float(v) if v > 1e-9 else 1.0 for v in x.std(axis=0)]
        self.log_ratio_ = [float(v) for v in np.log(y / base)]
        return self

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise PredictorError("CPU latency model used before fit")

    def predict(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        import numpy as np

        self._check()
        if not features:
            return np.zeros(0)
        work = np.array([work_terms(f) for f in features], dtype=float)
        base = np.maximum(work @ np.asarray(self.coef_), _EPS_MS)
        mu, sd = np.asarray(self.mu_), np.asarray(self.sd_)
        train = (np.asarray(self.x_) - mu) / sd
        query = (np.asarray([_vector(f) for f in features]) - mu) / sd
        ratios = np.asarray(self.log_ratio_)
        k = min(self.k, len(ratios))
        d = np.sqrt(((query[:, None, :] - train[None, :, :]) ** 2).sum(axis=2))
        nearest = np.argsort(d, axis=1)[:, :k]
        dn = np.take_along_axis(d, nearest, axis=1)
        wts = 1.0 / (dn + 0.05)
        corr = (wts * ratios[nearest]).sum(axis=1) / wts.sum(axis=1)
        return np.asarray(base * np.exp(corr))

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {
            "k": self.k,
            "coef": self.coef_,
            "x": [[round(v, 6) for v in row] for row in self.x_],
            "mu": self.mu_,
            "sd": self.sd_,
            "log_ratio": [round(v, 6) for v in self.log_ratio_],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CpuLatencyModel:
        model = cls(k=int(data["k"]))
        model.coef_ = [float(v) for v in data["coef"]]
        if len(model.coef_) != len(WORK_TERMS):
            raise PredictorError(
                "CPU latency model has other work terms (an older tflat): run tflat calibrate again"
            )
        model.x_ = [[float(v) for v in row] for row in data["x"]]
        model.mu_ = [float(v) for v in data["mu"]]
        model.sd_ = [float(v) for v in data["sd"]]
        model.log_ratio_ = [float(v) for v in data["log_ratio"]]
        return model


@dataclass(frozen=True)
class TrainingRow:
    """One measured single-op model: its main kernel's op type, kind and features."""

    op_type: str
    kind: str
    features: Mapping[str, float]
    latency_ms: float  # invoke overhead already subtracted
    spec_hash: str = ""


def fit_models(rows: Sequence[TrainingRow], *, min_rows: int = 4) -> dict[str, CpuLatencyModel]:
    """One model per op type with enough rows, one pooled per kind, and one over everything."""
    groups: dict[str, list[TrainingRow]] = {}
    for r in rows:
        groups.setdefault(model_key(r.op_type), []).append(r)
        if r.kind not in ("free",):
            groups.setdefault(POOLED_PREFIX + r.kind, []).append(r)
    if rows:
        groups[ANY_MODEL] = [r for r in rows if r.kind != "free"]
    models = {}
    for key, members in groups.items():
        if len(members) < min_rows:
            continue
        models[key] = CpuLatencyModel().fit(
            [m.features for m in members], [m.latency_ms for m in members]
        )
    return models
