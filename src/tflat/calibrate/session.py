"""One calibration run: what it has measured, what to measure next, and the state it reports.

Every measurement goes through :mod:`tflat.bench.campaign` (the one measuring loop): single-op
specs stream in as they are generated, batch by batch, and the campaign stops when the time
budget says so; re-checks (the invoke-overhead probes, specs measured while the machine was
slow, the networks' rounds, speed anchors) keep a new measurement only where it is lower. The
session adds what calibration needs around it: the budget, the speed reference, progress.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.bench.campaign import BenchItem, bench_model, run_campaign
from tflat.bench.speed import is_fast, normalised_ms
from tflat.calibrate.networks import all_network_keys, network_file, network_record
from tflat.calibrate.speed import ANCHOR_EVERY, RecordSpeed, RunTarget, SpeedWatch
from tflat.calibrate.training import (
    CvReport,
    FeatureCache,
    adaptive_errors,
    cross_validate,
    probe_specs,
    training_rows,
)
from tflat.errors import DeviceError, SpecError, TflatError

if TYPE_CHECKING:
    from tflat.bench.campaign import Progress
    from tflat.model.spec import OpSpec
    from tflat.store.measurement import Measurement

log = logging.getLogger(__name__)

ADAPTIVE_BATCH = 120
#: Rounds over all networks in the networks phase; each network keeps its fastest round.
NETWORK_ROUNDS = 3
#: Per adaptive round, how many specs measured while the machine was slow are measured again.
RECHECK_BATCH = 40
#: A measurement counts as taken on a slow machine above this speed factor.
SLOW_FACTOR = 1.15
#: Single-op models are generated this many at a time, just before they are measured.
GENERATE_BATCH = 24


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


@dataclass
class RunState:
    """The mutable bookkeeping of one run (the session's and ``calibrate``'s only)."""

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


class Session:
    """One calibration run's access to the store, the runner and the work folder."""

    def __init__(
        self,
        target: RunTarget,
        state: RunState,
        progress: Callable[[CalibrationProgress], None] | None,
        max_models: int | None,
    ) -> None:
        t = target
        self.store, self.runner, self.settings, self.key = t.store, t.runner, t.settings, t.key
        self.device_id, self.work = t.device_id, t.work
        self.state = state
        self.progress = progress
        self.max_models = max_models
        self.watch = SpeedWatch(target)
        state.done = t.store.measured_spec_hashes(t.device_id, t.key)
        state.in_db = len(t.store.measured_spec_hashes(t.device_id, t.key, include_failed=False))

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
        specs = [s for s in loaded.expand().specs if spec_flops(s) <= max_op_flops]
        for s in specs:
            self.state.specs.setdefault(s.spec_hash, s)
        todo = [s for s in specs if s.spec_hash not in self.state.done]
        order = np.random.default_rng(seed).permutation(len(todo))
        return [todo[int(i)] for i in order]

    def overhead(self) -> float:
        """The fixed cost of invoking a one-op model: the minimum over near-empty probes."""
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

        def lower(item: BenchItem, m: Measurement) -> bool:
            old = stored.get(item.spec.spec_hash)
            return m.ok and m.min_ms is not None and (old is None or m.min_ms < old)

        self._campaign(self._items(probes), keep=lower)
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
        """Measure the specs not measured yet, generating their models batch by batch; a
        counted phase stops at ``until`` or when the budget is spent."""
        todo = {s.spec_hash: s for s in specs if s.spec_hash not in self.state.done}
        if todo and count and self.watch.needs_anchor():
            self.watch.anchor()

        def stop() -> bool:
            return count and (self.out_of_time() or time.monotonic() >= until)

        def after(p: Progress) -> None:
            if p.item is not None and p.measurement is not None:
                self._measured(todo[p.item.spec.spec_hash], p.measurement, count)

        self._campaign(self._items(list(todo.values()), stop), stop=stop, progress=after)

    def _campaign(
        self,
        items: Iterator[BenchItem],
        *,
        stop: Callable[[], bool] | None = None,
        keep: Callable[[BenchItem, Measurement], bool] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> int:
        """Measure ``items`` through the campaign under this run's device id and settings;
        returns how many measurements were stored."""

        def seen(p: Progress) -> None:
            if p.measurement is not None:
                self.watch.saw(p.measurement)
            if progress is not None:
                progress(p)

        result = run_campaign(
            self.store, self.runner, items, self.settings,
            device_id=self.device_id, stop=stop, keep=keep, progress=seen,
        )  # fmt: skip
        return result.stored

    def _items(
        self, specs: Sequence[OpSpec], stop: Callable[[], bool] | None = None
    ) -> Iterator[BenchItem]:
        """The specs' models, generated :data:`GENERATE_BATCH` at a time as the campaign
        reaches them (none once ``stop()`` says so); specs that cannot be built are left out."""
        from tflat.plans import generate, model_path
        from tflat.store import SpecRecord

        for first in range(0, len(specs), GENERATE_BATCH):
            if stop is not None and stop():
                return
            batch = specs[first : first + GENERATE_BATCH]
            bad = {label for label, _ in generate(batch, self.work).failed}
            for spec in batch:
                if spec.label not in bad:
                    record = SpecRecord(spec.spec_hash, spec.kind, dict(spec.params))
                    yield BenchItem(self.work / model_path(spec), record)

    def _measured(self, spec: OpSpec, m: Measurement, count: bool) -> None:
        """The bookkeeping after one spec is measured (and stored)."""
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
            if self.state.measured % ANCHOR_EVERY == 0 and self.watch.needs_anchor():
                self.watch.anchor()

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
            for k in all_network_keys()
            if not self.store.has_model_measurement(k, self.device_id, self.key)
        ]
        best: dict[str, tuple[bool, float]] = {}
        for round_no in range(NETWORK_ROUNDS):
            for key in todo:
                if self.out_of_time() or time.monotonic() >= until:
                    return
                try:
                    path = network_file(self.work, key)
                except SpecError as exc:
                    log.warning("network %s cannot be built: %s", key, exc)
                    continue
                if self.watch.needs_anchor():
                    self.watch.anchor()  # networks take long: the machine's speed read beside each
                m = self._measure_network(key, path, best, first=round_no == 0)
                if not m.ok or m.min_ms is None:
                    if round_no == 0:
                        log.info("%s: %s (%s)", key, m.status, m.error)
                    continue
                if round_no == 0:
                    self.state.networks += 1
                self.report(f"network {key} (round {round_no + 1}): {m.min_ms:.3f} ms")

    def _measure_network(
        self, key: str, path: Path, best: dict[str, tuple[bool, float]], *, first: bool
    ) -> Measurement:
        """Measure one network; store it when it beats its best round so far (a failure only
        in the first round)."""

        def keep(m: Measurement) -> bool:
            if not m.ok or m.min_ms is None:
                return first
            fast = self.watch.fast_ms()
            norm = normalised_ms(m.min_ms, m.reference_ms, fast)
            value = (not is_fast(m.reference_ms, fast), norm)
            if key in best and value >= best[key]:
                return False
            best[key] = value
            return True

        r = bench_model(self.store, self.runner, path, self.settings, profile=False,
                        record=network_record(key, path), source="tflat calibrate",
                        device_id=self.device_id, keep=keep)  # fmt: skip
        assert r.measurement is not None  # measured: keep asks, never the store
        self.watch.saw(r.measurement)
        return r.measurement

    def networks(self) -> list[tuple[Any, float]]:
        """(graph, measured ms / slowdown) of every zoo and synthetic network measured with
        these settings."""
        from tflat.model import read_model

        known = set(all_network_keys())
        speed = self.speed()
        out = []
        for rec in self.store.model_measurements(self.device_id, with_profile=False):
            if rec.runtime != self.key or rec.status != "ok" or rec.min_ms is None:
                continue
            if rec.model.key not in known:
                continue
            ms = float(rec.min_ms) / speed.factor_for(rec)
            out.append((read_model(network_file(self.work, rec.model.key)), ms))
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
        speed = self.speed()
        slow = sorted(
            (r for r in self.records() if speed.factor_for(r) > SLOW_FACTOR),
            key=lambda r: -speed.factor_for(r),
        )[:limit]
        stored = {r.spec.spec_hash: r for r in slow}
        specs = [self.state.specs[h] for h in stored if h in self.state.specs]

        def lower(item: BenchItem, m: Measurement) -> bool:
            rec = stored[item.spec.spec_hash]
            return m.ok and m.min_ms is not None and rec.min_ms is not None and speed.beats(m, rec)

        improved = self._campaign(
            self._items(specs), stop=lambda: time.monotonic() >= self.state.measure_until,
            keep=lower,
        )  # fmt: skip
        self.state.rechecked += len(slow)
        if slow:
            self.report(f"measured {len(slow)} slow-time specs again, {improved} lower")
        return improved

    def speed(self) -> RecordSpeed:
        """Each measurement's slowdown (see :meth:`SpeedWatch.speed`)."""
        return self.watch.speed(self.records())

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
        done = self.state.done
        return [s for s in new if s.spec_hash not in done and spec_flops(s) <= max_op_flops]


def spec_flops(spec: OpSpec) -> float:
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
