"""Bring a database's schema to the newest revision with the migrations shipped in the package.

Runs alembic programmatically on an open connection, so users need no alembic.ini and every
database, SQLite or PostgreSQL, old or new, ends at the same schema.

Race-safe: several processes may open a new database at once (campaigns sharing it). The
migration runs under a lock held to its commit (SQLite: the write lock its ``BEGIN
IMMEDIATE`` takes; PostgreSQL: a transaction-level advisory lock), and alembic reads the
revision inside it, so the second process finds the schema made and does nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The PostgreSQL advisory lock key migrations hold (any fixed 64-bit number: "tflat" + 1).
MIGRATION_LOCK_KEY = 0x74666C617401


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this tflat."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision a database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    from tflat.store.base import READ_ONLY_OPTION

    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest) in one transaction."""
    from alembic import command

    if current_revision(engine) == head_revision() and revision == "head":
        return
    log.info("migrating %s to %s", engine.url.render_as_string(hide_password=True), revision)
    with engine.begin() as conn:
        _lock(conn)
        command.upgrade(_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database back to ``revision`` ("base" empties it)."""
    from alembic import command

    with engine.begin() as conn:
        _lock(conn)
        command.downgrade(_config(conn), revision)


def _lock(conn: Connection) -> None:
    """Hold the migration lock until this transaction ends (SQLite holds it from BEGIN)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
