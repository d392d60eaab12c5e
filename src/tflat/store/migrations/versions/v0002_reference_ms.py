"""A speed reference beside every measurement: ``reference_ms`` on both measurement tables.

Why: host-cpu's machine switches between a fast and a slow regime every few seconds, so a
minimum means little without how fast the machine was at that moment. The host-cpu worker
times a fixed reference model around each measurement; its minimum (ms) is kept with the
measurement so training labels and whole-model truth can be normalised later. Nullable: older
rows and runners without a reference (Android, imported data) have none.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("measurements", "model_measurements")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("reference_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reference_ms")
