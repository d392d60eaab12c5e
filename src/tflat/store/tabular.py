"""tflat's own table formats: export the store to CSV or Parquet, import tflat CSV back.

Why a flat table: measurements must travel between machines and teams (a phone lab's SQLite
file into a team's PostgreSQL) and into notebooks. One row per measurement carries everything
needed to re-create it (device facts, runtime settings, spec, every sample), so an export
imported into an empty database exports again to the same table.

Units: ms in ``*_ms`` columns; ``samples_ms`` and ``params`` are JSON text in CSV and
(list of float / JSON text) in Parquet; ``created_at`` is ISO 8601 UTC.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from tflat.errors import TflatError, read_text
from tflat.store.measurement import Status
from tflat.store.records import (
    MeasurementRecord,
    ModelMeasurementRecord,
    RuntimeKey,
    SpecRecord,
)

if TYPE_CHECKING:
    from tflat.store.db import Store

#: The settings a measurement was taken with (a RuntimeKey), as columns.
_RUNTIME_COLUMNS = ("runtime", "runtime_version", "delegate", "precision", "threads", "config")
#: The outcome and its figures, as columns (both tables).
_TIMING_COLUMNS = ("status", "error", "samples_ms", "median_ms", "mean_ms", "std_ms", "min_ms")
_DEVICE_FACTS = ("vendor", "model", "soc", "gpu", "os", "driver")

MEASUREMENT_COLUMNS = (
    "device_id",
    *(f"device_{fact}" for fact in _DEVICE_FACTS),
    *_RUNTIME_COLUMNS,
    "kind",
    "spec_hash",
    "params",
    *_TIMING_COLUMNS,
    "init_ms",
    "warmup",
    "repeats",
    "model_file",
    "created_at",
    "reference_ms",
)
#: Columns a CSV written by an older tflat lacks; read as empty.
_OPTIONAL_COLUMNS = frozenset({"reference_ms"})

MODEL_COLUMNS = (
    "model_key",
    "model_name",
    "family",
    "model_source",
    "ops_partial",
    "flops",
    "size_bytes",
    "device_id",
    *_RUNTIME_COLUMNS,
    *_TIMING_COLUMNS,
    "warmup",
    "repeats",
    "source",
    "profile_rows",
    "created_at",
    "reference_ms",
)

TABLES = ("measurements", "model_measurements")


def _runtime_cells(k: RuntimeKey) -> dict[str, Any]:
    cells = (k.runtime, k.version, k.delegate, k.precision, k.threads, k.config)
    return dict(zip(_RUNTIME_COLUMNS, cells, strict=True))


def _timing_cells(m: MeasurementRecord | ModelMeasurementRecord) -> dict[str, Any]:
    """The columns both tables fill alike from a stored measurement."""
    figures = {c: getattr(m, c) for c in _TIMING_COLUMNS} | {"samples_ms": list(m.samples_ms)}
    return figures | {
        "warmup": m.warmup,
        "repeats": m.repeats,
        "created_at": m.created_at.isoformat(),
        "reference_ms": m.reference_ms,
    }


def measurement_rows(store: Store) -> list[dict[str, Any]]:
    """Every single-op measurement as one flat dict (columns: MEASUREMENT_COLUMNS)."""
    facts = {d.device_id: d for d in store.devices()}
    rows = []
    for m in store.measurements():
        d = facts.get(m.device_id)
        device = {f"device_{fact}": getattr(d, fact) if d else "" for fact in _DEVICE_FACTS}
        spec = {"kind": m.spec.kind, "spec_hash": m.spec.spec_hash, "params": m.spec.params}
        rows.append(
            {"device_id": m.device_id, **device, **_runtime_cells(m.runtime), **spec}
            | _timing_cells(m)
            | {"init_ms": m.init_ms, "model_file": m.model_file}
        )
    return rows


def model_rows(store: Store) -> list[dict[str, Any]]:
    """Every whole-model measurement as one flat dict (columns: MODEL_COLUMNS)."""
    return [
        {
            "model_key": m.model.key,
            "model_name": m.model.name,
            "family": m.model.family,
            "model_source": m.model.source,
            "ops_partial": m.model.ops_partial,
            "flops": m.model.flops,
            "size_bytes": m.model.size_bytes,
            "device_id": m.device_id,
            **_runtime_cells(m.runtime),
        }
        | _timing_cells(m)
        | {"source": m.source, "profile_rows": len(m.profile)}
        for m in store.model_measurements()
    ]


def _rows(store: Store, table: str) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    if table == "measurements":
        return MEASUREMENT_COLUMNS, measurement_rows(store)
    if table == "model_measurements":
        return MODEL_COLUMNS, model_rows(store)
    raise TflatError(f"unknown table {table!r}: choose from {', '.join(TABLES)}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def to_csv(store: Store, table: str = "measurements") -> str:
    """The table as CSV text (header + one line per row)."""
    columns, rows = _rows(store, table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return out.getvalue()


def write_parquet(store: Store, path: Path, table: str = "measurements") -> int:
    """Write the table as Parquet (needs pyarrow: ``pip install tflat[parquet]``); rows written."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise TflatError("Parquet export needs pyarrow: pip install 'tflat[parquet]'") from exc
    columns, rows = _rows(store, table)
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for row in rows:
        for c in columns:
            value = row[c]
            data[c].append(json.dumps(value, sort_keys=True) if isinstance(value, dict) else value)
    arrays = {
        c: pa.array(v, type=pa.list_(pa.float64()) if c == "samples_ms" else None)
        for c, v in data.items()
    }
    if path.is_dir():
        raise TflatError(f"cannot write {path}: is a folder")
    # through path.part, so a failure never leaves half a Parquet file under the real name
    tmp = path.with_name(path.name + ".part")
    try:
        pq.write_table(pa.table(arrays), tmp)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TflatError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return len(rows)


def read_measurements_csv(
    text: str, where: str = "CSV"
) -> list[tuple[dict[str, str], MeasurementRecord]]:
    """Parse tflat's single-op measurement CSV: (device facts, record) per row."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        c
        for c in MEASUREMENT_COLUMNS
        if c not in (reader.fieldnames or ()) and c not in _OPTIONAL_COLUMNS
    ]
    if missing:
        raise TflatError(f"{where}: not a tflat measurements CSV (missing {', '.join(missing)})")
    statuses = get_args(Status)
    out = []
    for line, row in enumerate(reader, start=2):
        if row["status"] not in statuses:
            raise TflatError(
                f"{where}:{line}: bad row (status {row['status']!r}, "
                f"expected one of {', '.join(statuses)})"
            )
        try:
            runtime, version, delegate, precision, threads, config = (
                row[c] for c in _RUNTIME_COLUMNS
            )
            record = MeasurementRecord(
                device_id=row["device_id"],
                runtime=RuntimeKey(runtime, version, delegate, precision, int(threads), config),
                spec=SpecRecord(row["spec_hash"], row["kind"], json.loads(row["params"])),
                status=row["status"],
                samples_ms=tuple(float(x) for x in json.loads(row["samples_ms"] or "[]")),
                median_ms=_float(row["median_ms"]),
                mean_ms=_float(row["mean_ms"]),
                std_ms=_float(row["std_ms"]),
                min_ms=_float(row["min_ms"]),
                warmup=int(row["warmup"]),
                repeats=int(row["repeats"]),
                created_at=datetime.fromisoformat(row["created_at"]),
                error=row["error"] or None,
                init_ms=_float(row["init_ms"]),
                model_file=row["model_file"],
                reference_ms=_float(row.get("reference_ms") or ""),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise TflatError(f"{where}:{line}: bad row ({exc})") from exc
        facts = {
            k[len("device_") :]: row[k] for k in MEASUREMENT_COLUMNS if k.startswith("device_")
        }
        out.append((facts, record))
    return out


def import_measurements_csv(store: Store, path: Path) -> tuple[int, int]:
    """Import a tflat measurements CSV; returns (rows written, rows already stored)."""
    from tflat.store.measurement import DeviceInfo

    text = read_text(path, "a tflat measurements CSV")
    parsed = read_measurements_csv(text, str(path))
    seen: set[str] = set()
    for facts, record in parsed:
        if record.device_id not in seen:
            seen.add(record.device_id)
            info = DeviceInfo(
                device_id=record.device_id,
                vendor=facts["vendor"],
                model=facts["model"],
                soc=facts["soc"],
                gpu=facts["gpu"],
                os=facts["os"],
                driver=facts["driver"],
            )
            store.add_device(info, source="import")
    written = store.add_measurement_records(r for _, r in parsed)
    return written, len(parsed) - written


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None
