"""Whole models, their measurements and per-op profiles, and predictor bundles.

Part of :class:`tflat.store.db.Store` (see its contract); split out to keep modules small.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tflat.errors import StoreError
from tflat.store.base import (
    StoreBase,
    _device_row,
    _finite,
    _measured_on,
    _measurement_query,
    _now,
    _runtime_key,
    _same_named,
    _timing_columns,
    _timings,
    _utc,
)
from tflat.store.records import (
    ModelMeasurementRecord,
    ModelRecord,
    PredictorInfo,
    ProfileRecord,
    RuntimeKey,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tflat.store import schema as sc
    from tflat.store.measurement import Measurement

log = logging.getLogger(__name__)


class ModelMethods(StoreBase):
    """Whole-model measurements, per-op profiles and predictor bundles of the store."""

    # -- whole models ----------------------------------------------------------------------

    def add_model(self, model: ModelRecord) -> int:
        """Add a model (by key) or update its facts; returns its id."""
        with self._tx() as s:
            return self._model_id(s, model)

    def _model_id(self, s: Session, m: ModelRecord) -> int:
        from sqlalchemy import select

        from tflat.store import schema as sc

        row = s.scalars(select(sc.ModelRow).where(sc.ModelRow.key == m.key)).one_or_none()
        if row is None:
            row = sc.ModelRow(**_same_named(ModelRecord, m))
            s.add(row)
            s.flush()
        else:
            row.ops_partial = row.ops_partial or m.ops_partial
            for name in ("family", "path", "flops", "size_bytes", "n_ops"):
                value = getattr(m, name)
                if value not in (None, ""):
                    setattr(row, name, value)
        return int(row.id)

    def has_model_measurement(self, model_key: str, device_id: str, runtime: RuntimeKey) -> bool:
        from tflat.store import schema as sc

        rows = sc.ModelMeasurementRow
        with self._tx() as s:
            rid = self._runtime_id(s, runtime)
            q = _measured_on(rows.id, rows, sc.ModelRow, rows.model_id, device_id, rid)
            return s.scalar(q.where(sc.ModelRow.key == model_key)) is not None

    def add_model_measurement(
        self,
        model: ModelRecord,
        device_id: str,
        runtime: RuntimeKey,
        measurement: Measurement,
        *,
        source: str = "",
        replace: bool = False,
    ) -> bool:
        """Store a whole-model measurement and its per-op profile in one transaction."""
        profile = tuple(
            ProfileRecord(**_same_named(ProfileRecord, p, position=i))
            for i, p in enumerate(measurement.op_profile)
        )
        return (
            self.add_model_measurements(
                [
                    (
                        model,
                        device_id,
                        runtime,
                        {
                            **_timings(measurement, repeats=measurement.count),
                            "init_ms": measurement.init_ms,
                            "source": source,
                        },
                        profile,
                    )
                ],
                replace=replace,
            )[0]
            == 1
        )

    def add_model_measurements(
        self,
        rows: Iterable[
            tuple[ModelRecord, str, RuntimeKey, dict[str, Any], tuple[ProfileRecord, ...]]
        ],
        *,
        replace: bool = False,
    ) -> tuple[int, int]:
        """Store many whole-model measurements (model, device, runtime, values, profile) at once.

        ``values`` holds status, samples_ms, median/mean/std/min_ms, warmup, repeats, source,
        error; a row that exists is kept unless ``replace``. All rows are one transaction.
        Returns (measurements written, profile rows written).
        """
        from sqlalchemy import delete, insert, select

        from tflat.store import schema as sc

        mm = sc.ModelMeasurementRow
        with self._tx() as s:
            model_ids: dict[str, int] = {}
            runtime_ids: dict[RuntimeKey, int] = {}
            devices = set(s.scalars(select(sc.DeviceRow.id)).all())
            pending: list[tuple[dict[str, Any], tuple[ProfileRecord, ...]]] = []
            for model, device_id, runtime, values, profile in rows:
                if model.key not in model_ids:
                    model_ids[model.key] = self._model_id(s, model)
                if runtime not in runtime_ids:
                    runtime_ids[runtime] = self._runtime_id(s, runtime)
                if device_id not in devices:
                    s.add(_device_row(device_id))
                    s.flush()
                    devices.add(device_id)
                row = {
                    "model_id": model_ids[model.key],
                    "device_id": device_id,
                    "runtime_id": runtime_ids[runtime],
                    **_timing_columns(values),
                    "source": values.get("source", ""),
                    "created_at": values.get("created_at") or _now(),
                }
                pending.append((row, profile))
            if not pending:
                return 0, 0
            existing = {
                (m, d, r): i
                for i, m, d, r in s.execute(
                    select(mm.id, mm.model_id, mm.device_id, mm.runtime_id).where(
                        mm.model_id.in_(sorted(set(model_ids.values())))
                    )
                )
            }
            todo: list[tuple[dict[str, Any], tuple[ProfileRecord, ...]]] = []
            for row, profile in pending:
                old = existing.get((row["model_id"], row["device_id"], row["runtime_id"]))
                if old is not None:
                    if not replace:
                        continue
                    s.execute(delete(mm).where(mm.id == old))
                todo.append((row, profile))
            if not todo:
                return 0, 0
            s.execute(insert(mm), [r for r, _ in todo])
            # the unique (model, device, runtime) key maps each new row to its id
            new_ids = {
                (m, d, r): i
                for i, m, d, r in s.execute(
                    select(mm.id, mm.model_id, mm.device_id, mm.runtime_id).where(
                        mm.model_id.in_(sorted(set(model_ids.values())))
                    )
                )
            }
            profile_rows = [
                {
                    "model_measurement_id": new_ids[
                        (row["model_id"], row["device_id"], row["runtime_id"])
                    ],
                    "position": p.position,
                    "node_index": p.node_index,
                    "op_type": p.op_type,
                    "name": p.name,
                    "avg_ms": _finite(p.avg_ms),
                    "first_ms": _finite(p.first_ms),
                    "share": _finite(p.share),
                    "kernel_name": p.kernel_name,
                    "features": dict(p.features),
                }
                for row, profile in todo
                for p in profile
            ]
            if profile_rows:
                s.execute(insert(sc.OpProfileRow), profile_rows)
            return len(todo), len(profile_rows)

    def model_measurements(
        self, device_id: str | None = None, *, with_profile: bool = True
    ) -> list[ModelMeasurementRecord]:
        """Stored whole-model measurements (with per-op profiles), oldest first."""
        from sqlalchemy import select

        from tflat.store import schema as sc

        rows = sc.ModelMeasurementRow
        q = _measurement_query(rows, sc.ModelRow, rows.model_id, device_id)
        with self._tx() as s:
            found = s.execute(q).all()
            profiles: dict[int, list[ProfileRecord]] = {}
            if with_profile and found:
                pq = select(sc.OpProfileRow).order_by(
                    sc.OpProfileRow.model_measurement_id, sc.OpProfileRow.position
                )
                if device_id is not None:
                    pq = pq.where(
                        sc.OpProfileRow.model_measurement_id.in_([mm.id for mm, _, _ in found])
                    )
                for p in s.scalars(pq):
                    profiles.setdefault(p.model_measurement_id, []).append(_profile_record(p))
            return [
                ModelMeasurementRecord(
                    id=mm.id,
                    model=_model_record(mo),
                    device_id=mm.device_id,
                    runtime=_runtime_key(rt),
                    source=mm.source,
                    created_at=_utc(mm.created_at),
                    profile=tuple(profiles.get(mm.id, ())),
                    **_timings(mm),
                )
                for mm, mo, rt in found
            ]

    # -- predictors ------------------------------------------------------------------------

    def save_predictor(
        self, device_id: str, bundle: dict[str, Any], provenance: dict[str, Any] | None = None
    ) -> None:
        """Store a predictor bundle as JSON text; the newest bundle of a device is the one used."""
        from tflat.store import schema as sc

        try:
            text = json.dumps(bundle, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"predictor bundle for {device_id} is not plain JSON: {exc}") from exc
        with self._tx() as s:
            s.add(
                sc.PredictorRow(
                    device_id=device_id,
                    bundle=text,
                    provenance=dict(provenance or {}),
                    created_at=_now(),
                )
            )

    def load_predictor_bundle(self, device_id: str) -> dict[str, Any] | None:
        """The newest predictor bundle saved for a device, or None."""
        from sqlalchemy import select

        from tflat.store import schema as sc

        with self._tx() as s:
            text = s.scalar(
                select(sc.PredictorRow.bundle)
                .where(sc.PredictorRow.device_id == device_id)
                .order_by(sc.PredictorRow.created_at.desc(), sc.PredictorRow.id.desc())
                .limit(1)
            )
        if text is None:
            return None
        try:
            loaded = json.loads(text)
        except (ValueError, RecursionError) as exc:  # a damaged row; the schema checks the rest
            raise StoreError(f"predictor bundle for {device_id} is not valid JSON") from exc
        if not isinstance(loaded, dict):
            raise StoreError(f"predictor bundle for {device_id} is not a JSON object")
        return loaded

    def predictors(self) -> list[PredictorInfo]:
        """The newest predictor of each device that has one."""
        from sqlalchemy import select

        from tflat.store import schema as sc

        newest: dict[str, PredictorInfo] = {}
        with self._tx() as s:
            q = select(
                sc.PredictorRow.device_id, sc.PredictorRow.created_at, sc.PredictorRow.provenance
            )
            for device_id, created_at, provenance in s.execute(q.order_by(sc.PredictorRow.id)):
                newest[device_id] = PredictorInfo(
                    device_id, _utc(created_at), dict(provenance or {})
                )
        return [newest[k] for k in sorted(newest)]


def _model_record(m: sc.ModelRow) -> ModelRecord:
    return ModelRecord(**_same_named(ModelRecord, m, ops_partial=bool(m.ops_partial)))


def _profile_record(p: sc.OpProfileRow) -> ProfileRecord:
    return ProfileRecord(**_same_named(ProfileRecord, p, features=dict(p.features or {})))
