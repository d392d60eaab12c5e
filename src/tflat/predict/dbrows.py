"""Training rows from the measurement database, in the row types ``fit_device`` takes.

Whole-model GPU measurements with a per-kernel profile (the USC import stores them so, and a
phone profiled with benchmark_model gives the same) become ``UscOpRow``/``UscModelRow``.
"""

from __future__ import annotations

from typing import Any

from tflat.datasets.usc import SOURCE as USC_SOURCE
from tflat.datasets.usc import UscData, UscModelRow, UscOpRow, family_of


def rows_from_store(store: Any, device: str) -> UscData:
    ops: list[UscOpRow] = []
    models: list[UscModelRow] = []
    sources: set[str] = set()
    for mm in store.model_measurements(device):
        if mm.status != "ok" or mm.runtime.delegate != "gpu" or mm.mean_ms is None:
            continue
        family = mm.model.family or family_of(mm.model.name)
        sources.add(mm.source or mm.model.source)
        models.append(
            UscModelRow(
                model=mm.model.name,
                family=family,
                device=device,
                config="gpu|float",
                mean_ms=float(mm.mean_ms),
                std_ms=float(mm.std_ms) if mm.std_ms is not None else float("nan"),
                flops=int(mm.model.flops or 0),
                size_bytes=int(mm.model.size_bytes or 0),
            )
        )
        for p in mm.profile:
            if p.avg_ms is None or not p.features:
                continue
            ops.append(
                UscOpRow(
                    model=mm.model.name,
                    family=family,
                    operation=p.op_type,
                    feature={str(k): int(v) for k, v in p.features.items()},
                    device=device,
                    latency_ms=float(p.avg_ms),
                    kernel_name=p.kernel_name or p.name,
                    position=p.position,
                )
            )
    prov: dict[str, object] = {"source": "database", "op_rows": len(ops), "model_rows": len(models)}
    if sources == {"usc-mobile-ml-benchmark"}:
        prov.update(USC_SOURCE, stored_in="database")
    return UscData(ops=ops, models=models, folder="", provenance=prov)


def stored_model_files(store: Any, device: str) -> list[tuple[str, str, float]]:
    """Whole models of ``device`` that have a .tflite path: (name, path, measured ms)."""
    from pathlib import Path

    out: list[tuple[str, str, float]] = []
    for mm in store.model_measurements(device, with_profile=False):
        ms = mm.min_ms if mm.min_ms is not None else mm.mean_ms
        if mm.status != "ok" or ms is None or not mm.model.path:
            continue
        if Path(mm.model.path).is_file():
            out.append((mm.model.name, mm.model.path, float(ms)))
    return out
