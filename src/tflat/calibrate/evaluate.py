"""Whole-model validation of a calibrated device: estimate each real model, measure it, compare.

Why whole models: a predictor is judged by what users ask of it, the latency of a network
it never saw. Single-op cross-validation says how well kernels are learned; only whole models
show what the kernel sum misses (fusion, ops XNNPACK does not take, per-inference overhead,
caches). Each model is measured like the training data (minimum of ``repeats`` timed runs),
``measure_rounds`` times, so the spread of the measurement itself stands beside the error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.errors import PredictorError, TflatError

if TYPE_CHECKING:
    from tflat.bench import Runner
    from tflat.predict.evaluate import EvalReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCheck:
    """One real model: estimate, measurement (min of runs per round) and its spread."""

    model: str
    path: str
    estimated_ms: float
    low_ms: float
    high_ms: float
    measured_ms: float  # the lowest of the rounds' minimums
    measured_rounds_ms: tuple[float, ...]
    error_pct: float
    status: str = "ok"
    note: str = ""

    @property
    def spread_pct(self) -> float:
        """(max - min) / min of the rounds: how much the measurement itself moves."""
        r = self.measured_rounds_ms
        return 100.0 * (max(r) - min(r)) / min(r) if len(r) > 1 and min(r) > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "path": self.path,
            "status": self.status,
            "estimated_ms": self.estimated_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "measured_ms": self.measured_ms,
            "measured_rounds_ms": list(self.measured_rounds_ms),
            "measurement_spread_pct": self.spread_pct,
            "error_pct": self.error_pct,
            "note": self.note,
        }


@dataclass(frozen=True)
class ModelsReport:
    """Estimate vs measurement over whole models, with the figures the issue asks for."""

    device: str
    statistic: str
    checks: tuple[ModelCheck, ...]
    metrics: dict[str, Any]

    @property
    def ok(self) -> tuple[ModelCheck, ...]:
        return tuple(c for c in self.checks if c.status == "ok")

    def to_eval_report(self) -> EvalReport:
        """The predictor package's report type, so its plot and renderers apply."""
        from tflat.predict.evaluate import EvalReport, ModelResult

        return EvalReport(
            device=self.device,
            method=f"whole real models, measured on the device ({self.statistic})",
            folds=0,
            models=tuple(
                ModelResult(c.model, "", c.measured_ms, c.estimated_ms, c.low_ms, c.high_ms)
                for c in self.ok
            ),
            model_metrics=self.metrics,
            op_metrics={"n": 0},
            op_unseen_metrics={"n": 0},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "statistic": self.statistic,
            "metrics": self.metrics,
            "models": [c.to_dict() for c in self.checks],
        }


def load_device_predictor(device: str, db_url: str | None = None) -> Any:
    """The device's predictor: a calibrated CPU bundle from the database, else tflat.predict's."""
    from tflat.predict.cpu_features import BUNDLE_FORMAT, CpuPredictor
    from tflat.store import open_store

    store = open_store(db_url)
    try:
        bundle = store.load_predictor_bundle(device)
    finally:
        store.close()
    if bundle is not None and bundle.get("format") == BUNDLE_FORMAT:
        return CpuPredictor.from_bundle(bundle)
    from tflat.predict import load_predictor

    return load_predictor(device, db_url)


def evaluate_models(
    device: str,
    model_paths: Sequence[Path],
    db_url: str | None = None,
    *,
    predictor: Any = None,
    runner: Runner | None = None,
    repeats: int = 30,
    warmup: int = 5,
    measure_rounds: int = 3,
    progress: Callable[[ModelCheck], None] | None = None,
    measured: Mapping[str, Sequence[float]] | None = None,
    statistic: str | None = None,
) -> ModelsReport:
    """Estimate and measure each model on ``device``; MAPE, share within ±10 %, Spearman.

    ``measured`` maps a model's file name (without ``.tflite``) to earlier round minimums
    (ms) taken with the same settings: those models are not measured again (the others
    are), so a predictor can be re-checked in seconds; ``statistic`` then says how they
    were taken. A model that
    cannot be read, estimated or run is kept in the report with its status and left out of
    the metrics (never silently dropped).
    """
    from tflat.model import read_model
    from tflat.predict.metrics import accuracy

    if not model_paths:
        raise TflatError("no models to evaluate")
    pred = predictor if predictor is not None else load_device_predictor(device, db_url)
    estimates = [_estimate(pred, Path(p), read_model) for p in model_paths]
    cached = {k: [float(v) for v in vs] for k, vs in (measured or {}).items() if vs}
    todo = [i for i, p in enumerate(model_paths) if _name(Path(p)) not in cached]
    mins: list[list[float]] = [list(cached.get(_name(Path(p)), [])) for p in model_paths]
    errors = ["" for _ in model_paths]
    if todo:
        new_mins, new_errors = _measure(
            device, [model_paths[i] for i in todo], [estimates[i] for i in todo], runner,
            repeats, warmup, measure_rounds,
        )  # fmt: skip
        for i, m, e in zip(todo, new_mins, new_errors, strict=True):
            mins[i], errors[i] = m, e
    checks = []
    for path, est, rounds, err in zip(model_paths, estimates, mins, errors, strict=True):
        check = _check(Path(path), est, rounds, err)
        checks.append(check)
        if progress is not None:
            progress(check)
    good = [c for c in checks if c.status == "ok"]
    metrics = accuracy(
        [c.measured_ms for c in good],
        [c.estimated_ms for c in good],
        [c.low_ms for c in good],
        [c.high_ms for c in good],
    )
    if good:
        metrics["measurement_spread_pct_median"] = sorted(c.spread_pct for c in good)[
            len(good) // 2
        ]
        metrics["measurement_spread_pct_max"] = max(c.spread_pct for c in good)
    metrics["skipped"] = len(checks) - len(good)
    metrics["not_estimable"] = sum(1 for c in checks if c.status == "not_estimable")
    # the same share with every model that was measured counted (not-estimable ones as misses)
    measured_all = [c for c in checks if c.status in ("ok", "not_estimable")]
    if measured_all:
        metrics["within_10_pct_of_all_measured"] = (
            100.0
            * sum(1 for c in measured_all if c.status == "ok" and abs(c.error_pct) <= 10.0)
            / len(measured_all)
        )
    return ModelsReport(
        device=device,
        statistic=statistic
        or f"minimum of {repeats} timed runs, lowest of {measure_rounds} rounds",
        checks=tuple(checks),
        metrics=metrics,
    )


def _measure(
    device: str,
    model_paths: Sequence[Path],
    estimates: list[Any],
    runner: Runner | None,
    repeats: int,
    warmup: int,
    measure_rounds: int,
) -> tuple[list[list[float]], list[str]]:
    """Per model, the minimum of each round (ms) and the reason it could not be measured."""
    from tflat.bench import RunSettings, get_runner

    mins: list[list[float]] = [[] for _ in model_paths]
    errors: list[str] = ["" for _ in model_paths]
    owns = runner is None
    if runner is None:
        runner = get_runner(device)
    threads = int(getattr(runner, "threads", 1))
    delegate = "gpu" if device.startswith("android:") else "xnnpack"
    settings = RunSettings(
        delegate=delegate,  # type: ignore[arg-type]
        threads=threads,
        repeats=repeats,
        warmup=warmup,
    )
    try:
        # Rounds go over all models in turn, so each model's rounds are minutes apart and the
        # lowest of them is less likely to come from a moment when the machine was busy.
        for _ in range(max(measure_rounds, 1)):
            for i, path in enumerate(model_paths):
                if isinstance(estimates[i], str) or errors[i]:
                    continue
                m = runner.measure(Path(path), settings)
                if not m.ok or m.min_ms is None:
                    errors[i] = f"{m.status}: {m.error}"
                else:
                    mins[i].append(float(m.min_ms))
    finally:
        if owns:
            runner.close()
    return mins, errors


def _estimate(pred: Any, path: Path, read_model: Callable[[Path], Any]) -> Any:
    """The prediction for one model (and a caveat, if any), or the reason there is none."""
    try:
        graph = read_model(path)
        return pred.predict_graph(graph), _caveat(graph)
    except (TflatError, PredictorError) as exc:
        return str(exc)


#: The note that marks a model whose sizes are unknown offline (see :func:`_caveat`).
DYNAMIC_NOTE = "ops with dynamic shapes: sizes unknown offline"


def _caveat(graph: Any) -> str:
    dynamic = sum(
        1 for op in graph.ops if any(d < 0 for t in (*op.inputs, *op.outputs) for d in t.shape[1:])
    )
    if dynamic:
        return f"{dynamic} {DYNAMIC_NOTE}, counted as 1"
    return ""


def _name(path: Path) -> str:
    return path.name[:-7] if path.name.endswith(".tflite") else path.name


def _check(path: Path, est: Any, mins: list[float], error: str) -> ModelCheck:
    name = _name(path)
    if isinstance(est, str):
        return ModelCheck(name, str(path), 0.0, 0.0, 0.0, 0.0, (), 0.0, "not_estimated", est)
    est, caveat = est
    if error or not mins:
        return ModelCheck(
            name, str(path), est.total_ms, est.total_low_ms, est.total_high_ms, 0.0, (),
            0.0, "not_measured", error or "not measured",
        )  # fmt: skip
    measured = min(mins)
    return ModelCheck(
        model=name,
        path=str(path),
        estimated_ms=est.total_ms,
        low_ms=est.total_low_ms,
        high_ms=est.total_high_ms,
        measured_ms=measured,
        measured_rounds_ms=tuple(mins),
        error_pct=100.0 * (est.total_ms - measured) / measured,
        # Why apart: an estimate over sizes counted as 1 is no estimate; it is shown with its
        # error but kept out of the accuracy figures (which also say how many such models).
        status="not_estimable" if DYNAMIC_NOTE in caveat else "ok",
        note=caveat,
    )
