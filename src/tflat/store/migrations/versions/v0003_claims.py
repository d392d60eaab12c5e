"""Claims: which worker is measuring which spec, so campaigns sharing a database divide the work.

Why: several ``tflat bench`` or ``tflat calibrate`` processes (on one host or several) may
measure into one database. Before measuring a spec a worker claims it: one row per (device,
runtime settings, spec hash), naming its owner and when the claim expires. A live worker keeps
pushing ``expires_at`` forward (a heartbeat); the claim of a worker that died expires and
another takes it over. A measured spec's claim is deleted. Spec hashes, not spec ids: a claim
may come before the spec's row (calibration stores specs with their first measurement).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(200), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("runtime_id", sa.Integer(), sa.ForeignKey("runtimes.id"), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("claimed_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.UniqueConstraint("device_id", "runtime_id", "spec_hash", name="uq_claim"),
    )
    op.create_index("ix_claims_owner", "claims", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_claims_owner", table_name="claims")
    op.drop_table("claims")
