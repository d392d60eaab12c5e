"""The tables of the measurement database, as SQLAlchemy 2 declarative models.

The schema itself is created and changed only by the alembic migrations in
``tflat/store/migrations`` (run by :func:`tflat.store.open_store`); these classes describe the
same tables for queries. Units: every latency column is in milliseconds (``*_ms``), every
sample list is a JSON list of milliseconds, timestamps are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class DeviceRow(Base):
    """A device measurements come from: ``pixel4``, ``host-cpu``, ``android:<serial>``."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    soc: Mapped[str] = mapped_column(String(200), default="")
    gpu: Mapped[str] = mapped_column(String(200), default="")
    os: Mapped[str] = mapped_column(String(200), default="")
    driver: Mapped[str] = mapped_column(String(200), default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RuntimeRow(Base):
    """The software and settings a model ran with. Equal rows mean comparable measurements."""

    __tablename__ = "runtimes"
    __table_args__ = (
        UniqueConstraint(
            "runtime", "version", "delegate", "precision", "threads", "config", name="uq_runtime"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    runtime: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    delegate: Mapped[str] = mapped_column(String(50))
    precision: Mapped[str] = mapped_column(String(20))
    threads: Mapped[int] = mapped_column(Integer)
    #: a free label for settings outside the columns above, e.g. USC's CPU core sets ("1large")
    config: Mapped[str] = mapped_column(String(100), default="")


class OpSpecRow(Base):
    """A single-op benchmark spec: the op kind, its normalized parameters, their stable hash."""

    __tablename__ = "op_specs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    spec_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)


class _Measured:
    """What every measurement row keeps (single-op and whole-model alike): on which device,
    with which runtime settings, when, and its outcome with the figures of its runs."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    runtime_id: Mapped[int] = mapped_column(ForeignKey("runtimes.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    samples_ms: Mapped[list[float]] = mapped_column(JSON)
    median_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    std_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    init_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: the runner's speed reference timed around this measurement (ms), None without one
    reference_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    warmup: Mapped[int] = mapped_column(Integer)
    repeats: Mapped[int] = mapped_column(Integer)


class MeasurementRow(_Measured, Base):
    """One single-op measurement: every timed repetition and its statistics, or the failure."""

    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint("device_id", "runtime_id", "spec_id", name="uq_measurement"),
    )

    spec_id: Mapped[int] = mapped_column(ForeignKey("op_specs.id"))
    model_file: Mapped[str] = mapped_column(Text, default="")


class ModelRow(Base):
    """A whole model. ``key`` is the file's sha256, or ``<source>:<name>`` for imported data."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    family: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    path: Mapped[str] = mapped_column(Text, default="")
    flops: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    n_ops: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: True when the op list kept for this model lists only some of its ops (USC data)
    ops_partial: Mapped[bool] = mapped_column(Boolean, default=False)


class ModelMeasurementRow(_Measured, Base):
    """One whole-model measurement on a device with given settings."""

    __tablename__ = "model_measurements"
    __table_args__ = (
        UniqueConstraint("model_id", "device_id", "runtime_id", name="uq_model_measurement"),
    )

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    source: Mapped[str] = mapped_column(String(200), default="")


class OpProfileRow(Base):
    """One op (or fused GPU kernel) of a whole-model measurement's per-op profile."""

    __tablename__ = "op_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_measurement_id: Mapped[int] = mapped_column(
        ForeignKey("model_measurements.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    node_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    op_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(Text, default="")
    avg_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    first_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    share: Mapped[float | None] = mapped_column(Float, nullable=True)
    kernel_name: Mapped[str] = mapped_column(Text, default="")
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PredictorRow(Base):
    """A trained predictor bundle (JSON text, never a pickle), newest per device wins."""

    __tablename__ = "predictors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(200), index=True)
    bundle: Mapped[str] = mapped_column(Text)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClaimRow(Base):
    """A worker's claim on measuring one spec (see :mod:`tflat.store.claims`)."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("device_id", "runtime_id", "spec_hash", name="uq_claim"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    runtime_id: Mapped[int] = mapped_column(ForeignKey("runtimes.id"))
    spec_hash: Mapped[str] = mapped_column(String(64))
    #: who holds it: ``host:pid:random`` of the worker process
    owner: Mapped[str] = mapped_column(String(200), index=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: the claim lapses at this time unless its owner's heartbeat pushes it forward
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
