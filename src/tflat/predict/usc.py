"""Train and ship the six phone predictors from the USC public data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tflat.datasets.usc import UscData
from tflat.errors import PredictorError
from tflat.predict.bundles import BUNDLED_DEVICES, bundle_json

log = logging.getLogger(__name__)

GPU_CONFIG = "gpu|float"


def device_meta(device: str) -> tuple[dict[str, Any], str]:
    meta = BUNDLED_DEVICES.get(device)
    if meta is None:
        known = ", ".join(BUNDLED_DEVICES)
        raise PredictorError(f"no USC data for device {device!r} (known: {known})")
    card = {"id": device, **{k: v for k, v in meta.items() if k != "gpu_family"}}
    return card, meta["gpu_family"]


def fit_usc_device(
    data: UscData, device: str, models: set[str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A bundle for ``device`` from USC rows (only ``models`` when given)."""
    from tflat.predict.train import fit_device

    card, family = device_meta(device)
    ops = [r for r in data.ops_for(device) if models is None or r.model in models]
    rows = [r for r in data.models_for(device, GPU_CONFIG) if models is None or r.model in models]
    prov = {k: v for k, v in data.provenance.items() if k not in ("op_rows", "model_rows")}
    prov.update(
        {
            "device": device,
            "config": GPU_CONFIG,
            "kernel_rows": len(ops),
            "model_rows": len(rows),
            "models": len({r.model for r in rows}),
        }
    )
    return fit_device(
        ops, rows, "tflite_gpu", device=card, gpu_family=family, provenance=prov, **kwargs
    )


def bundled_dir() -> Path:
    """The source folder of the shipped bundles (writing needs a source checkout)."""
    return Path(__file__).resolve().parents[1] / "data" / "devices"


def write_bundle(device: str, bundle: dict[str, Any], folder: Path | None = None) -> Path:
    out = (folder or bundled_dir()) / f"{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(bundle_json(bundle) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out
