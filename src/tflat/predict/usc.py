"""Train and ship the six phone predictors from the USC public data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tflat.datasets.usc import UscData
from tflat.errors import PredictorError
from tflat.gpu.partition import load_gpu_rules
from tflat.predict.bundles import BUNDLED_DEVICES, bundle_json

log = logging.getLogger(__name__)

GPU_CONFIG = "gpu|float"
#: The GPU math precision of the USC measurements: their README (dataset/cnn/README.md, commit
#: 244b038) says the GPU kernels were timed "using 16-bit floating-point precision" (fp32 model
#: files, the config their website calls "float32"); benchmark_model's
#: --gpu_precision_loss_allowed, which their scripts do not show, defaults to fp16 math.
USC_GPU_PRECISION = "fp16"
PRECISION_SOURCE = (
    "USC dataset/cnn/README.md (commit 244b038): ops_gpu measured 'using 16-bit floating-point "
    "precision'; benchmark_model --gpu_precision_loss_allowed defaults to true"
)

#: The GPU model of each USC phone, for the delegate's per-GPU figures (compute units; the
#: ``[gpu."family:model"]`` entries of gpu/rules/tflite_gpu.toml): the iPhone 7's A10 and the
#: iPhone XS's A12 take different ConvolutionMetal branches, the Adreno 640 has twice the
#: compute units of the 616.
USC_GPU_MODEL = {
    "pixel4": "640",
    "mi8se": "616",
    "s10": "g76",
    "a03s": "ge8320",
    "iphone7": "a10",
    "iphonexs": "a12",
}


def device_meta(device: str) -> tuple[dict[str, Any], str]:
    """The device card and GPU family (``"apple:a12"``: family and model) of a USC phone."""
    meta = BUNDLED_DEVICES.get(device)
    if meta is None:
        known = ", ".join(BUNDLED_DEVICES)
        raise PredictorError(f"no USC data for device {device!r} (known: {known})")
    card = {"id": device, **{k: v for k, v in meta.items() if k != "gpu_family"}}
    return card, gpu_family_of(meta["gpu_family"], USC_GPU_MODEL.get(device))


def gpu_family_of(family: str, model: str | None) -> str:
    """``family:model`` when the partition resolves it to the family's own rules, else the
    family. The string is stored in the bundle and handed to the partition of a real graph,
    whose Winograd and ConvConstants rules are looked up by that exact string: a model suffix
    must not lose a family's entry (Adreno has its own), so it is kept only where it cannot."""
    if not model:
        return family
    refined = f"{family}:{model}"
    rules = load_gpu_rules()
    same = rules.winograd_thresholds(refined) == rules.winograd_thresholds(family) and (
        rules.conv_constants.get(refined) == rules.conv_constants.get(family)
    )
    return refined if same else family


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
            "precision_source": PRECISION_SOURCE,
        }
    )
    bundle = fit_device(
        ops, rows, "tflite_gpu", device=card, gpu_family=family, provenance=prov, **kwargs
    )
    bundle["precision"] = USC_GPU_PRECISION  # a bundle that does not say is taken as fp16
    return bundle


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
