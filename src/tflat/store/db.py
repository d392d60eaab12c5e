"""The measurement database behind one SQLAlchemy engine (SQLite file or PostgreSQL server).

Contract of :class:`Store`:

* Units: milliseconds in every ``*_ms`` value; timestamps are timezone-aware UTC.
* Every write method is one transaction: a measurement row and its samples (and a whole-model
  measurement and its per-op profile) are committed together or not at all, so a crash or a
  ``kill -9`` never leaves a partial row.
* Single-op measurements are unique per (device, runtime settings, spec): adding one that exists
  is a no-op unless ``replace=True``.
* Every database failure (cannot connect, migrate, read or write) raises
  :class:`~tflat.errors.StoreError`; no SQLAlchemy exception escapes.
* Campaigns sharing the database divide specs through claims (:mod:`tflat.store.claims`).
* Every method opens its own session, so threads may call them (the claims heartbeat does);
  what they return never holds a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tflat.store.base import (
    _device_row,
    _measured_on,
    _measurement_query,
    _now,
    _runtime_key,
    _timing_columns,
    _timings,
    _utc,
)
from tflat.store.claims import ClaimMethods
from tflat.store.models import ModelMethods
from tflat.store.records import (
    DeviceStats,
    MeasurementRecord,
    RuntimeKey,
    SpecRecord,
    StoreStats,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tflat.store.measurement import Measurement

log = logging.getLogger(__name__)


class Store(ModelMethods, ClaimMethods):
    """The measurement database. Open with :func:`tflat.store.open_store`; see module doc."""

    # -- single-op specs and measurements ------------------------------------------------

    def add_specs(self, specs: Iterable[SpecRecord]) -> int:
        """Add specs not stored yet (by hash); returns how many were new."""
        from sqlalchemy import func, select

        from tflat.store import schema as sc

        rows = {sp.spec_hash: sp for sp in specs}
        if not rows:
            return 0
        with self._tx() as s:
            before = s.scalar(select(func.count()).select_from(sc.OpSpecRow)) or 0
            values = [
                {"spec_hash": sp.spec_hash, "kind": sp.kind, "params": sp.params}
                for sp in rows.values()
            ]
            for start in range(0, len(values), 500):
                stmt = self._insert(s, sc.OpSpecRow.__table__).on_conflict_do_nothing(
                    index_elements=["spec_hash"]
                )
                s.execute(stmt, values[start : start + 500])
            after = s.scalar(select(func.count()).select_from(sc.OpSpecRow)) or 0
            return int(after - before)

    def measured_spec_hashes(
        self, device_id: str, runtime: RuntimeKey, *, include_failed: bool = True
    ) -> set[str]:
        """Hashes of the specs measured on a device with these settings (what resume skips)."""
        from tflat.store import schema as sc

        rows = sc.MeasurementRow
        with self._tx() as s:
            rid = self._runtime_id(s, runtime)
            q = _measured_on(
                sc.OpSpecRow.spec_hash, rows, sc.OpSpecRow, rows.spec_id, device_id, rid
            )
            if not include_failed:
                q = q.where(sc.MeasurementRow.status == "ok")
            return set(s.scalars(q).all())

    def add_measurement(
        self,
        device_id: str,
        runtime: RuntimeKey,
        spec: SpecRecord,
        measurement: Measurement,
        *,
        model_file: str = "",
        replace: bool = False,
    ) -> bool:
        """Store a runner's measurement of one spec; returns False if one existed (kept)."""
        record = MeasurementRecord(
            device_id=device_id,
            runtime=runtime,
            spec=spec,
            created_at=_now(),
            init_ms=measurement.init_ms,
            model_file=model_file,
            **_timings(measurement, repeats=measurement.count),
        )
        return self.add_measurement_record(record, replace=replace)

    def add_measurement_record(self, record: MeasurementRecord, *, replace: bool = False) -> bool:
        """Store a complete measurement record (importers use this); see add_measurement."""
        with self._tx() as s:
            return self._add_record(s, record, replace)

    def add_measurement_records(
        self, records: Iterable[MeasurementRecord], *, replace: bool = False
    ) -> int:
        """Store many records in one transaction; returns how many were written."""
        with self._tx() as s:
            return sum(self._add_record(s, r, replace) for r in records)

    def _add_record(self, s: Session, r: MeasurementRecord, replace: bool) -> bool:
        from sqlalchemy import delete, select

        from tflat.store import schema as sc

        if s.get(sc.DeviceRow, r.device_id) is None:
            s.add(_device_row(r.device_id))
            s.flush()
        rid = self._runtime_id(s, r.runtime)
        spec_id = s.scalar(
            select(sc.OpSpecRow.id).where(sc.OpSpecRow.spec_hash == r.spec.spec_hash)
        )
        if spec_id is None:
            spec_row = sc.OpSpecRow(
                spec_hash=r.spec.spec_hash, kind=r.spec.kind, params=r.spec.params
            )
            s.add(spec_row)
            s.flush()
            spec_id = spec_row.id
        match = (
            (sc.MeasurementRow.device_id == r.device_id)
            & (sc.MeasurementRow.runtime_id == rid)
            & (sc.MeasurementRow.spec_id == spec_id)
        )
        if s.scalar(select(sc.MeasurementRow.id).where(match)) is not None:
            if not replace:
                return False
            s.execute(delete(sc.MeasurementRow).where(match))
        s.add(
            sc.MeasurementRow(
                device_id=r.device_id,
                runtime_id=rid,
                spec_id=spec_id,
                model_file=r.model_file,
                created_at=r.created_at,
                **_timing_columns(r),
            )
        )
        return True

    def measurements(
        self, device_id: str | None = None, *, kind: str | None = None, ok_only: bool = False
    ) -> list[MeasurementRecord]:
        """Stored single-op measurements, oldest first."""
        from tflat.store import schema as sc

        rows = sc.MeasurementRow
        q = _measurement_query(rows, sc.OpSpecRow, rows.spec_id, device_id)
        if kind is not None:
            q = q.where(sc.OpSpecRow.kind == kind)
        if ok_only:
            q = q.where(sc.MeasurementRow.status == "ok")
        with self._tx(read_only=True) as s:
            return [
                MeasurementRecord(
                    device_id=m.device_id,
                    runtime=_runtime_key(rt),
                    spec=SpecRecord(sp.spec_hash, sp.kind, dict(sp.params)),
                    created_at=_utc(m.created_at),
                    init_ms=m.init_ms,
                    model_file=m.model_file,
                    **_timings(m),
                )
                for m, sp, rt in s.execute(q).all()
            ]

    def reference_readings(self, device_id: str, *, limit: int = 2000) -> list[float]:
        """The newest ``limit`` speed-reference readings (ms) stored with this device's single-op
        and whole-model measurements, to seed a runner's fast-regime reference."""
        from sqlalchemy import select

        from tflat.store import schema as sc

        out: list[float] = []
        with self._tx(read_only=True) as s:
            for table in (sc.MeasurementRow, sc.ModelMeasurementRow):
                q = (
                    select(table.reference_ms)
                    .where(table.device_id == device_id)
                    .where(table.reference_ms.is_not(None))
                    .order_by(table.id.desc())
                    .limit(limit)
                )
                out.extend(float(v) for v in s.scalars(q).all() if v is not None)
        return out

    def training_rows(self, device_id: str, kind: str | None = None) -> list[MeasurementRecord]:
        """The successful single-op measurements of a device: what a predictor trains on."""
        return self.measurements(device_id, kind=kind, ok_only=True)

    # -- statistics ------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Row counts of each table and per device."""
        from sqlalchemy import case, func, select

        from tflat.store import schema as sc
        from tflat.store.migrate import current_revision

        tables = [
            sc.DeviceRow,
            sc.RuntimeRow,
            sc.OpSpecRow,
            sc.MeasurementRow,
            sc.ModelRow,
            sc.ModelMeasurementRow,
            sc.OpProfileRow,
            sc.PredictorRow,
            sc.ClaimRow,
        ]
        with self._tx(read_only=True) as s:
            counts = {
                t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0)
                for t in tables
            }
            m = sc.MeasurementRow
            single = {
                d: (int(ok or 0), int(bad or 0))
                for d, ok, bad in s.execute(
                    select(
                        m.device_id,
                        func.sum(case((m.status == "ok", 1), else_=0)),
                        func.sum(case((m.status != "ok", 1), else_=0)),
                    ).group_by(m.device_id)
                )
            }
            mm = sc.ModelMeasurementRow
            whole = {
                d: n
                for d, n in s.execute(select(mm.device_id, func.count()).group_by(mm.device_id))
            }
            prof = {
                d: n
                for d, n in s.execute(
                    select(mm.device_id, func.count(sc.OpProfileRow.id))
                    .join(sc.OpProfileRow, sc.OpProfileRow.model_measurement_id == mm.id)
                    .group_by(mm.device_id)
                )
            }
            ids = s.scalars(select(sc.DeviceRow.id).order_by(sc.DeviceRow.id)).all()
        per_device = tuple(
            DeviceStats(
                device_id=d,
                measurements_ok=single.get(d, (0, 0))[0],
                measurements_failed=single.get(d, (0, 0))[1],
                model_measurements=int(whole.get(d, 0)),
                op_profile_rows=int(prof.get(d, 0)),
            )
            for d in ids
        )
        try:
            revision = current_revision(self._engine)
        except Exception as exc:  # any driver error: reported in the log, the counts still useful
            log.debug("cannot read the schema revision: %s", exc)
            revision = None
        return StoreStats(url=self.url, revision=revision, tables=counts, devices=per_device)
