"""From stored single-op measurements to a trained, cross-validated device predictor.

Why here and not in the campaign: calibration retrains after every phase to decide where to
sample next, so turning measurements into training rows (features read from the very model
that was measured, invoke overhead subtracted) and scoring them by cross-validation must be
cheap and repeatable. Features come from rebuilding each spec's model and partitioning it
with the device's delegate rules, the same path a whole-model estimate takes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tflat.calibrate.speed import SpeedReference, anchor_spec
from tflat.errors import SpecError

if TYPE_CHECKING:
    from tflat.cpu.predictor import CpuPredictor
    from tflat.cpu.regressor import TrainingRow
    from tflat.model.spec import OpSpec
    from tflat.store import MeasurementRecord

log = logging.getLogger(__name__)

#: Specs that measure nothing but the fixed cost of one invoke of a one-op model.
PROBE_SPECS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ADD", {"input_h": 1, "input_w": 1, "cin": 1}),
    ("RELU", {"input_h": 1, "input_w": 1, "cin": 1}),
    ("MUL", {"input_h": 1, "input_w": 1, "cin": 2}),
)
#: Below this a measured op is mostly timer noise: it does not steer adaptive sampling.
_NOISE_FLOOR_MS = 0.01


def probe_specs() -> list[OpSpec]:
    from tflat.model.spec import OpSpec

    return [OpSpec(kind, params) for kind, params in PROBE_SPECS]


@dataclass(frozen=True)
class CvReport:
    """Cross-validated error of single-op predictions (k folds over measured specs).

    ``mape`` is the mean absolute percentage error per op; ``wape`` weighs each op by its
    latency (what matters for a whole-model sum); ``mape_above_floor`` leaves out ops under
    10 µs, mostly timer noise once the invoke overhead is gone; ``errors`` maps spec hash to
    signed relative error (predicted / measured - 1).
    """

    rows: int
    folds: int
    mape: float
    wape: float
    by_type: Mapping[str, float]
    spread: Mapping[str, tuple[float, float]]
    errors: Mapping[str, float] = field(repr=False, default_factory=dict)
    mape_above_floor: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "folds": self.folds,
            "mape": self.mape,
            "wape": self.wape,
            "mape_above_10us": self.mape_above_floor,
            "by_type": dict(self.by_type),
        }


class FeatureCache:
    """spec hash -> (op type, kind, features) of the spec's main kernel, built once."""

    def __init__(self, rules: str) -> None:
        self.rules = rules
        self._rows: dict[str, tuple[str, str, dict[str, float]] | None] = {}

    def get(self, spec: OpSpec) -> tuple[str, str, dict[str, float]] | None:
        if spec.spec_hash not in self._rows:
            self._rows[spec.spec_hash] = self._build(spec)
        return self._rows[spec.spec_hash]

    def _build(self, spec: OpSpec) -> tuple[str, str, dict[str, float]] | None:
        from tflat.cpu.delegates import partition
        from tflat.cpu.features import kernel_rows
        from tflat.model.writer import write_spec

        try:
            _, graph = write_spec(spec)
        except SpecError as exc:
            log.warning("cannot rebuild %s: %s", spec.label, exc)
            return None
        kernels = partition(graph, rules=self.rules)
        rows = kernel_rows(graph, kernels)
        for k, (op_type, feats) in zip(kernels, rows, strict=True):
            if op_type == spec.kind:
                return op_type, k.kind, feats
        return None


def training_rows(
    records: Iterable[MeasurementRecord],
    cache: FeatureCache,
    overhead_ms: float,
    speed: SpeedReference | None = None,
) -> list[TrainingRow]:
    """Rows for the regressors: min-of-runs latency (divided by the machine's slowdown at
    the time, see :class:`SpeedReference`) minus the invoke overhead.

    int8 specs are left out (their QUANTIZE/DEQUANTIZE wrappers are in the measured time and
    the CPU regressors are for float models); probes are left out (they are the overhead).
    """
    from tflat.cpu.regressor import TrainingRow
    from tflat.model.spec import OpSpec

    probes = {s.spec_hash for s in probe_specs()} | {anchor_spec().spec_hash}
    rows = []
    for rec in records:
        if rec.status != "ok" or rec.min_ms is None or rec.spec.spec_hash in probes:
            continue
        if rec.spec.params.get("dtype") == "int8":
            continue
        try:
            spec = OpSpec(rec.spec.kind, rec.spec.params)
        except SpecError:
            continue
        built = cache.get(spec)
        if built is None:
            continue
        op_type, kind, feats = built
        raw = float(rec.min_ms) / (speed.factor(rec.created_at) if speed is not None else 1.0)
        latency = max(raw - overhead_ms, 0.05 * raw, 1e-5)
        rows.append(TrainingRow(op_type, kind, feats, latency, spec.spec_hash))
    return rows


def cross_validate(rows: Sequence[TrainingRow], *, folds: int = 5, seed: int = 0) -> CvReport:
    """k-fold cross-validation of the per-op-type regressors on single-op rows."""
    import numpy as np

    from tflat.cpu.features import model_key
    from tflat.cpu.predictor import CpuPredictor
    from tflat.cpu.regressor import fit_models

    n = len(rows)
    if n < 2 * folds:
        return CvReport(n, 0, math.nan, math.nan, {}, {})
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(n) % folds
    pred = np.zeros(n)
    for f in range(folds):
        train = [rows[i] for i in range(n) if fold_of[i] != f]
        test = [i for i in range(n) if fold_of[i] == f]
        cpu = CpuPredictor("cv", fit_models(train), invoke_overhead_ms=0.0)
        groups: dict[str, list[int]] = {}
        for i in test:
            key, _ = cpu._model_for(rows[i].op_type, rows[i].kind)
            groups.setdefault(key, []).append(i)
        for key, members in groups.items():
            model = cpu.models.get(key)
            if model is None:
                pred[members] = math.nan
                continue
            pred[members] = model.predict([rows[i].features for i in members])
    meas = np.array([r.latency_ms for r in rows])
    ok = np.isfinite(pred)
    rel = np.where(ok, pred / meas - 1.0, np.nan)
    mape = float(np.nanmean(np.abs(rel)))
    above = ok & (meas >= _NOISE_FLOOR_MS)
    mape_above = float(np.mean(np.abs(rel[above]))) if above.any() else math.nan
    wape = float(np.nansum(np.abs(pred - meas)[ok]) / max(meas[ok].sum(), 1e-12))
    by_type: dict[str, float] = {}
    spread: dict[str, tuple[float, float]] = {}
    keys = [model_key(r.op_type) for r in rows]
    for key in sorted(set(keys)):
        idx = [i for i in range(n) if keys[i] == key and ok[i]]
        if not idx:
            continue
        by_type[key] = float(np.mean(np.abs(rel[idx])))
        ratio = meas[idx] / pred[idx]
        spread[key] = (float(np.quantile(ratio, 0.1)), float(np.quantile(ratio, 0.9)))
    errors = {rows[i].spec_hash: float(rel[i]) for i in range(n) if ok[i]}
    return CvReport(n, folds, mape, wape, by_type, spread, errors, mape_above)


def adaptive_errors(
    rows: Sequence[TrainingRow], cv: CvReport, specs: Mapping[str, OpSpec]
) -> list[tuple[OpSpec, float]]:
    """(spec, error) pairs that steer adaptive sampling: relative error, noise-floor ops out."""
    out = []
    for r in rows:
        err = cv.errors.get(r.spec_hash)
        spec = specs.get(r.spec_hash)
        if err is None or spec is None or r.latency_ms < _NOISE_FLOOR_MS:
            continue
        out.append((spec, abs(err)))
    return out


def fit_predictor(
    device_id: str,
    rows: Sequence[TrainingRow],
    *,
    overhead_ms: float,
    rules: str,
    cv: CvReport | None,
    provenance: Mapping[str, Any] | None = None,
) -> CpuPredictor:
    """The device's predictor on all rows, with cross-validated intervals."""
    from tflat.cpu.predictor import CpuPredictor
    from tflat.cpu.regressor import fit_models

    return CpuPredictor(
        device_id,
        fit_models(rows),
        invoke_overhead_ms=overhead_ms,
        spread=dict(cv.spread) if cv is not None else None,
        rules=rules,
        provenance={**(provenance or {}), **({"cv": cv.to_dict()} if cv is not None else {})},
    )


def fit_whole_model(
    predictor: CpuPredictor, networks: Sequence[tuple[Any, float]]
) -> dict[str, Any]:
    """Fit the predictor's whole-model term on measured networks and return what to record.

    Each variant of :data:`~tflat.cpu.predictor.WHOLE_VARIANTS` is scored by
    leave-one-network-out error; the simplest within two points (or 10 %) of the best is
    kept, so a term that does not generalise never replaces the plain kernel sum.
    """
    import numpy as np

    from tflat.cpu.predictor import WHOLE_VARIANTS, fit_whole_term, whole_term_ms

    rows, ys, kernels = predictor.whole_rows(networks)
    scores: dict[str, float] = {}
    for name, terms in WHOLE_VARIANTS.items():
        if len(rows) < 5 and terms:
            continue
        errs = []
        for i in range(len(rows)):
            t = fit_whole_term(rows[:i] + rows[i + 1 :], ys[:i] + ys[i + 1 :], terms)
            errs.append(abs(whole_term_ms(t, kernels[i]) / ys[i] - 1.0))
        if errs:
            scores[name] = float(100 * np.mean(errs))
    best = min(scores.values(), default=math.inf)
    # a richer term must beat the simpler ones clearly: 16 noisy networks are little evidence
    chosen = next((n for n, v in scores.items() if v <= best + max(2.0, 0.1 * best)), "plain")
    predictor.whole = fit_whole_term(rows, ys, WHOLE_VARIANTS[chosen])
    return {
        "networks": len(rows),
        "variant": chosen,
        "loo_mape_pct_by_variant": scores,
        **predictor.whole.to_dict(),
    }
