"""What a benchmark measured: the records a runner returns and the store keeps.

These sit in the store, below :mod:`tflat.bench`, because the store stores them: a
:class:`Measurement` goes into the database as it was taken, with the device's
:class:`DeviceInfo` and the :class:`RunSettings` it was taken with. Runners
(:mod:`tflat.bench`) make them; nothing here measures. Units: milliseconds everywhere.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "timeout", "unsupported"]


@dataclass(frozen=True)
class RunSettings:
    """How a model is run. Two measurements are comparable only with equal settings."""

    delegate: Literal["xnnpack", "cpu", "gpu"] = "xnnpack"
    threads: int = 1
    precision: Literal["fp32", "fp16"] = "fp32"
    warmup: int = 5
    repeats: int = 30
    timeout_s: float = 120.0

    def key(self) -> dict[str, Any]:
        """The settings that change what is measured (not warm-up, repeats or timeout)."""
        return {"delegate": self.delegate, "threads": self.threads, "precision": self.precision}


@dataclass(frozen=True)
class DeviceInfo:
    """Facts about a device, as far as the runner can read them."""

    device_id: str
    vendor: str = ""
    model: str = ""
    soc: str = ""
    gpu: str = ""
    os: str = ""
    driver: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RuntimeInfo:
    """The software that ran the model."""

    runtime: str  # e.g. "ai-edge-litert" or "benchmark_model"
    version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OpProfileRow:
    """One row of a per-op profile of a whole model (average over the timed runs)."""

    node_index: int | None
    op_type: str
    name: str
    avg_ms: float
    first_ms: float | None = None
    share: float | None = None  # of the total, 0..1
    #: Calls per inference (ops inside loops, delegate kernels run many times); ``avg_ms`` is
    #: per call, so this op's share of one inference is ``avg_ms * times_called``.
    times_called: int = 1


@dataclass(frozen=True)
class ReportedTimings:
    """Aggregates a tool printed instead of every run (``benchmark_model`` prints only these).

    Kept apart from ``Measurement.samples_ms`` so nobody mistakes one average for a run.
    """

    count: int
    avg_ms: float
    min_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None
    first_ms: float | None = None
    median_ms: float | None = None


@dataclass(frozen=True)
class Measurement:
    """One model measured on one device: every timed run in ms (``samples_ms``), or the
    aggregates the runner's tool reported; a failed, unsupported or hung run keeps ``status``
    and ``error`` instead, so nothing is dropped."""

    status: Status
    samples_ms: tuple[float, ...] = ()
    warmup: int = 0
    error: str | None = None
    init_ms: float | None = None
    op_profile: tuple[OpProfileRow, ...] = ()
    #: Set when the runner's tool reports only aggregates (then ``samples_ms`` is empty).
    reported: ReportedTimings | None = None
    #: How fast the device was while this model ran: the minimum time (ms) of the runner's
    #: fixed speed-reference model, timed right around the model's runs (None for runners
    #: without one, e.g. Android). See :mod:`tflat.bench.speed`.
    reference_ms: float | None = None
    #: The share of the timed runs' wall time the runner's process had the CPU (None when the
    #: runner cannot tell). Well under 1: another process took part of the core, which a
    #: short reference cannot see; such a measurement is not trusted as a fast-regime one.
    cpu_share: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and (bool(self.samples_ms) or self.reported is not None)

    @property
    def count(self) -> int:
        """How many timed runs the figures summarise."""
        if self.samples_ms:
            return len(self.samples_ms)
        return self.reported.count if self.reported is not None else 0

    @property
    def median_ms(self) -> float | None:
        if self.samples_ms:
            return statistics.median(self.samples_ms)
        return self.reported.median_ms if self.reported is not None else None

    @property
    def mean_ms(self) -> float | None:
        if self.samples_ms:
            return statistics.fmean(self.samples_ms)
        return self.reported.avg_ms if self.reported is not None else None

    @property
    def std_ms(self) -> float | None:
        if len(self.samples_ms) > 1:
            return statistics.pstdev(self.samples_ms)
        return self.reported.std_ms if self.reported is not None else None

    @property
    def min_ms(self) -> float | None:
        if self.samples_ms:
            return min(self.samples_ms)
        return self.reported.min_ms if self.reported is not None else None
