"""The GPU predictors shipped with tflat: JSON bundles in ``tflat/data/devices``.

Which predictor a device has (shipped, or saved in the database) is
:mod:`tflat.pricing.predictors`'s question. Bundles are plain JSON (trees as arrays, no
pickle), so they load in milliseconds with numpy only and survive scikit-learn/LightGBM
upgrades.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources
from typing import Any

from tflat.errors import PredictorError
from tflat.predict.predictor import Predictor

log = logging.getLogger(__name__)

#: The phones whose predictors ship with tflat (USC public data), with their GPU family.
BUNDLED_DEVICES: dict[str, dict[str, str]] = {
    "pixel4": {"name": "Google Pixel 4", "soc": "Snapdragon 855", "gpu": "Adreno 640",
               "gpu_family": "adreno"},
    "s10": {"name": "Samsung Galaxy S10", "soc": "Exynos 9820", "gpu": "Mali-G76 MP12",
            "gpu_family": "mali"},
    "mi8se": {"name": "Xiaomi Mi 8 SE", "soc": "Snapdragon 710", "gpu": "Adreno 616",
              "gpu_family": "adreno"},
    "a03s": {"name": "Samsung Galaxy A03s", "soc": "MediaTek Helio P35", "gpu": "PowerVR GE8320",
             "gpu_family": "powervr"},
    "iphone7": {"name": "Apple iPhone 7", "soc": "Apple A10 Fusion",
                "gpu": "Apple A10 GPU (Metal delegate)", "gpu_family": "apple"},
    "iphonexs": {"name": "Apple iPhone XS", "soc": "Apple A12 Bionic",
                 "gpu": "Apple A12 GPU (Metal delegate)", "gpu_family": "apple"},
}  # fmt: skip


def bundled_text(device: str) -> str | None:
    res = resources.files("tflat").joinpath("data", "devices", f"{device}.json")
    try:
        return res.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None


def shipped_devices() -> list[str]:
    """Every device with a shipped bundle: the USC phones, then phones transferred from
    published timings (``pixel7``, ``galaxy-s23``: ``tflat.devices``)."""
    folder = resources.files("tflat").joinpath("data", "devices")
    try:
        names = [p.name for p in folder.iterdir()]
    except (FileNotFoundError, OSError):
        names = []
    extra = sorted(n[: -len(".json")] for n in names if n.endswith(".json"))
    return [*BUNDLED_DEVICES, *(d for d in extra if d not in BUNDLED_DEVICES)]


@lru_cache(maxsize=16)
def bundled_predictor(device: str) -> Predictor | None:
    """The shipped predictor of ``device`` (None: none ships), read once."""
    text = bundled_text(device)
    if text is None:
        return None
    try:
        bundle = json.loads(text)
    except ValueError as exc:
        raise PredictorError(f"bundled predictor for {device} is not valid JSON") from exc
    return Predictor(bundle)


def bundle_json(bundle: dict[str, Any]) -> str:
    """Compact, stable JSON text of a bundle (what ships and what the database stores)."""
    return json.dumps(bundle, sort_keys=True, separators=(",", ":"), allow_nan=False)
