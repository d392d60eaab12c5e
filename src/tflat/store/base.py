"""The plumbing every part of the store shares: the engine, one context manager that owns
transactions and turns driver errors into StoreError, devices and runtime settings.

Split from :mod:`tflat.store.db` to keep modules small; :class:`tflat.store.db.Store` is the
class to use, and its contract is written there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from tflat.errors import StoreError
from tflat.store.measurement import DeviceInfo
from tflat.store.records import (
    RuntimeKey,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from tflat.store import schema as sc

log = logging.getLogger(__name__)

#: Execution option of a transaction that only reads (SQLite then begins it without a lock).
READ_ONLY_OPTION = "tflat_read_only"


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything is written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


#: What single-op and whole-model measurements both keep, under the same names in a runner's
#: Measurement, the store's records and its rows.
_TIMING_FIELDS = ("status", "median_ms", "mean_ms", "std_ms", "min_ms", "warmup", "error",
                  "reference_ms")  # fmt: skip


def _timings(source: Any, repeats: int | None = None) -> dict[str, Any]:
    """A row's, a record's or a runner Measurement's timing fields, for a record (a
    Measurement counts its runs: pass ``repeats``)."""
    return {f: getattr(source, f) for f in _TIMING_FIELDS} | {
        "samples_ms": tuple(source.samples_ms or ()),
        "repeats": source.repeats if repeats is None else repeats,
    }


def _timing_columns(source: Any) -> dict[str, Any]:
    """A record's (or values') timing fields as columns: finite floats or NULL, a list of runs."""
    get = source.get if isinstance(source, dict) else lambda f, d=None: getattr(source, f, d)
    samples = [float(x) for x in get("samples_ms", ()) or ()]
    out = {f: _finite(get(f)) for f in (*_TIMING_FIELDS, "init_ms") if f.endswith("_ms")}
    return out | {
        "status": get("status", "ok"),
        "error": get("error"),
        "samples_ms": samples,
        "warmup": int(get("warmup", 0)),
        "repeats": int(get("repeats", len(samples))),
    }


def _same_named(cls: type, source: Any, **given: Any) -> dict[str, Any]:
    """The fields of dataclass ``cls`` that ``source`` has under the same names (a row, another
    record), but those ``given``: what ``cls(**...)`` needs to copy ``source``."""
    read = {f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)}
    return read | given


def _measurement_query(table: Any, measured: Any, measured_id: Any, device_id: str | None) -> Any:
    """Rows of ``table`` (single-op or whole-model measurements) with what they measured
    (``measured`` through the column ``measured_id``) and their runtime, oldest first, of
    ``device_id`` when given."""
    from sqlalchemy import select

    from tflat.store import schema as sc

    q = (
        select(table, measured, sc.RuntimeRow)
        .join(measured, measured.id == measured_id)
        .join(sc.RuntimeRow, sc.RuntimeRow.id == table.runtime_id)
        .order_by(table.id)
    )
    return q if device_id is None else q.where(table.device_id == device_id)


def _measured_on(
    column: Any, table: Any, measured: Any, measured_id: Any, device_id: str, runtime_id: int
) -> Any:
    """``column`` of the rows of ``table`` (single-op or whole-model measurements) taken on
    ``device_id`` with the runtime settings ``runtime_id``, joined to what they measured
    (``measured`` through the column ``measured_id``) so the caller can filter on it."""
    from sqlalchemy import select

    return (
        select(column)
        .select_from(table)
        .join(measured, measured.id == measured_id)
        .where(table.device_id == device_id)
        .where(table.runtime_id == runtime_id)
    )


def rowcount(result: object) -> int:
    """Rows an INSERT, UPDATE or DELETE touched (a cursor result's ``rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class StoreBase:
    """The engine, the one transaction context manager, devices and runtime settings."""

    def __init__(self, engine: Engine) -> None:
        from sqlalchemy.orm import sessionmaker

        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        reader = engine.execution_options(**{READ_ONLY_OPTION: True})
        self._read_sessions = sessionmaker(reader, expire_on_commit=False)
        self.url = engine.url.render_as_string(hide_password=True)

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction; driver errors become StoreError, the transaction rolls back.

        On SQLite a transaction takes the write lock when it begins (several processes may
        share the file); ``read_only=True`` is for one that never writes, which then waits
        for nobody and keeps no other process waiting.
        """
        from sqlalchemy.exc import SQLAlchemyError

        sessions = self._read_sessions if read_only else self._sessions
        try:
            with sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.url}: {_first_line(exc)}") from exc

    def _insert(self, session: Session, table: Any) -> Any:
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- devices and runtimes ------------------------------------------------------------

    def add_device(self, info: DeviceInfo, *, source: str = "") -> None:
        """Add a device, or update its facts (non-empty values win over stored ones)."""
        from tflat.store import schema as sc

        with self._tx() as s:
            # insert-or-nothing, then update: two campaigns starting at once on PostgreSQL
            # would both see no row and one would fail on the primary key
            facts = _same_named(DeviceInfo, info, extra=dict(info.extra))
            del facts["device_id"]
            values = {"id": info.device_id, "source": source, "updated_at": _now(), **facts}
            stmt = self._insert(s, sc.DeviceRow.__table__).values(**values)
            if rowcount(s.execute(stmt.on_conflict_do_nothing())) == 1:
                return
            row = s.get(sc.DeviceRow, info.device_id)
            assert row is not None
            for name in ("vendor", "model", "soc", "gpu", "os", "driver"):
                value = getattr(info, name)
                if value:
                    setattr(row, name, value)
            if info.extra:
                row.extra = {**(row.extra or {}), **info.extra}
            if source and not row.source:
                row.source = source
            row.updated_at = _now()

    def devices(self) -> list[DeviceInfo]:
        from sqlalchemy import select

        from tflat.store import schema as sc

        with self._tx() as s:
            rows = s.scalars(select(sc.DeviceRow).order_by(sc.DeviceRow.id)).all()
            return [
                DeviceInfo(**_same_named(DeviceInfo, r, device_id=r.id, extra=dict(r.extra or {})))
                for r in rows
            ]

    def runtime_id(self, key: RuntimeKey) -> int:
        """The id of a runtime-settings row, created when new."""
        with self._tx() as s:
            return self._runtime_id(s, key)

    def _runtime_id(self, s: Session, key: RuntimeKey) -> int:
        from sqlalchemy import select

        from tflat.store import schema as sc

        cols = sc.RuntimeRow
        where = (
            (cols.runtime == key.runtime)
            & (cols.version == key.version)
            & (cols.delegate == key.delegate)
            & (cols.precision == key.precision)
            & (cols.threads == key.threads)
            & (cols.config == key.config)
        )
        found = s.scalar(select(cols.id).where(where))
        if found is not None:
            return int(found)
        stmt = (
            self._insert(s, sc.RuntimeRow.__table__)
            .values(**key.to_dict())
            .on_conflict_do_nothing()
        )
        s.execute(stmt)
        return int(s.scalars(select(cols.id).where(where)).one())


def _device_row(device_id: str) -> sc.DeviceRow:
    from tflat.store import schema as sc

    return sc.DeviceRow(
        id=device_id,
        vendor="",
        model="",
        soc="",
        gpu="",
        os="",
        driver="",
        extra={},
        source="",
        updated_at=_now(),
    )


def _runtime_key(rt: sc.RuntimeRow) -> RuntimeKey:
    return RuntimeKey(rt.runtime, rt.version, rt.delegate, rt.precision, rt.threads, rt.config)
