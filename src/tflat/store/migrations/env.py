"""Alembic environment for tflat's database, run programmatically by tflat.store.migrate.

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``, so
users never need an alembic.ini; offline (SQL script) mode is not supported.
"""

from __future__ import annotations

from alembic import context

from tflat.store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("tflat migrations run through tflat.store.open_store, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
