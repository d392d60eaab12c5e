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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from tflat.errors import StoreError
from tflat.store.records import (
    RuntimeKey,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from tflat.store import schema as sc
    from tflat.store.measurement import DeviceInfo

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything is written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class StoreBase:
    """The engine, the one transaction context manager, devices and runtime settings."""

    def __init__(self, engine: Engine) -> None:
        from sqlalchemy.orm import sessionmaker

        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.url = engine.url.render_as_string(hide_password=True)

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """One transaction; driver errors become StoreError, the transaction rolls back."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._sessions.begin() as session:
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
            row = s.get(sc.DeviceRow, info.device_id)
            if row is None:
                s.add(
                    sc.DeviceRow(
                        id=info.device_id,
                        vendor=info.vendor,
                        model=info.model,
                        soc=info.soc,
                        gpu=info.gpu,
                        os=info.os,
                        driver=info.driver,
                        extra=dict(info.extra),
                        source=source,
                        updated_at=_now(),
                    )
                )
                return
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
        from tflat.store.measurement import DeviceInfo

        with self._tx() as s:
            rows = s.scalars(select(sc.DeviceRow).order_by(sc.DeviceRow.id)).all()
            return [
                DeviceInfo(
                    device_id=r.id,
                    vendor=r.vendor,
                    model=r.model,
                    soc=r.soc,
                    gpu=r.gpu,
                    os=r.os,
                    driver=r.driver,
                    extra=dict(r.extra or {}),
                )
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
