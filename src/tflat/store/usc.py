"""Import the USC mobile-ml-benchmark data (qed-usc/mobile-ml-benchmark) into the store.

Why here and not only in the predictor: the store is where every measurement lives with its
provenance, so bundled predictors and evaluations can be traced back to the rows they used.
Every whole-model row (model, device, configuration) becomes one model measurement; every
per-op GPU row becomes one op-profile row of its model's ``gpu|float`` measurement on that
device. The op list of a USC model lists only some of its ops, so models are marked
``ops_partial``. Units: the source is in µs, :func:`tflat.datasets.usc.load_usc` gives ms.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.store.records import ModelRecord, ProfileRecord, RuntimeKey

if TYPE_CHECKING:
    from tflat.datasets.usc import UscData
    from tflat.store.db import Store

log = logging.getLogger(__name__)

SOURCE = "usc-mobile-ml-benchmark"

#: What the study's README and paper say about each phone (facts, not measurements).
_FACTS = ("vendor", "model", "soc", "gpu", "os")
USC_DEVICES: dict[str, dict[str, str]] = {
    dev: dict(zip(_FACTS, facts, strict=True))
    for dev, facts in {
        "pixel4": ("Google", "Pixel 4", "Snapdragon 855", "Adreno 640", "Android"),
        "s10": ("Samsung", "Galaxy S10", "Exynos 9820", "Mali-G76 MP12", "Android"),
        "mi8se": ("Xiaomi", "Mi 8 SE", "Snapdragon 710", "Adreno 616", "Android"),
        "a03s": ("Samsung", "Galaxy A03s", "Helio P35", "PowerVR GE8320", "Android"),
        "iphone7": ("Apple", "iPhone 7", "A10 Fusion", "Apple A10 GPU (Metal delegate)", "iOS"),
        "iphonexs": ("Apple", "iPhone XS", "A12 Bionic", "Apple A12 GPU (Metal delegate)", "iOS"),
    }.items()
}

TFLITE_VERSION = "2.10"


@dataclass(frozen=True)
class UscImportResult:
    models: int
    model_measurements: int
    op_profile_rows: int
    skipped_existing: int


def runtime_for(config: str) -> RuntimeKey:
    """The runtime settings of a USC configuration such as ``gpu|float`` or ``1large2med|quant``."""
    cores, _, dtype = config.partition("|")
    precision = {"float": "fp32", "quant": "int8"}.get(dtype, dtype)
    if cores == "gpu":
        return RuntimeKey("tflite", TFLITE_VERSION, "gpu", precision, 0, config)
    threads = sum(int(n) for n in re.findall(r"\d+", cores)) or 1
    return RuntimeKey("tflite", TFLITE_VERSION, "cpu", precision, threads, config)


def import_usc(
    store: Store, folder: Path | None = None, *, data: UscData | None = None
) -> UscImportResult:
    """Import both USC files; rows already stored are kept (the import is idempotent)."""
    from tflat.datasets.usc import load_usc
    from tflat.store.measurement import DeviceInfo

    usc = data if data is not None else load_usc(folder)
    provenance = {k: str(v) for k, v in usc.provenance.items() if not isinstance(v, list | dict)}
    devices = sorted({r.device for r in usc.models} | {r.device for r in usc.ops})
    for dev in devices:
        facts = USC_DEVICES.get(dev, {})
        store.add_device(
            DeviceInfo(device_id=dev, driver=f"TFLite {TFLITE_VERSION}", extra=provenance, **facts),
            source=SOURCE,
        )
    profiles: dict[tuple[str, str], list[ProfileRecord]] = defaultdict(list)
    for op in usc.ops:
        profiles[(op.model, op.device)].append(
            ProfileRecord(
                position=op.position,
                op_type=op.operation,
                avg_ms=op.latency_ms,
                name=op.kernel_name,
                kernel_name=op.kernel_name,
                features=dict(op.feature),
            )
        )
    models: dict[str, ModelRecord] = {}
    rows: list[tuple[ModelRecord, str, RuntimeKey, dict[str, Any], tuple[ProfileRecord, ...]]] = []
    for r in usc.models:
        model = models.setdefault(
            r.model,
            ModelRecord(
                key=f"usc:{r.model}",
                name=r.model,
                family=r.family,
                source=SOURCE,
                flops=r.flops or None,
                size_bytes=r.size_bytes or None,
                ops_partial=True,
            ),
        )
        values = {
            "status": "ok",
            "samples_ms": [],
            "mean_ms": r.mean_ms,
            "std_ms": None if math.isnan(r.std_ms) else r.std_ms,
            "warmup": 0,
            "repeats": 0,  # the source gives mean and std, not the number of runs
            "source": SOURCE,
        }
        ops = profiles.pop((r.model, r.device), []) if r.config == "gpu|float" else []
        rows.append((model, r.device, runtime_for(r.config), values, tuple(ops)))
    # Op rows whose model has no whole-model GPU time still keep their profile, flagged.
    for (name, dev), profile in sorted(profiles.items()):
        log.warning("USC %s on %s: op rows without a whole-model time", name, dev)
        model = models.setdefault(
            name, ModelRecord(key=f"usc:{name}", name=name, source=SOURCE, ops_partial=True)
        )
        values = {
            "status": "no_total",
            "samples_ms": [],
            "warmup": 0,
            "repeats": 0,
            "source": SOURCE,
        }
        rows.append((model, dev, runtime_for("gpu|float"), values, tuple(profile)))
    written, profile_rows = store.add_model_measurements(rows)
    result = UscImportResult(
        models=len(models),
        model_measurements=written,
        op_profile_rows=profile_rows,
        skipped_existing=len(rows) - written,
    )
    log.info("USC import: %s", result)
    return result
