"""Plain records that go into and come out of the store (no SQLAlchemy objects leak out).

Units: milliseconds in every ``*_ms`` field; ``samples_ms`` holds every timed repetition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RuntimeKey:
    """The software and settings a measurement was taken with; equal keys are comparable."""

    runtime: str
    version: str
    delegate: str
    precision: str
    threads: int
    #: a label for settings outside the fields above (e.g. USC's CPU core set "1large")
    config: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SpecRecord:
    """A single-op spec as stored: kind (schema op name), parameters and their stable hash."""

    spec_hash: str
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    """What every stored measurement keeps of its runs (single-op and whole-model alike);
    keyword-only, so the records below keep their own fields first."""

    status: str
    samples_ms: tuple[float, ...]
    median_ms: float | None
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    warmup: int
    repeats: int
    error: str | None = None
    #: the runner's speed reference around this measurement (ms; see Measurement.reference_ms)
    reference_ms: float | None = None


@dataclass(frozen=True)
class MeasurementRecord(_Outcome):
    """A stored single-op measurement with its device, settings and spec."""

    device_id: str
    runtime: RuntimeKey
    spec: SpecRecord
    created_at: datetime
    init_ms: float | None = None
    model_file: str = ""


@dataclass(frozen=True)
class ProfileRecord:
    """One op or fused kernel of a whole-model per-op profile."""

    position: int
    op_type: str
    avg_ms: float | None
    node_index: int | None = None
    name: str = ""
    first_ms: float | None = None
    share: float | None = None
    kernel_name: str = ""
    features: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRecord:
    """A whole model. ``ops_partial``: its stored op profiles list only some of its ops."""

    key: str
    name: str
    family: str = ""
    source: str = ""
    path: str = ""
    flops: int | None = None
    size_bytes: int | None = None
    n_ops: int | None = None
    ops_partial: bool = False


@dataclass(frozen=True)
class ModelMeasurementRecord(_Outcome):
    """A stored whole-model measurement, with its per-op profile when there is one."""

    id: int
    model: ModelRecord
    device_id: str
    runtime: RuntimeKey
    source: str
    created_at: datetime
    profile: tuple[ProfileRecord, ...] = ()


@dataclass(frozen=True)
class PredictorInfo:
    device_id: str
    created_at: datetime
    provenance: dict[str, Any]


@dataclass(frozen=True)
class DeviceStats:
    device_id: str
    measurements_ok: int
    measurements_failed: int
    model_measurements: int
    op_profile_rows: int


@dataclass(frozen=True)
class StoreStats:
    """Row counts of every table, and per device."""

    url: str
    revision: str | None
    tables: dict[str, int]
    devices: tuple[DeviceStats, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
