"""The measurement database: devices, runtime settings, op specs, measurements, models,
per-op profiles and predictor bundles, over SQLite (default) or PostgreSQL.

Importing this package is cheap; SQLAlchemy and alembic load when a store is opened.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.errors import StoreError
from tflat.store.records import (
    DeviceStats,
    MeasurementRecord,
    ModelMeasurementRecord,
    ModelRecord,
    PredictorInfo,
    ProfileRecord,
    RuntimeKey,
    SpecRecord,
    StoreStats,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tflat.store.db import Store

__all__ = [
    "DeviceStats",
    "MeasurementRecord",
    "ModelMeasurementRecord",
    "ModelRecord",
    "PredictorInfo",
    "ProfileRecord",
    "RuntimeKey",
    "SpecRecord",
    "Store",
    "StoreStats",
    "default_url",
    "open_store",
]

log = logging.getLogger(__name__)

#: seconds a writer waits for another process's SQLite lock before failing
SQLITE_BUSY_TIMEOUT_S = 30.0


def default_url() -> str:
    """``TFLAT_DB`` if set, else a SQLite file in the user's data directory."""
    env = os.environ.get("TFLAT_DB", "").strip()
    if env:
        return env
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('tflat', appauthor=False)) / 'tflat.db'}"


def open_store(url: str | None = None, *, migrate: bool = True, create: bool = True) -> Store:
    """Open (and create or migrate to the newest schema) the database at ``url``.

    ``url`` is a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``)
    or a plain file path (taken as SQLite); None means :func:`default_url`. ``create=False``
    refuses a SQLite file that does not exist yet (for commands that only read, where a new
    empty database would hide a mistyped path). Raises StoreError.
    """
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from tflat.store.db import Store
    from tflat.store.migrate import upgrade

    url = _normalize(url or default_url())
    try:
        engine = _engine(url, create=create)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database {url!r}: {exc}") from exc
    try:
        if migrate:
            upgrade(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        where = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"cannot open database {where}: {text[0] if text else exc}") from exc
    return Store(engine)


def _normalize(url: str) -> str:
    if "://" in url:
        return url
    return f"sqlite:///{Path(url).expanduser().resolve()}"


def _engine(url: str, *, create: bool = True) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    from tflat.store.base import READ_ONLY_OPTION

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        if not create and not Path(parsed.database).is_file():
            raise StoreError(f"no database at {parsed.database}")
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of {parsed.database}: {exc}") from exc
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: object) -> None:
        # The sqlite3 module would commit DDL (the migrations) outside any transaction; take
        # over BEGIN so a migration, like a measurement, is all or nothing.
        dbapi_conn.isolation_level = None
        # WAL: readers never block the campaign's writer, and a killed writer leaves the last
        # committed transaction intact. Foreign keys are off in SQLite unless asked for.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        _wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock at BEGIN, waiting up to the busy timeout for it. A
        # plain BEGIN that reads and then writes while another process wrote meanwhile fails
        # at once with "database is locked" (WAL cannot upgrade a stale snapshot), which is
        # how two campaigns on one file used to die. Read-only transactions opt out.
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _wal(cur: Any) -> None:
    """Put the file in WAL mode (once per file: the mode is persistent).

    Switching the journal mode needs the file to itself, and SQLite answers "database is
    locked" at once, without its busy handler, while another connection is creating or
    migrating the same new file; so the switch is retried for up to the busy timeout.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def __getattr__(name: str) -> object:
    if name == "Store":
        from tflat.store.db import Store

        return Store
    raise AttributeError(name)
