"""``tflat calibrate``: plan, generate, benchmark, train, evaluate and save a device's predictor.

Why one loop owns all of it: a user with a new device has a time budget, not a plan. The loop
spends the budget in phases (a seed grid of every op kind, the layer shapes of real CNNs,
random samples, then adaptive rounds around the specs the cross-validated predictor gets most
wrong), keeps every measurement in the database the moment it is taken (so a stopped run
resumes where it stopped: measured specs are skipped), and always ends with the best
predictor it can train from everything measured so far, saved for ``tflat estimate``.

The time budget covers the whole command: measuring stops early enough to train, cross-
validate and save. Progress goes to a callback (the CLI draws it): phase, models measured,
current cross-validated error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.bench.speed import REFERENCE_SPEC, fast_reference, is_fast, normalised_ms, slowdown
from tflat.calibrate.training import (
    ANCHOR_FAMILY,
    CvReport,
    FeatureCache,
    SpeedReference,
    adaptive_errors,
    anchor_spec,
    cross_validate,
    fit_predictor,
    fit_whole_model,
    probe_specs,
    training_rows,
)
from tflat.errors import DeviceError, SpecError, TflatError

if TYPE_CHECKING:
    from tflat.bench import Measurement, Runner, RunSettings
    from tflat.model.spec import OpSpec
    from tflat.store import RuntimeKey, Store

log = logging.getLogger(__name__)

#: The plan name of the phase that measures whole synthetic networks (not single ops).
NETWORKS_PLAN = "zoo-networks"
#: Whole networks written by tflat.model.zoo (random weights, never the real models a
#: predictor is checked on): (architecture, width, input size, weights). Measured whole, they
#: fit how single-op kernels compose into a model (the whole-model term).
NETWORKS: tuple[tuple[str, float, int, str], ...] = (
    ("mobilenet", 0.25, 128, "float32"),
    ("mobilenetv2", 0.35, 96, "float16"),
    ("squeezenet_v1_1", 1.0, 128, "float32"),
    ("mobilenetv3_large", 0.5, 128, "float16"),
    ("mobilenet", 0.5, 160, "float16"),
    ("mobilenetv2", 0.5, 128, "float32"),
    ("resnet18", 0.25, 128, "float32"),
    ("mobilenetv3_large", 0.75, 160, "float32"),
    ("mobilenetv2", 0.75, 192, "float16"),
    ("densenet121", 1.0, 96, "float32"),
    ("mobilenet", 0.75, 224, "float32"),
    ("squeezenet_v1_1", 1.0, 224, "float16"),
    ("mobilenetv2", 1.0, 224, "float32"),
    ("resnet18", 0.5, 160, "float16"),
    ("mobilenetv3_large", 1.0, 224, "float16"),
    ("mobilenet", 1.0, 192, "float32"),
)

#: The networks phase measures these and tflat.calibrate.networks.SYNTHETIC (MediaPipe-like
#: fp16/PRELU/5x5 trunks and int8 keyword spotters), interleaved.

#: (phase name, shipped plan, share of the measuring time this phase may use at most)
PHASES: tuple[tuple[str, str, float], ...] = (
    ("seed", "calibrate-seed", 0.25),
    ("networks", NETWORKS_PLAN, 0.12),
    ("prior", "calibrate-prior", 0.25),
    ("random", "calibrate-random", 0.20),
)
ADAPTIVE_BATCH = 120
#: Rounds over all networks in the networks phase; each network keeps its fastest round.
NETWORK_ROUNDS = 3
#: Measure the speed reference (anchor) after this many models.
ANCHOR_EVERY = 20
#: Per adaptive round, how many specs measured while the machine was slow are measured again.
RECHECK_BATCH = 40
#: A measurement counts as taken on a slow machine above this speed factor.
SLOW_FACTOR = 1.15
_GENERATE_BATCH = 24


class RecordSpeed(SpeedReference):
    """Per-measurement slowdowns from the speed reference stored with each measurement.

    A :class:`SpeedReference` (what ``training_rows`` takes) that answers ``factor(created_at)``
    from the ``reference_ms`` of the measurement taken at that moment: its own slowdown over
    the fast-regime reference (:func:`tflat.bench.speed.slowdown`). A measurement without one
    (a database from before the per-measurement reference, or a runner without one) gets the
    anchor interpolation of the base class, so old databases resume as they were.
    """

    def __init__(
        self,
        records: Sequence[Any],
        anchors: Sequence[tuple[datetime, float]] = (),
        fast_ms: float | None = None,
    ) -> None:
        super().__init__(anchors)
        self.readings: dict[datetime, float] = {
            rec.created_at: float(rec.reference_ms)
            for rec in records
            if getattr(rec, "reference_ms", None) is not None
        }
        self.fast_ms = fast_ms if fast_ms is not None else fast_reference(self.readings.values())

    def factor(self, when: datetime) -> float:
        ref = self.readings.get(when)
        return slowdown(ref, self.fast_ms) if ref is not None else super().factor(when)

    def factor_for(self, record: Any) -> float:
        """The slowdown of ``record``: its own reference first, else the anchors'."""
        ref = getattr(record, "reference_ms", None)
        if ref is not None:
            return slowdown(ref, self.fast_ms)
        return super().factor(record.created_at)


@dataclass(frozen=True)
class CalibrationProgress:
    """Where a calibration is: shown after every model and after every retraining."""

    phase: str
    models_measured: int  # in this run
    models_in_db: int  # for this device and settings, this run included
    failed: int
    cv_mape: float | None
    cv_wape: float | None
    elapsed_s: float
    budget_s: float
    message: str = ""


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


@dataclass
class _State:
    """The mutable bookkeeping of one run (never leaves this module)."""

    start: float
    budget_s: float
    measure_until: float
    measured: int = 0
    failed: int = 0
    in_db: int = 0
    networks: int = 0
    rechecked: int = 0
    phase: str = "setup"
    cv: CvReport | None = None
    specs: dict[str, OpSpec] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    phases_done: list[str] = field(default_factory=list)
    stopped_by_budget: bool = False


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
    state = _State(start=start, budget_s=budget_s, measure_until=start + budget_s - reserve_s)
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
        run = _Run(store, runner, settings, key, device_id, work, state, progress, max_models)
        run.seed_reference()
        overhead_ms = run.overhead()
        cache = FeatureCache(rules)
        for name, plan, share in plans if plans is not None else _default_phases(prior_models):
            if run.out_of_time():
                break
            state.phase = name
            phase_until = min(state.measure_until, time.monotonic() + share * budget_s)
            if plan == NETWORKS_PLAN:
                with run.patient():
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
            with run.patient():
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
                "speed_reference": run.speed_note(),
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


class _Run:
    """One calibration run's access to the store, the runner and the work folder."""

    def __init__(
        self,
        store: Store,
        runner: Runner,
        settings: RunSettings,
        key: RuntimeKey,
        device_id: str,
        work: Path,
        state: _State,
        progress: Callable[[CalibrationProgress], None] | None,
        max_models: int | None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.settings = settings
        self.key = key
        self.device_id = device_id
        self.work = work
        self.state = state
        self.progress = progress
        self.max_models = max_models
        self._runner_has_reference = False
        state.done = store.measured_spec_hashes(device_id, key)
        state.in_db = len(store.measured_spec_hashes(device_id, key, include_failed=False))

    def out_of_time(self) -> bool:
        if self.max_models is not None and self.state.measured >= self.max_models:
            return True
        if time.monotonic() >= self.state.measure_until:
            self.state.stopped_by_budget = True
            return True
        return False

    def report(self, message: str = "") -> None:
        if self.progress is None:
            return
        cv = self.state.cv
        self.progress(
            CalibrationProgress(
                phase=self.state.phase,
                models_measured=self.state.measured,
                models_in_db=self.state.in_db,
                failed=self.state.failed,
                cv_mape=cv.mape if cv is not None and not math.isnan(cv.mape) else None,
                cv_wape=cv.wape if cv is not None and not math.isnan(cv.wape) else None,
                elapsed_s=time.monotonic() - self.state.start,
                budget_s=self.state.budget_s,
                message=message,
            )
        )

    def plan_specs(self, plan: str | Path, seed: int, max_op_flops: float) -> list[OpSpec]:
        """The plan's specs not measured yet, shuffled so a cut-short phase covers all kinds."""
        import tomllib

        import numpy as np

        from tflat.plans import load_plan, plan_from_dict

        if isinstance(plan, str) and plan.lstrip().startswith("name ="):
            loaded = plan_from_dict(tomllib.loads(plan), source="calibrate")
        else:
            loaded = load_plan(plan)
        specs = [s for s in loaded.expand().specs if _flops(s) <= max_op_flops]
        for s in specs:
            self.state.specs.setdefault(s.spec_hash, s)
        todo = [s for s in specs if s.spec_hash not in self.state.done]
        order = np.random.default_rng(seed).permutation(len(todo))
        return [todo[int(i)] for i in order]

    def overhead(self) -> float:
        """The fixed cost of invoking a one-op model: the minimum over near-empty probes."""
        from tflat.plans import generate, model_path
        from tflat.store import SpecRecord

        probes = probe_specs()
        self.state.phase = "overhead"
        self.measure_specs(probes, math.inf, count=False)
        # The fixed cost is small and noisy: each run measures the probes again and keeps a
        # new measurement when it is lower (a busy moment must not set it for good).
        stored = {
            r.spec.spec_hash: r.min_ms
            for r in self.store.training_rows(self.device_id)
            if r.runtime == self.key and r.min_ms is not None
        }
        generate(probes, self.work)
        for spec in probes:
            m = self._measure(self.work / model_path(spec))
            old = stored.get(spec.spec_hash)
            if m.ok and m.min_ms is not None and (old is None or m.min_ms < old):
                record = SpecRecord(spec.spec_hash, spec.kind, dict(spec.params))
                self.store.add_measurement(self.device_id, self.key, record, m, replace=True)
        values = [
            r.min_ms
            for r in self.store.training_rows(self.device_id)
            if r.spec.spec_hash in {p.spec_hash for p in probes}
            and r.runtime == self.key
            and r.min_ms is not None
        ]
        if not values:
            raise DeviceError(f"{self.device_id}: the overhead probes could not be measured")
        overhead = float(min(values))
        log.info(
            "%s: invoke overhead %.4f ms (minimum over %d probes)",
            self.device_id,
            overhead,
            len(values),
        )
        return overhead

    def measure_specs(self, specs: Sequence[OpSpec], until: float, *, count: bool = True) -> None:
        from tflat.plans import generate, model_path
        from tflat.store import SpecRecord

        todo = [s for s in specs if s.spec_hash not in self.state.done]
        if todo and count and self.needs_anchor():
            self.anchor()
        for first in range(0, len(todo), _GENERATE_BATCH):
            batch = todo[first : first + _GENERATE_BATCH]
            if count and (self.out_of_time() or time.monotonic() >= until):
                return
            report = generate(batch, self.work)
            bad = {label for label, _ in report.failed}
            for spec in batch:
                if count and (self.out_of_time() or time.monotonic() >= until):
                    return
                if spec.label in bad:
                    continue
                path = self.work / model_path(spec)
                m = self._measure(path)
                record = SpecRecord(spec.spec_hash, spec.kind, dict(spec.params))
                self.store.add_measurement(
                    self.device_id, self.key, record, m, model_file=str(path)
                )
                self.state.done.add(spec.spec_hash)
                self.state.specs.setdefault(spec.spec_hash, spec)
                if m.ok:
                    self.state.in_db += 1
                else:
                    self.state.failed += 1
                    log.info("%s: %s (%s)", spec.label, m.status, m.error)
                if count:
                    self.state.measured += 1
                    if self.state.measured % 10 == 0:
                        self.report()
                    if self.state.measured % ANCHOR_EVERY == 0 and self.needs_anchor():
                        self.anchor()

    def _measure(self, path: Path) -> Measurement:
        """Measure one model; remembers whether the runner times a speed reference with it."""
        m = self.runner.measure(path, self.settings)
        if m.reference_ms is not None:
            self._runner_has_reference = True
        return m

    @contextmanager
    def patient(self) -> Iterator[None]:
        """Wait the full time for the fast regime meanwhile: for the few measurements that
        matter one by one (networks, the re-measured slowest specs), not the thousands of
        single-op labels."""
        from tflat.bench.speed import WAIT_FAST_S

        before = getattr(self.runner, "wait_fast_s", None)
        if before is None:
            yield
            return
        self.runner.wait_fast_s = WAIT_FAST_S  # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.runner.wait_fast_s = before  # type: ignore[attr-defined]

    def needs_anchor(self) -> bool:
        """Anchors only for runners without a per-measurement reference (e.g. Android)."""
        return not self._runner_has_reference

    def seed_reference(self) -> None:
        """Give the runner the reference readings stored by earlier runs (a resumed run then
        gates on the fast regime from its first model)."""
        add = getattr(self.runner, "add_reference_readings", None)
        if add is None:
            return
        add(self.store.reference_readings(self.device_id))

    def _fast_ms(self) -> float | None:
        fast = getattr(self.runner, "fast_reference_ms", None)
        return float(fast) if isinstance(fast, (int, float)) else None

    def speed_note(self) -> str:
        if self._runner_has_reference:
            return (
                "per-measurement reference (tflat.bench.speed: "
                f"{REFERENCE_SPEC[0]} timed around each model, fast regime awaited); labels "
                "divided by reference_ms / the reference's fast-regime time (5th percentile)"
            )
        return (
            f"anchor CONV_2D every {ANCHOR_EVERY} models; labels divided by the slowdown at "
            "their time"
        )

    def anchor(self) -> None:
        """Measure the speed reference now and keep it (one whole-model row per time point)."""
        from datetime import UTC, datetime

        from tflat.plans import generate, model_path
        from tflat.store import ModelRecord

        spec = anchor_spec()
        path = self.work / model_path(spec)
        if not path.exists():
            generate([spec], self.work)
        m = self.runner.measure(path, self.settings)
        if not m.ok:
            log.info("speed reference failed: %s", m.error)
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        record = ModelRecord(
            key=f"anchor:{spec.spec_hash}:{stamp}",
            name=f"speed reference {spec.label}",
            family=ANCHOR_FAMILY,
            source="tflat calibrate speed reference",
            path=str(path),
        )
        self.store.add_model_measurement(record, self.device_id, self.key, m, source="anchor")

    def speed(self) -> RecordSpeed:
        """Each measurement's slowdown: its own reference reading where it has one, else the
        anchors around its time (databases from before the per-measurement reference)."""
        models = [
            rec
            for rec in self.store.model_measurements(self.device_id, with_profile=False)
            if rec.runtime == self.key and rec.status == "ok" and rec.min_ms is not None
        ]
        anchors = [
            (rec.created_at, float(rec.min_ms))
            for rec in models
            if rec.model.family == ANCHOR_FAMILY and rec.min_ms is not None
        ]
        measured = [*self.records(), *(r for r in models if r.model.family != ANCHOR_FAMILY)]
        return RecordSpeed(measured, anchors)

    def measure_networks(self, until: float) -> None:
        """Measure the zoo and synthetic networks not measured yet (on this device and
        settings), in :data:`NETWORK_ROUNDS` rounds that go over all of them in turn.

        Why rounds: a network's time is the target of the whole-model fit, and one reading on
        a busy machine can be off by 20 %; the speed reference corrects it only roughly (a
        0.05 ms convolution and a 10 ms network do not slow down alike). Each network keeps
        its lowest normalised round among those the reference calls fast (any round if none
        is), the way real models are checked, stored as it is taken so that training divides
        it by the slowdown of that moment. A resumed run does not measure again a network
        measured before.
        """
        todo = [
            k
            for k in _all_network_keys()
            if not self.store.has_model_measurement(k, self.device_id, self.key)
        ]
        best: dict[str, tuple[bool, float]] = {}
        for round_no in range(NETWORK_ROUNDS):
            for key in todo:
                if self.out_of_time() or time.monotonic() >= until:
                    return
                try:
                    path = self._network_file(key)
                except SpecError as exc:
                    log.warning("network %s cannot be built: %s", key, exc)
                    continue
                if self.needs_anchor():
                    self.anchor()  # networks take long: the machine's speed read beside each
                m = self._measure(path)
                if not m.ok or m.min_ms is None:
                    if round_no == 0:
                        log.info("%s: %s (%s)", key, m.status, m.error)
                        self._store_network(key, path, m)
                    continue
                fast = self._fast_ms()
                value = (
                    not is_fast(m.reference_ms, fast),
                    normalised_ms(m.min_ms, m.reference_ms, fast),
                )
                if key not in best or value < best[key]:
                    best[key] = value
                    self._store_network(key, path, m)
                if round_no == 0:
                    self.state.networks += 1
                self.report(f"network {key} (round {round_no + 1}): {m.min_ms:.3f} ms")

    def _store_network(self, key: str, path: Path, m: Any) -> None:
        from tflat.model import read_model
        from tflat.store import ModelRecord

        graph = read_model(path)
        zoo = key.startswith("zoo:")
        record = ModelRecord(
            key=key,
            name=key,
            family="tflat-zoo" if zoo else "tflat-synthetic",
            source=f"{'tflat.model.zoo' if zoo else 'tflat.calibrate.networks'} (random weights)",
            path=str(path),
            flops=sum(op.flops for op in graph.ops),
            size_bytes=graph.size_bytes,
            n_ops=len(graph.ops),
        )
        self.store.add_model_measurement(
            record, self.device_id, self.key, m, source="tflat calibrate", replace=True
        )

    def _network_file(self, key: str) -> Path:
        path = self.work / "networks" / f"{key}.tflite"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            data = _build_network(key)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def networks(self) -> list[tuple[Any, float]]:
        """(graph, measured ms / slowdown) of every zoo and synthetic network measured with
        these settings."""
        from tflat.model import read_model

        known = set(_all_network_keys())
        speed = self.speed()
        out = []
        for rec in self.store.model_measurements(self.device_id, with_profile=False):
            if rec.runtime != self.key or rec.status != "ok" or rec.min_ms is None:
                continue
            if rec.model.key not in known:
                continue
            ms = float(rec.min_ms) / speed.factor_for(rec)
            out.append((read_model(self._network_file(rec.model.key)), ms))
        return out

    def retrain(self, cache: FeatureCache, overhead_ms: float, seed: int) -> CvReport | None:
        rows = self._rows(cache, overhead_ms)
        if not rows:
            return self.state.cv
        self.state.cv = cross_validate(rows, seed=seed)
        self.report(f"retrained on {len(rows)} ops")
        return self.state.cv

    def remeasure_slow(self, limit: int) -> int:
        """Measure again the specs measured when the machine was slowest (by their reference,
        or the anchors); keep the new measurement where its normalised minimum (min / slowdown)
        is lower. Returns how many improved."""
        from tflat.plans import generate, model_path
        from tflat.store import SpecRecord

        speed = self.speed()
        slow = sorted(
            (r for r in self.records() if speed.factor_for(r) > SLOW_FACTOR),
            key=lambda r: -speed.factor_for(r),
        )[:limit]
        improved = 0
        for rec in slow:
            if time.monotonic() >= self.state.measure_until:
                break
            spec = self.state.specs.get(rec.spec.spec_hash)
            if spec is None:
                continue
            path = self.work / model_path(spec)
            if not path.exists():
                generate([spec], self.work)
            m = self._measure(path)
            if m.ok and m.min_ms is not None and rec.min_ms is not None and _lower(m, rec, speed):
                record = SpecRecord(spec.spec_hash, spec.kind, dict(spec.params))
                self.store.add_measurement(
                    self.device_id, self.key, record, m, model_file=str(path), replace=True
                )
                improved += 1
        self.state.rechecked += len(slow)
        if slow:
            self.report(f"measured {len(slow)} slow-time specs again, {improved} lower")
        return improved

    def records(self) -> list[Any]:
        """This device's successful measurements taken with these settings."""
        return [r for r in self.store.training_rows(self.device_id) if r.runtime == self.key]

    def _rows(self, cache: FeatureCache, overhead_ms: float) -> list[Any]:
        return training_rows(self.records(), cache, overhead_ms, self.speed())

    def adaptive_specs(
        self, cache: FeatureCache, overhead_ms: float, seed: int, max_op_flops: float
    ) -> list[OpSpec]:
        from tflat.model.spec import OpSpec
        from tflat.plans import adaptive_specs

        cv = self.state.cv
        if cv is None:
            return []
        rows = self._rows(cache, overhead_ms)
        specs = dict(self.state.specs)
        for rec in self.store.training_rows(self.device_id):
            if rec.spec.spec_hash not in specs:
                try:
                    specs[rec.spec.spec_hash] = OpSpec(rec.spec.kind, rec.spec.params)
                except TflatError:
                    continue
        errors = adaptive_errors(rows, cv, specs)
        new = adaptive_specs(errors, ADAPTIVE_BATCH, seed=seed)
        return [s for s in new if s.spec_hash not in self.state.done and _flops(s) <= max_op_flops]


def _lower(m: Measurement, rec: Any, speed: RecordSpeed) -> bool:
    """Whether a new measurement beats a stored one: both normalised by their own reference
    where the new one has a reference; raw minimums otherwise (anchors date only the old)."""
    assert m.min_ms is not None
    if m.reference_ms is None:
        return bool(m.min_ms < rec.min_ms)
    return normalised_ms(m.min_ms, m.reference_ms, speed.fast_ms) < rec.min_ms / speed.factor_for(
        rec
    )


def _network_key(arch: str, width: float, size: int, weights: str) -> str:
    return f"zoo:{arch}:w{width:g}:{size}:{weights}"


def _all_network_keys() -> list[str]:
    """Zoo and synthetic network keys, interleaved so a cut-short phase measures both kinds."""
    from itertools import zip_longest

    from tflat.calibrate.networks import SYNTHETIC, network_key

    zoo = [_network_key(*n) for n in NETWORKS]
    synthetic = [network_key(*n) for n in SYNTHETIC]
    return [k for pair in zip_longest(synthetic, zoo) for k in pair if k is not None]


def _build_network(key: str) -> bytes:
    """The .tflite bytes of a network named by :func:`_all_network_keys`."""
    from tflat.calibrate.networks import build_network
    from tflat.model.zoo import build_model

    family, name, width, size, weights = key.split(":")
    if family == "zoo":
        return build_model(name, width=float(width[1:]), input_size=int(size), weights=weights)
    return build_network(name, float(width[1:]), int(size), weights)


def _flops(spec: OpSpec) -> float:
    """A quick upper bound of a spec's FLOPs, to keep giant layers out of a timed budget."""
    p = spec.params
    h, w = p.get("input_h", 1), p.get("input_w", 1)
    cin = p.get("cin", 1) or 1
    if spec.kind in ("CONV_2D", "TRANSPOSE_CONV"):
        stride = 1 if spec.kind == "TRANSPOSE_CONV" else p.get("stride", 1)
        scale = p.get("stride", 1) ** 2 if spec.kind == "TRANSPOSE_CONV" else 1
        out = (h // stride + 1) * (w // stride + 1) * scale
        groups = p.get("groups", 1) or 1
        return 2.0 * out * p["cout"] * p["kernel_h"] * p["kernel_w"] * cin / groups
    if spec.kind == "FULLY_CONNECTED":
        return 2.0 * p.get("batch", 1) * cin * p["cout"]
    return float(h * w * cin * 8)
