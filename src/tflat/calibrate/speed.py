"""How fast the machine was while a calibration measured: references, anchors, patience.

Why: on a shared machine the same op runs 10-40 % slower while other jobs load the cores, and
calibration lasts minutes. A runner with a speed reference (host-cpu, :mod:`tflat.bench.speed`)
times it around every model; for one without (a phone), an anchor model is measured every
:data:`ANCHOR_EVERY` models. Training divides each label by the slowdown of its moment
(:class:`RecordSpeed`); raw figures stay in the database as measured.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.bench.campaign import bench_model
from tflat.bench.speed import REFERENCE_SPEC, fast_reference, normalised_ms, slowdown

if TYPE_CHECKING:
    from tflat.bench import Runner
    from tflat.model.spec import OpSpec
    from tflat.store import RuntimeKey, Store
    from tflat.store.measurement import Measurement, RunSettings

log = logging.getLogger(__name__)

#: Measure the speed reference (anchor) after this many models.
ANCHOR_EVERY = 20


#: The speed reference measured every few models: a mid-size convolution (~15 MFLOPs).
ANCHOR_SPEC: tuple[str, dict[str, Any]] = (
    "CONV_2D",
    {"input_h": 28, "input_w": 28, "cin": 32, "cout": 32, "kernel": 3},
)
ANCHOR_FAMILY = "tflat-anchor"


def anchor_spec() -> OpSpec:
    from tflat.model.spec import OpSpec

    return OpSpec(*ANCHOR_SPEC)


class SpeedReference:
    """How fast the machine was when each measurement was taken, from the anchor's timings.

    Why: on a shared machine the same op runs 10-40 % slower while other jobs load the cores,
    and calibration lasts minutes. The anchor, measured every few models, gives a factor
    ``anchor now / anchor at its best`` (its 10th percentile) that training divides out, so
    labels describe the machine unloaded. Raw figures stay in the database as measured.
    """

    def __init__(self, anchors: Sequence[tuple[datetime, float]]) -> None:
        import numpy as np

        self.anchors = sorted(anchors)
        mins = [ms for _, ms in self.anchors]
        self.best_ms = float(np.quantile(mins, 0.1)) if mins else math.nan

    def factor(self, when: datetime) -> float:
        """Slowdown at ``when``: the faster of the anchors just before and after it (1 if none)."""
        import bisect

        if not self.anchors or not self.best_ms > 0:
            return 1.0
        times = [t for t, _ in self.anchors]
        i = bisect.bisect_left(times, when)
        near = [self.anchors[j][1] for j in (i - 1, i) if 0 <= j < len(self.anchors)]
        return float(min(max(min(near) / self.best_ms, 0.9), 3.0))


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

    def beats(self, m: Measurement, rec: Any) -> bool:
        """Whether a new measurement beats a stored one: both normalised by their own
        reference where the new one has a reference; raw minimums otherwise (anchors date
        only the old)."""
        assert m.min_ms is not None
        if m.reference_ms is None:
            return bool(m.min_ms < rec.min_ms)
        new = normalised_ms(m.min_ms, m.reference_ms, self.fast_ms)
        return bool(new < rec.min_ms / self.factor_for(rec))


@dataclass(frozen=True)
class RunTarget:
    """Where one calibration run measures: the database, the device's runner and its settings,
    the runtime key and device id its measurements are stored under, the work folder."""

    store: Store
    runner: Runner
    settings: RunSettings
    key: RuntimeKey
    device_id: str
    work: Path


class SpeedWatch:
    """A calibration run's view of the machine's speed: whether the runner times its own
    reference, the anchors measured when it does not, and the slowdown of each measurement."""

    def __init__(self, target: RunTarget) -> None:
        self.target = target
        #: the runner timed a speed reference with a measurement of this run
        self.has_reference = False

    def saw(self, m: Measurement) -> None:
        """Note a measurement of this run (does the runner time a reference with it?)."""
        if m.reference_ms is not None:
            self.has_reference = True

    @contextmanager
    def patient(self) -> Iterator[None]:
        """Wait the full time for the fast regime meanwhile: for the few measurements that
        matter one by one (networks, the re-measured slowest specs), not the thousands of
        single-op labels."""
        from tflat.bench.speed import WAIT_FAST_S

        before = getattr(self.target.runner, "wait_fast_s", None)
        if before is None:
            yield
            return
        self.target.runner.wait_fast_s = WAIT_FAST_S  # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.target.runner.wait_fast_s = before  # type: ignore[attr-defined]

    def needs_anchor(self) -> bool:
        """Anchors only for runners without a per-measurement reference (e.g. Android)."""
        return not self.has_reference

    def seed_reference(self) -> None:
        """Give the runner the reference readings stored by earlier runs (a resumed run then
        gates on the fast regime from its first model)."""
        add = getattr(self.target.runner, "add_reference_readings", None)
        if add is None:
            return
        add(self.target.store.reference_readings(self.target.device_id))

    def fast_ms(self) -> float | None:
        fast = getattr(self.target.runner, "fast_reference_ms", None)
        return float(fast) if isinstance(fast, (int, float)) else None

    def note(self) -> str:
        if self.has_reference:
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
        path = self.target.work / model_path(spec)
        if not path.exists():
            generate([spec], self.target.work)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        record = ModelRecord(
            key=f"anchor:{spec.spec_hash}:{stamp}",
            name=f"speed reference {spec.label}",
            family=ANCHOR_FAMILY,
            source="tflat calibrate speed reference",
            path=str(path),
        )
        t = self.target
        r = bench_model(t.store, t.runner, path, t.settings, profile=False, record=record,
                        source="anchor", device_id=t.device_id, keep=lambda m: m.ok)  # fmt: skip
        if not r.stored and r.measurement is not None:
            log.info("speed reference failed: %s", r.measurement.error)

    def speed(self, records: Sequence[Any]) -> RecordSpeed:
        """Each measurement's slowdown: its own reference reading where it has one, else the
        anchors around its time (databases from before the per-measurement reference).
        ``records`` are this run's single-op measurements."""
        t = self.target
        models = [
            rec
            for rec in t.store.model_measurements(t.device_id, with_profile=False)
            if rec.runtime == t.key and rec.status == "ok" and rec.min_ms is not None
        ]
        anchors = [
            (rec.created_at, float(rec.min_ms))
            for rec in models
            if rec.model.family == ANCHOR_FAMILY and rec.min_ms is not None
        ]
        measured = [*records, *(r for r in models if r.model.family != ANCHOR_FAMILY)]
        return RecordSpeed(measured, anchors)
