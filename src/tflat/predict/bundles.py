"""Where predictors come from: JSON bundles shipped in ``tflat/data/devices``, or the database.

Bundles are plain JSON (trees as arrays, no pickle), so they load in milliseconds with numpy
only and survive scikit-learn/LightGBM upgrades.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources
from typing import Any, cast

from tflat.errors import PredictorError, StoreError
from tflat.predict.predictor import DeviceCard, Predictor

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


@lru_cache(maxsize=16)
def _bundled(device: str) -> Predictor | None:
    text = bundled_text(device)
    if text is None:
        return None
    try:
        bundle = json.loads(text)
    except ValueError as exc:
        raise PredictorError(f"bundled predictor for {device} is not valid JSON") from exc
    return Predictor(bundle)


def predictor_from_bundle(bundle: dict[str, Any]) -> Predictor:
    """A predictor of either format: a GPU bundle, or a calibrated CPU bundle (``tflat-cpu-v1``).

    Both answer ``card`` and ``predict_graph(graph)`` the same way, so the rest of tflat does
    not care which one it holds.
    """
    from tflat.cpu.predictor import BUNDLE_FORMAT, CpuPredictor

    if bundle.get("format") == BUNDLE_FORMAT:
        return cast(Predictor, CpuPredictor.from_bundle(bundle))
    return Predictor(bundle)


def _from_store(device: str, db_url: str | None) -> Predictor | None:
    try:
        from tflat.store import open_store
    except ImportError:  # pragma: no cover - the store is part of tflat
        return None
    store = open_store(db_url)
    try:
        bundle = store.load_predictor_bundle(device)
    finally:
        store.close()
    return predictor_from_bundle(bundle) if bundle is not None else None


def load_predictor(device: str, db_url: str | None = None) -> Predictor:
    """The predictor of ``device``: from the database when one is saved there (a calibrated or
    retrained device), else the bundled one. Unknown device -> :class:`PredictorError`."""
    found: Predictor | None = None
    if db_url is not None or device not in BUNDLED_DEVICES:
        # A database the user named must work: its failure is a StoreError (exit 2), never a
        # silent fall-back to the shipped bundle, which may not be the predictor they meant.
        found = _from_store(device, db_url)
    if found is None:
        found = _bundled(device)
    if found is None:
        if is_calibratable(device):
            raise PredictorError(
                f"no predictor for device {device!r}: calibrate it first: "
                f"tflat calibrate {device} --db URL"
            )
        known = ", ".join(d.id for d in list_devices(db_url, include_store=False))
        raise PredictorError(f"no predictor for device {device!r} (known: {known})")
    return found


def is_calibratable(device: str) -> bool:
    """Devices whose predictor comes from ``tflat calibrate`` (this host's CPU, a phone)."""
    return device.startswith(("host-cpu", "android:"))


def list_devices(db_url: str | None = None, *, include_store: bool = True) -> list[DeviceCard]:
    """Bundled devices, then devices with a predictor in the database.

    With ``db_url`` the database must work (else :class:`StoreError`); without it, a default
    database that cannot be opened only means no database predictors are listed."""
    cards: dict[str, DeviceCard] = {}
    for dev in BUNDLED_DEVICES:
        pred = _bundled(dev)
        if pred is not None:
            cards[dev] = pred.card
    if include_store:
        try:
            cards.update(_store_cards(db_url))
        except StoreError as exc:
            if db_url is not None:
                raise
            log.info("no database predictors listed: %s", exc)
    return list(cards.values())


def _store_cards(db_url: str | None) -> dict[str, DeviceCard]:
    from tflat.store import open_store

    cards: dict[str, DeviceCard] = {}
    store = open_store(db_url)
    try:
        for info in store.predictors():
            bundle = store.load_predictor_bundle(info.device_id)
            if bundle is None:
                continue
            try:
                cards[info.device_id] = predictor_from_bundle(bundle).card
            except PredictorError as exc:
                log.warning("predictor of %s in the database: %s", info.device_id, exc)
    finally:
        store.close()
    return cards


def bundle_json(bundle: dict[str, Any]) -> str:
    """Compact, stable JSON text of a bundle (what ships and what the database stores)."""
    return json.dumps(bundle, sort_keys=True, separators=(",", ":"), allow_nan=False)
