"""Which predictor a device has: a bundle file named by path, else the bundle a user installed
(``tflat device add``), else its bundle saved in the database, else the shipped one. A bundle
from a file, an install or a database is untrusted data, checked by
:mod:`tflat.pricing.bundle_schema` before it is read (shipped ones are package data).

Two bundle formats exist: a GPU predictor (:class:`tflat.predict.Predictor`, shipped for six
phones or trained with ``tflat train``) and a calibrated one
(:class:`tflat.cpu.predictor.CpuPredictor`, from ``tflat calibrate``); both answer ``card`` and
``predict_graph(graph)`` alike, and :mod:`tflat.pricing.registry` turns either into pricers.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, cast

from tflat.errors import PredictorError, StoreError
from tflat.predict.bundles import bundled_predictor, shipped_devices
from tflat.predict.predictor import DeviceCard, Predictor

log = logging.getLogger(__name__)

#: Environment variable naming the folder of installed bundles (``<id>.json`` each).
DEVICES_DIR_ENV = "TFLAT_DEVICES_DIR"
_INSTALLED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def installed_dir() -> Path:
    """Where ``tflat device add`` installs bundles: ``TFLAT_DEVICES_DIR``, else ``devices`` in
    the user data folder (next to the default database)."""
    env = os.environ.get(DEVICES_DIR_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("tflat", appauthor=False)) / "devices"


def installed_bundle_path(device: str) -> Path | None:
    """The installed bundle file of ``device``, if there is one."""
    if not _INSTALLED_ID.match(device) or device.endswith(".json"):
        return None
    path = installed_dir() / f"{device}.json"
    return path if path.is_file() else None


def read_bundle_file(path: Path) -> dict[str, Any]:
    """A bundle JSON file as a dict, checked as untrusted data (size before reading, JSON
    without NaN, the schema); anything else -> a one-line :class:`PredictorError`."""
    from tflat.pricing import bundle_schema

    return bundle_schema.validate_bundle(bundle_schema.read_bundle_file(path), str(path))


def load_predictor_file(path: str | Path) -> Predictor:
    """The predictor in a bundle file (GPU or CPU format), checked first (see
    :func:`read_bundle_file`)."""
    return predictor_from_bundle(read_bundle_file(Path(path)))


def _is_bundle_path(device: str) -> bool:
    """``-d FILE.json`` (or any path with a folder in it) names a bundle file, not an id."""
    return device.endswith(".json") or os.sep in device or "/" in device


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
        where = f"the predictor of {device} in {store.url}"
    finally:
        store.close()
    return None if bundle is None else _checked(bundle, where)


def _checked(bundle: dict[str, Any], where: str) -> Predictor:
    """A predictor from a database's bundle: shared data, checked like a file's."""
    from tflat.pricing.bundle_schema import validate_bundle

    return predictor_from_bundle(validate_bundle(bundle, where))


def load_predictor(device: str, db_url: str | None = None) -> Predictor:
    """The predictor of ``device``: a bundle file when ``device`` is a path (``model.json``),
    else the installed bundle of that id (``tflat device add``), else the database's when one
    is saved there (a calibrated or retrained device), else the shipped one. Unknown device ->
    :class:`PredictorError`."""
    if _is_bundle_path(device):
        path = Path(device)
        if not path.is_file():
            raise PredictorError(f"no predictor bundle file {device}")
        return load_predictor_file(path)
    installed = installed_bundle_path(device)
    if installed is not None:
        return load_predictor_file(installed)
    found: Predictor | None = None
    if db_url is not None or device not in shipped_devices():
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
    """Shipped devices, then devices with a predictor in the database, then installed ones
    (an installed bundle shadows the others of its id, as :func:`load_predictor` does).

    With ``db_url`` the database must work (else :class:`StoreError`); without it, a default
    database that cannot be opened only means no database predictors are listed."""
    cards: dict[str, DeviceCard] = {}
    for dev in shipped_devices():
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
    cards.update(_installed_cards())
    return list(cards.values())


def _installed_cards() -> dict[str, DeviceCard]:
    folder = installed_dir()
    if not folder.is_dir():
        return {}
    cards: dict[str, DeviceCard] = {}
    for path in sorted(folder.glob("*.json")):
        if not _INSTALLED_ID.match(path.stem):
            continue
        try:
            cards[path.stem] = predictor_from_bundle(read_bundle_file(path)).card
        except PredictorError as exc:
            log.warning("installed predictor %s: %s", path, exc)
    return cards


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
                where = f"the predictor of {info.device_id} in {store.url}"
                cards[info.device_id] = _checked(bundle, where).card
            except PredictorError as exc:
                log.warning("predictor of %s in the database: %s", info.device_id, exc)
    finally:
        store.close()
    return cards


def device_basis(provenance: Any) -> str:
    """What a predictor rests on, in words for ``tflat devices``: measured kernels (the USC
    data, a calibration, a phone's own rows) or a transfer from a few whole-model timings, and
    whether timings sharpened it."""
    prov = provenance if isinstance(provenance, dict) else {}
    transfer = prov.get("transfer")
    if isinstance(transfer, dict):
        # timings of models partly on the CPU are kept in provenance but not fitted
        fitted = len(transfer.get("timings", [])) - len(transfer.get("not_fitted", []))
        basis = f"transferred ({fitted} timings)"
    elif "qed-usc" in str(prov.get("source", "")) and prov.get("basis") != "measured":
        basis = "measured (USC kernels)"
    elif "calibrate" in str(prov.get("source", "")) or "cv" in prov:
        basis = "measured (calibrated)"
    else:
        basis = "measured"
    sharpened = prov.get("sharpened")
    if isinstance(sharpened, dict):
        basis += f", sharpened ({len(sharpened.get('timings', []))} timings)"
    return basis
