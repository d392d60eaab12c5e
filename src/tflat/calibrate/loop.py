"""``tflat calibrate``: plan, generate, benchmark, train, evaluate and save a device's predictor.

Why one function orchestrates all of it: a user with a new device has a time budget, not a
plan. It spends the budget in phases (a seed grid of every op kind, the layer shapes of real CNNs,
random samples, then adaptive rounds around the specs the cross-validated predictor gets most
wrong), keeps every measurement in the database the moment it is taken (so a stopped run
resumes where it stopped: measured specs are skipped), and always ends with the best
predictor it can train from everything measured so far, saved for ``tflat estimate``.

The time budget covers the whole command: measuring stops early enough to train, cross-
validate and save. Progress goes to a callback (the CLI draws it): phase, models measured,
current cross-validated error. The measuring itself goes through :mod:`tflat.bench.campaign`
(see :mod:`tflat.calibrate.session`); training is :mod:`tflat.calibrate.training`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.calibrate.session import RECHECK_BATCH, CalibrationProgress, RunState, Session
from tflat.calibrate.speed import RunTarget
from tflat.calibrate.training import (
    CvReport,
    FeatureCache,
    cross_validate,
    fit_predictor,
    fit_whole_model,
    training_rows,
)
from tflat.errors import DeviceError, TflatError

if TYPE_CHECKING:
    from tflat.bench import Runner

log = logging.getLogger(__name__)

#: The plan name of the phase that measures whole synthetic networks (not single ops).
NETWORKS_PLAN = "zoo-networks"
#: The networks phase measures tflat.calibrate.networks.NETWORKS (zoo CNNs, MediaPipe-like
#: fp16/PRELU/5x5 trunks and int8 keyword spotters), interleaved.

#: (phase name, shipped plan, share of the measuring time this phase may use at most)
PHASES: tuple[tuple[str, str, float], ...] = (
    ("seed", "calibrate-seed", 0.25),
    ("networks", NETWORKS_PLAN, 0.12),
    ("prior", "calibrate-prior", 0.25),
    ("random", "calibrate-random", 0.20),
)


@dataclass(frozen=True)
class CalibrationResult:
    device_id: str
    db_url: str
    rules: str
    settings: dict[str, Any]
    models_measured: int
    models_in_db: int
    failed: int
    overhead_ms: float
    cv: CvReport
    phases_done: tuple[str, ...]
    stopped_by_budget: bool
    elapsed_s: float
    work_dir: str
    trained_kinds: tuple[str, ...] = field(default_factory=tuple)
    #: how labels were corrected for the machine's speed at the time they were taken
    speed_reference: str = ""
    #: the speed reference's fast-regime time (ms) labels are normalised to (None: anchors)
    reference_fast_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device_id,
            "db": self.db_url,
            "rules": self.rules,
            "settings": self.settings,
            "models_measured": self.models_measured,
            "models_in_db": self.models_in_db,
            "failed": self.failed,
            "invoke_overhead_ms": self.overhead_ms,
            "cv": self.cv.to_dict(),
            "phases_done": list(self.phases_done),
            "stopped_by_budget": self.stopped_by_budget,
            "elapsed_s": self.elapsed_s,
            "work_dir": self.work_dir,
            "trained_kinds": list(self.trained_kinds),
            "speed_reference": self.speed_reference,
            "reference_fast_ms": self.reference_fast_ms,
        }


def default_work_dir(device_id: str) -> Path:
    from platformdirs import user_cache_dir

    safe = device_id.replace(":", "_").replace("/", "_")
    return Path(user_cache_dir("tflat", appauthor=False)) / "calibrate" / safe


def device_and_rules(device: str, threads: int, delegate: str | None) -> tuple[str, str, str]:
    """(device id, delegate, rules) for a calibration target.

    ``host-cpu`` with ``threads=N`` is its own device ``host-cpu-tN``; phones default to the
    GPU delegate and the TFLite GPU rules, this machine to XNNPACK and its rules.
    """
    if device.startswith("host-cpu"):
        from tflat.bench.local import host_device_id

        if device not in ("host-cpu", host_device_id(threads)):
            raise TflatError(f"device {device} contradicts --threads {threads}")
        chosen = delegate or "xnnpack"
        if chosen == "gpu":
            raise TflatError("host-cpu has no GPU delegate: use --delegate xnnpack or cpu")
        return host_device_id(threads), chosen, "xnnpack"
    if device.startswith("android:"):
        chosen = delegate or "gpu"
        return device, chosen, "tflite_gpu" if chosen == "gpu" else "xnnpack"
    raise TflatError(f"cannot calibrate {device!r}: use host-cpu or android:<serial>")


def calibrate(
    device: str = "host-cpu",
    *,
    minutes: float = 20.0,
    db_url: str | None = None,
    threads: int = 1,
    delegate: str | None = None,
    work_dir: Path | None = None,
    prior_models: Sequence[Path] = (),
    plans: Sequence[tuple[str, str | Path, float]] | None = None,
    adaptive: bool = True,
    max_models: int | None = None,
    max_op_flops: float = 2e9,
    repeats: int = 30,
    warmup: int = 5,
    seed: int = 0,
    runner: Runner | None = None,
    runner_options: dict[str, Any] | None = None,
    progress: Callable[[CalibrationProgress], None] | None = None,
) -> CalibrationResult:
    """Calibrate ``device`` within ``minutes`` and save its predictor in the database.

    Resumable: specs already measured on this device with these settings are skipped, so a
    second run continues where the first stopped. ``plans`` replaces the phases
    (name, plan, share of time); ``max_models`` caps what this run measures (tests).
    ``runner`` replaces the device's runner (a phone test double). Raises DeviceError when
    the device cannot be used, StoreError when the database fails.
    """
    from tflat.bench import RunSettings, get_runner
    from tflat.store import RuntimeKey, default_url, open_store

    if minutes <= 0:
        raise TflatError(f"--minutes must be positive, got {minutes:g}")
    device_id, chosen_delegate, rules = device_and_rules(device, threads, delegate)
    start = time.monotonic()
    budget_s = minutes * 60.0
    reserve_s = min(90.0, max(8.0, 0.12 * budget_s))
    state = RunState(start=start, budget_s=budget_s, measure_until=start + budget_s - reserve_s)
    url = db_url or default_url()
    work = Path(work_dir) if work_dir is not None else default_work_dir(device_id)
    owns_runner = runner is None
    if runner is None:
        options = dict(runner_options or {})
        if device_id.startswith("host-cpu"):
            from tflat.bench.speed import CALIBRATE_WAIT_FAST_S

            options["threads"] = threads
            options.setdefault("wait_fast_s", CALIBRATE_WAIT_FAST_S)
        runner = get_runner(
            device_id if device_id.startswith("android:") else "host-cpu", **options
        )
    settings = RunSettings(
        delegate=chosen_delegate,  # type: ignore[arg-type]
        threads=threads,
        warmup=warmup,
        repeats=repeats,
    )
    store = open_store(url)
    try:
        info = runner.device_info()
        store.add_device(replace(info, device_id=device_id), source="calibrate")
        rt = runner.runtime_info()
        key = RuntimeKey(rt.runtime, rt.version, settings.delegate, settings.precision, threads)
        target = RunTarget(store, runner, settings, key, device_id, work)
        run = Session(target, state, progress, max_models)
        run.watch.seed_reference()
        overhead_ms = run.overhead()
        cache = FeatureCache(rules)
        for name, plan, share in plans if plans is not None else _default_phases(prior_models):
            if run.out_of_time():
                break
            state.phase = name
            phase_until = min(state.measure_until, time.monotonic() + share * budget_s)
            if plan == NETWORKS_PLAN:
                with run.watch.patient():
                    run.measure_networks(phase_until)
            else:
                run.measure_specs(run.plan_specs(plan, seed, max_op_flops), phase_until)
                state.cv = run.retrain(cache, overhead_ms, seed)
            state.phases_done.append(name)
        round_no = 0
        while adaptive and not run.out_of_time() and state.cv is not None:
            round_no += 1
            state.phase = f"adaptive-{round_no}"
            new = run.adaptive_specs(cache, overhead_ms, seed + round_no, max_op_flops)
            if not new:
                break
            run.measure_specs(new, state.measure_until)
            with run.watch.patient():
                run.remeasure_slow(RECHECK_BATCH)
            state.cv = run.retrain(cache, overhead_ms, seed)
            state.phases_done.append(state.phase)
        overhead_ms = min(overhead_ms, run.overhead())
        state.phase = "training"
        run.report("final training")
        rows = training_rows(run.records(), cache, overhead_ms, run.speed())
        if not rows:
            raise DeviceError(f"{device_id}: no successful measurements to train on")
        cv = cross_validate(rows, seed=seed)
        state.cv = cv
        predictor = fit_predictor(
            device_id,
            rows,
            overhead_ms=overhead_ms,
            rules=rules,
            cv=cv,
            provenance={
                "source": "tflat calibrate",
                "device": device_id,
                "runtime": key.to_dict(),
                "statistic": f"minimum of {repeats} timed runs",
                "rows": len(rows),
                "remeasured_slow_time_specs": state.rechecked,
                "speed_reference": run.watch.note(),
                "reference_fast_ms": run.speed().fast_ms,
            },
        )
        whole = fit_whole_model(predictor, run.networks())
        predictor.provenance["whole_model"] = whole
        bundle = predictor.to_bundle()
        store.save_predictor(device_id, bundle, provenance=bundle["provenance"])
        state.phase = "done"
        run.report("predictor saved")
        return CalibrationResult(
            device_id=device_id,
            db_url=url,
            rules=rules,
            settings={**settings.key(), "repeats": repeats, "warmup": warmup},
            models_measured=state.measured,
            models_in_db=state.in_db,
            failed=state.failed,
            overhead_ms=overhead_ms,
            cv=cv,
            phases_done=tuple(state.phases_done),
            stopped_by_budget=state.stopped_by_budget,
            elapsed_s=time.monotonic() - start,
            work_dir=str(work),
            trained_kinds=tuple(sorted(predictor.models)),
            speed_reference=str(predictor.provenance["speed_reference"]),
            reference_fast_ms=predictor.provenance["reference_fast_ms"],
        )
    finally:
        store.close()
        if owns_runner:
            runner.close()


def _default_phases(prior_models: Sequence[Path]) -> list[tuple[str, str | Path, float]]:
    phases: list[tuple[str, str | Path, float]] = [(n, p, s) for n, p, s in PHASES]
    for folder in prior_models:
        phases.insert(2, (f"prior:{Path(folder).name}", _models_plan(Path(folder)), 0.15))
    return phases


def _models_plan(folder: Path) -> str:
    """A [[prior]] plan over a folder of real models (kept in memory as TOML text)."""
    return (
        f'name = "prior-models"\nseed = 5\n[[prior]]\nmodels = "{folder.resolve()}"\nper_row = 1\n'
    )
