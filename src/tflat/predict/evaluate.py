"""Honest evaluation: architecture families held out, never the same family in train and test.

``evaluate_families`` retrains the whole pipeline (kernel models, intervals, whole-model term)
on the other families for each fold and predicts the held-out models from their kernel shapes;
op-level errors are also reported for op shapes that never occur in the fold's training rows.
``evaluate_predictor_on_rows`` checks an already-trained predictor on stored models from their
kernel lists, ``evaluate_on_models`` on whole models with a .tflite file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflat.datasets.usc import UscData, UscOpRow
from tflat.predict.metrics import accuracy
from tflat.predict.predictor import Predictor
from tflat.predict.train import ModelParts, _group_folds, model_parts
from tflat.predict.usc import GPU_CONFIG, device_meta, fit_usc_device
from tflat.progress import ProgressCallback, nested

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelResult:
    model: str
    family: str
    measured_ms: float
    predicted_ms: float
    low_ms: float
    high_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "measured_ms": self.measured_ms,
            "predicted_ms": self.predicted_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
        }


@dataclass(frozen=True)
class EvalReport:
    device: str
    method: str
    folds: int
    models: tuple[ModelResult, ...]
    model_metrics: dict[str, Any]
    op_metrics: dict[str, Any]
    op_unseen_metrics: dict[str, Any]
    families: dict[str, list[str]] = field(default_factory=dict)
    #: per outer fold, what the inner folds chose: tree setting and whole-model design
    selections: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "method": self.method,
            "folds": self.folds,
            "model_level": self.model_metrics,
            "op_level": self.op_metrics,
            "op_level_unseen_shapes": self.op_unseen_metrics,
            "families": self.families,
            "selections": self.selections,
            "models": [m.to_dict() for m in self.models],
        }


def _shape_key(s: Any) -> tuple[Any, ...]:
    return (s.kind, s.h_in, s.cin, s.h_out, s.cout, s.kernel, s.stride, s.groups)


def _measured_ops(ops: Sequence[UscOpRow]) -> dict[str, list[float]]:
    """Each model's measured kernel latencies in execution order (the order of its shapes)."""
    out: dict[str, list[float]] = {}
    for r in sorted(ops, key=lambda r: (r.model, r.position)):
        out.setdefault(r.model, []).append(r.latency_ms)
    return out


@dataclass
class _Predictions:
    """What a predictor says of models given as kernel lists: one :class:`ModelResult` each,
    and per kernel (measured, predicted, 80 % interval) rows for the op-level figures."""

    results: list[ModelResult] = field(default_factory=list)
    op_m: list[float] = field(default_factory=list)
    op_p: list[float] = field(default_factory=list)
    op_lo: list[float] = field(default_factory=list)
    op_hi: list[float] = field(default_factory=list)

    def add(self, pred: Predictor, mp: ModelParts, measured_ops: Sequence[float]) -> None:
        raw = pred.predict_shapes(mp.shapes)
        total = pred.total_from_parts(
            raw, mp.unlisted_ops, mp.unlisted_mb, [s.kind for s in mp.shapes],
            mp.merged_pads, [s.weight_bytes / 1e6 for s in mp.shapes],
        )  # fmt: skip
        lo, hi = pred.whole.log_interval
        self.results.append(
            ModelResult(mp.model, mp.family, float(mp.measured_ms or 0.0), total,
                        total * math.exp(lo), total * math.exp(hi))
        )  # fmt: skip
        for s, r, m in zip(mp.shapes, raw, measured_ops, strict=True):
            klo, khi = pred.kernel_log_interval.get(s.kind, (0.0, 0.0))
            self.op_m.append(m)
            self.op_p.append(float(r))
            self.op_lo.append(float(r) * math.exp(klo))
            self.op_hi.append(float(r) * math.exp(khi))

    def op_accuracy(self, keep: np.ndarray | None = None) -> dict[str, Any]:
        """Op-level metrics over every kernel, or over those ``keep`` marks."""
        cols = [np.asarray(c) for c in (self.op_m, self.op_p, self.op_lo, self.op_hi)]
        if keep is not None:
            cols = [c[keep] for c in cols]
        return accuracy(*cols)


def evaluate_families(
    data: UscData,
    device: str,
    n_folds: int = 5,
    inner_folds: int = 4,
    progress: ProgressCallback | None = None,
    **fit_kwargs: Any,
) -> EvalReport:
    """Family-held-out cross-validation of the full training pipeline on USC rows.

    ``progress`` gets one unit per outer fold (fractions while a fold's predictor trains)."""
    _, gpu_family = device_meta(device)
    ops = data.ops_for(device)
    rows = data.models_for(device, GPU_CONFIG)
    parts = [p for p in model_parts(ops, rows, gpu_family) if p.measured_ms and p.shapes]
    measured_ops = _measured_ops(ops)
    folds = _group_folds([p.family for p in parts], n_folds)
    got = _Predictions()
    op_unseen: list[bool] = []
    fam_folds: dict[str, list[str]] = {}
    selections: dict[str, dict[str, str]] = {}
    for i, (train_idx, test_idx) in enumerate(folds):
        train = {parts[j].model for j in train_idx}
        fam_folds[f"fold{i}"] = sorted({parts[j].family for j in test_idx})
        log.info("%s fold %d: testing %s", device, i, fam_folds[f"fold{i}"])
        fold_progress = nested(progress, i, len(folds), f"fold {i + 1} of {len(folds)}")
        bundle = fit_usc_device(data, device, models=train, n_folds=inner_folds,
                                progress=fold_progress, **fit_kwargs)  # fmt: skip
        selections[f"fold{i}"] = _selection(bundle)
        pred = Predictor(bundle)
        seen = {_shape_key(s) for j in train_idx for s in parts[j].shapes}
        for j in test_idx:
            got.add(pred, parts[j], measured_ops[parts[j].model])
            op_unseen.extend(_shape_key(s) not in seen for s in parts[j].shapes)
    got.results.sort(key=lambda r: r.model)
    return EvalReport(
        device=device,
        method=f"family-held-out, {len(folds)} folds",
        folds=len(folds),
        models=tuple(got.results),
        model_metrics=_model_accuracy(got.results),
        op_metrics=got.op_accuracy(),
        op_unseen_metrics=got.op_accuracy(np.asarray(op_unseen, dtype=bool)),
        families=fam_folds,
        selections=selections,
    )


def _selection(bundle: dict[str, Any]) -> dict[str, str]:
    """What a bundle's inner folds chose (older bundles have no tree selection)."""
    wm = bundle.get("whole_model", {})
    return {
        "gbdt": str(bundle.get("gbdt_selection", {}).get("chosen", "default")),
        "whole_model": f"{wm.get('design', '?')}/{wm.get('fitted_on', '?')}",
    }


def evaluate_predictor_on_rows(predictor: Predictor, data: UscData, label: str = "") -> EvalReport:
    """A trained predictor on models it may never have seen, from their kernel lists.

    ``data`` holds per-kernel rows (shapes and the kernel names with node ids) and whole-model
    GPU latencies, as imported with ``tflat db import --format usc``; each model is predicted
    from its kernel shapes and unlisted ops exactly as in :func:`evaluate_families`, but with
    ``predictor`` as it is (no retraining).
    """
    device = predictor.device
    ops = [r for r in data.ops if r.device in (device, "")] or list(data.ops)
    rows = [m for m in data.models if m.config == GPU_CONFIG] or list(data.models)
    parts = [
        p
        for p in model_parts(ops, rows, predictor.gpu_family, predictor.rules)
        if p.measured_ms and p.shapes
    ]
    measured_ops = _measured_ops(ops)
    got = _Predictions()
    for mp in parts:
        got.add(predictor, mp, measured_ops[mp.model])
    got.results.sort(key=lambda r: r.model)
    return EvalReport(
        device=device,
        method=f"trained predictor{f' ({label})' if label else ''} on stored models, "
        "from their kernel lists",
        folds=0,
        models=tuple(got.results),
        model_metrics=_model_accuracy(got.results),
        op_metrics=got.op_accuracy(),
        op_unseen_metrics={"n": 0},
    )


def evaluate_on_models(
    predictor: Predictor, models: Sequence[tuple[str, str, float]]
) -> EvalReport:
    """A trained predictor on whole models: ``(name, .tflite path, measured_ms)`` each."""
    from tflat.model import read_model

    results: list[ModelResult] = []
    for name, path, measured in models:
        gp = predictor.predict_graph(read_model(path))
        results.append(
            ModelResult(name, "", measured, gp.total_ms, gp.total_low_ms, gp.total_high_ms)
        )
    return EvalReport(
        device=predictor.device,
        method="trained predictor on stored whole models",
        folds=0,
        models=tuple(results),
        model_metrics=_model_accuracy(results),
        op_metrics={"n": 0},
        op_unseen_metrics={"n": 0},
    )


def _model_accuracy(results: Sequence[ModelResult]) -> dict[str, Any]:
    """Whole-model metrics over ``results`` (measured vs predicted, with intervals)."""
    return accuracy(
        [r.measured_ms for r in results],
        [r.predicted_ms for r in results],
        [r.low_ms for r in results],
        [r.high_ms for r in results],
    )
