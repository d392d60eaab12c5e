"""Whole-model validation of a calibrated device: estimate each real model, measure it, compare.

Why whole models: a predictor is judged by what users ask of it, the latency of a network
it never saw. Single-op cross-validation says how well kernels are learned; only whole models
show what the kernel sum misses (fusion, ops XNNPACK does not take, per-inference overhead,
caches). Each model is measured like the training data (minimum of ``repeats`` timed runs),
``measure_rounds`` times, so the spread of the measurement itself stands beside the error.

On a runner with a speed reference (host-cpu, :mod:`tflat.bench.speed`) each round's minimum
is normalised to the machine's fast regime (``min / (reference_ms / fast reference)``, the
fast reference being the predictor's ``reference_fast_ms`` when it has one, so labels and
truth share one scale) and the truth is the *median* of the normalised rounds taken in the
fast regime (of all rounds when none was): a slow round is corrected only roughly (real models
do not slow down exactly like the reference), and the median ignores one round the correction
got wrong, where the lowest would pick exactly that one. Without references the truth is the
lowest raw round, as before. Both spreads, raw and normalised (over all rounds), are reported.
"""

from __future__ import annotations

import logging
import statistics
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
    #: median of the normalised fast-regime rounds, or the lowest raw round without references
    measured_ms: float
    measured_rounds_ms: tuple[float, ...]  # raw minimum per round
    error_pct: float
    status: str = "ok"
    note: str = ""
    #: the speed reference read with each round (ms); empty when the runner has none
    reference_rounds_ms: tuple[float, ...] = ()
    #: each round's minimum normalised to the fast regime; empty without references
    normalised_rounds_ms: tuple[float, ...] = ()

    @property
    def spread_pct(self) -> float:
        """(max - min) / min of the raw rounds: how much the raw measurement moves."""
        from tflat.bench.speed import spread_pct

        return spread_pct(self.measured_rounds_ms)

    @property
    def normalised_spread_pct(self) -> float | None:
        """(max - min) / min of the normalised rounds (None without references)."""
        from tflat.bench.speed import spread_pct

        return spread_pct(self.normalised_rounds_ms) if self.normalised_rounds_ms else None

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
            "reference_rounds_ms": list(self.reference_rounds_ms),
            "normalised_rounds_ms": list(self.normalised_rounds_ms),
            "normalised_spread_pct": self.normalised_spread_pct,
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
    from tflat.cpu.predictor import BUNDLE_FORMAT, CpuPredictor
    from tflat.store import open_store

    store = open_store(db_url)
    try:
        bundle = store.load_predictor_bundle(device)
    finally:
        store.close()
    if bundle is not None and bundle.get("format") == BUNDLE_FORMAT:
        return CpuPredictor.from_bundle(bundle)
    from tflat.pricing.predictors import load_predictor

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
    references: Mapping[str, Sequence[float]] | None = None,
    reference_fast_ms: float | None = None,
) -> ModelsReport:
    """Estimate and measure each model on ``device``; MAPE, share within ±10 %, Spearman.

    ``measured`` maps a model's file name (without ``.tflite``) to earlier round minimums
    (ms) taken with the same settings: those models are not measured again (the others
    are), so a predictor can be re-checked in seconds; ``statistic`` then says how they
    were taken, and ``references`` the speed reference read with each of those rounds.
    ``reference_fast_ms`` overrides the fast-regime reference the rounds are normalised to
    (default: the predictor's ``reference_fast_ms``, else the 5th percentile of this run's
    readings). A model that
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
    refs: list[list[float]] = [
        [float(v) for v in (references or {}).get(_name(Path(p)), ())] for p in model_paths
    ]
    errors = ["" for _ in model_paths]
    if todo:
        new_mins, new_refs, new_errors = _measure(
            device, db_url, [model_paths[i] for i in todo], [estimates[i] for i in todo], runner,
            repeats, warmup, measure_rounds,
        )  # fmt: skip
        for i, m, r, e in zip(todo, new_mins, new_refs, new_errors, strict=True):
            mins[i], refs[i], errors[i] = m, r, e
    fast = _fast_reference(reference_fast_ms, pred, refs)
    checks = []
    for path, est, rounds, ref, err in zip(model_paths, estimates, mins, refs, errors, strict=True):
        check = _check(Path(path), est, rounds, err, ref, fast)
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
        norm = sorted(v for c in good if (v := c.normalised_spread_pct) is not None)
        if norm:
            metrics["normalised_spread_pct_median"] = norm[len(norm) // 2]
            metrics["normalised_spread_pct_max"] = norm[-1]
            metrics["reference_fast_ms"] = fast
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
        statistic=statistic or _statistic(repeats, measure_rounds, any(refs)),
        checks=tuple(checks),
        metrics=metrics,
    )


def _statistic(repeats: int, rounds: int, normalised: bool) -> str:
    if normalised:
        return (
            f"minimum of {repeats} timed runs per round, normalised to the fast regime by the "
            f"speed reference; median of the fast-regime ones of {rounds} rounds"
        )
    return f"minimum of {repeats} timed runs, lowest of {rounds} rounds"


def _fast_reference(given: float | None, pred: Any, refs: list[list[float]]) -> float | None:
    """The fast-regime reference the rounds are normalised to: given, the predictor's (so
    truth and training labels share one scale), else this run's own readings'."""
    from tflat.bench.speed import fast_reference

    if given is not None:
        return given
    provenance = getattr(pred, "provenance", None)
    stored = provenance.get("reference_fast_ms") if isinstance(provenance, dict) else None
    if isinstance(stored, (int, float)) and stored > 0:
        return float(stored)
    return fast_reference(v for r in refs for v in r)


def _measure(
    device: str,
    db_url: str | None,
    model_paths: Sequence[Path],
    estimates: list[Any],
    runner: Runner | None,
    repeats: int,
    warmup: int,
    measure_rounds: int,
) -> tuple[list[list[float]], list[list[float]], list[str]]:
    """Per model, the minimum of each round (ms), the speed reference read with each round
    (empty when the runner has none) and the reason it could not be measured."""
    from tflat.bench import RunSettings, get_runner

    mins: list[list[float]] = [[] for _ in model_paths]
    refs: list[list[float]] = [[] for _ in model_paths]
    errors: list[str] = ["" for _ in model_paths]
    owns = runner is None
    if runner is None:
        runner = get_runner(device)
    add = getattr(runner, "add_reference_readings", None)
    if add is not None:
        # the fast regime the runner waits for is known from the first model on
        from tflat.store import open_store

        with open_store(db_url) as store:
            add(store.reference_readings(runner.device_id))
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
                    if m.reference_ms is not None:
                        refs[i].append(float(m.reference_ms))
    finally:
        if owns:
            runner.close()
    # a reference for some rounds only cannot normalise them all alike: drop it
    refs = [r if len(r) == len(m) else [] for r, m in zip(refs, mins, strict=True)]
    return mins, refs, errors


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


def _check(
    path: Path,
    est: Any,
    mins: list[float],
    error: str,
    refs: Sequence[float] = (),
    fast_ms: float | None = None,
) -> ModelCheck:
    name = _name(path)
    if isinstance(est, str):
        return ModelCheck(name, str(path), 0.0, 0.0, 0.0, 0.0, (), 0.0, "not_estimated", est)
    est, caveat = est
    if error or not mins:
        return ModelCheck(
            name, str(path), est.total_ms, est.total_low_ms, est.total_high_ms, 0.0, (),
            0.0, "not_measured", error or "not measured",
        )  # fmt: skip
    norm: tuple[float, ...] = ()
    measured = min(mins)
    if refs and len(refs) == len(mins) and fast_ms is not None:
        from tflat.bench.speed import is_fast, normalised_ms

        norm = tuple(normalised_ms(m, r, fast_ms) for m, r in zip(mins, refs, strict=True))
        fast = [n for n, r in zip(norm, refs, strict=True) if is_fast(r, fast_ms)]
        measured = statistics.median(fast or norm)
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
        reference_rounds_ms=tuple(refs) if norm else (),
        normalised_rounds_ms=norm,
    )
