"""Which predictor a device has: its bundle saved in the database, else the shipped one.

Two bundle formats exist: a GPU predictor (:class:`tflat.predict.Predictor`, shipped for six
phones or trained with ``tflat train``) and a calibrated one
(:class:`tflat.cpu.predictor.CpuPredictor`, from ``tflat calibrate``); both answer ``card`` and
``predict_graph(graph)`` alike, and :mod:`tflat.pricing.registry` turns either into pricers.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from tflat.errors import PredictorError, StoreError
from tflat.predict.bundles import BUNDLED_DEVICES, bundled_predictor
from tflat.predict.predictor import DeviceCard, Predictor

log = logging.getLogger(__name__)


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
        found = bundled_predictor(device)
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
        pred = bundled_predictor(dev)
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
