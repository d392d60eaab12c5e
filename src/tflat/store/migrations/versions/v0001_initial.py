"""The first schema: devices, runtimes, op specs, measurements, models, profiles, predictors.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("vendor", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("soc", sa.String(200), nullable=False),
        sa.Column("gpu", sa.String(200), nullable=False),
        sa.Column("os", sa.String(200), nullable=False),
        sa.Column("driver", sa.String(200), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_table(
        "runtimes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("runtime", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("delegate", sa.String(50), nullable=False),
        sa.Column("precision", sa.String(20), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("config", sa.String(100), nullable=False),
        sa.UniqueConstraint(
            "runtime", "version", "delegate", "precision", "threads", "config", name="uq_runtime"
        ),
    )
    op.create_table(
        "op_specs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("spec_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
    )
    op.create_index("ix_op_specs_kind", "op_specs", ["kind"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(200), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("runtime_id", sa.Integer(), sa.ForeignKey("runtimes.id"), nullable=False),
        sa.Column("spec_id", sa.Integer(), sa.ForeignKey("op_specs.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("samples_ms", sa.JSON(), nullable=False),
        sa.Column("median_ms", sa.Float(), nullable=True),
        sa.Column("mean_ms", sa.Float(), nullable=True),
        sa.Column("std_ms", sa.Float(), nullable=True),
        sa.Column("min_ms", sa.Float(), nullable=True),
        sa.Column("init_ms", sa.Float(), nullable=True),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("model_file", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("device_id", "runtime_id", "spec_id", name="uq_measurement"),
    )
    op.create_index("ix_measurements_device_id", "measurements", ["device_id"])
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("flops", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("n_ops", sa.Integer(), nullable=True),
        sa.Column("ops_partial", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "model_measurements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("device_id", sa.String(200), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("runtime_id", sa.Integer(), sa.ForeignKey("runtimes.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("samples_ms", sa.JSON(), nullable=False),
        sa.Column("median_ms", sa.Float(), nullable=True),
        sa.Column("mean_ms", sa.Float(), nullable=True),
        sa.Column("std_ms", sa.Float(), nullable=True),
        sa.Column("min_ms", sa.Float(), nullable=True),
        sa.Column("init_ms", sa.Float(), nullable=True),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("model_id", "device_id", "runtime_id", name="uq_model_measurement"),
    )
    op.create_index("ix_model_measurements_model_id", "model_measurements", ["model_id"])
    op.create_index("ix_model_measurements_device_id", "model_measurements", ["device_id"])
    op.create_table(
        "op_profiles",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_measurement_id",
            sa.Integer(),
            sa.ForeignKey("model_measurements.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("node_index", sa.Integer(), nullable=True),
        sa.Column("op_type", sa.String(100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("avg_ms", sa.Float(), nullable=True),
        sa.Column("first_ms", sa.Float(), nullable=True),
        sa.Column("share", sa.Float(), nullable=True),
        sa.Column("kernel_name", sa.Text(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
    )
    op.create_index("ix_op_profiles_model_measurement_id", "op_profiles", ["model_measurement_id"])
    op.create_table(
        "predictors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(200), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_predictors_device_id", "predictors", ["device_id"])


def downgrade() -> None:
    for table in (
        "predictors",
        "op_profiles",
        "model_measurements",
        "models",
        "measurements",
        "op_specs",
        "runtimes",
        "devices",
    ):
        op.drop_table(table)
