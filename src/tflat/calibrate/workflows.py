"""Training and checking a device's predictor: ``tflat train`` and ``tflat evaluate`` as
functions.

:func:`train_device` fits a predictor from the database's kernel rows (or the USC public
data) and saves it; :func:`evaluate_device` cross-validates the training pipeline with whole
architecture families held out, or takes a trained predictor as it is and predicts stored
models. (Estimating and measuring real models on the device is
:func:`tflat.calibrate.evaluate.evaluate_models`.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.errors import TflatError

if TYPE_CHECKING:
    from tflat.datasets.usc import UscData
    from tflat.predict.evaluate import EvalReport
    from tflat.progress import ProgressCallback

log = logging.getLogger(__name__)


def _usc_data(usc: Path | None) -> UscData:
    from tflat.datasets.usc import load_usc

    return load_usc(usc)


def _store_rows(db_url: str | None, device: str) -> UscData:
    from tflat.predict.dbrows import rows_from_store
    from tflat.store import open_store

    with open_store(db_url) as store:
        return rows_from_store(store, device)


def _no_measurements(device: str, where: str, db_url: str | None = None) -> str:
    """The one-line error for a device with no kernel rows, worded for what the device is:
    it names the command to run first, with the same --db."""
    if device.startswith(("host-cpu", "android:")):
        what = "CPU kernel" if device.startswith("host-cpu") else "kernel"
        db = f" --db {db_url}" if db_url else ""
        return (
            f"no {what} measurements for {device} in {where}: "
            f"run 'tflat calibrate {device}{db}' first"
        )
    return (
        f"no GPU kernel measurements for {device} in {where} "
        "(import the USC data with 'tflat db import' or pass --usc FOLDER)"
    )


def train_device(
    device: str,
    *,
    db_url: str | None = None,
    usc: Path | None = None,
    save: bool = True,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train ``device``'s predictor from the database (or the USC folder ``usc``) and, with
    ``save``, store it in the database; returns the bundle. A phone of the USC study (pixel4,
    s10, ...) with no rows in the database trains on the USC measurements shipped with tflat."""
    from tflat.predict.bundles import BUNDLED_DEVICES
    from tflat.predict.usc import fit_usc_device

    if usc is not None:
        bundle = fit_usc_device(_usc_data(usc), device, progress=progress)
    else:
        data = _store_rows(db_url, device)
        if not data.ops and device in BUNDLED_DEVICES:
            # a phone of the USC study with nothing imported: its measurements ship with tflat
            log.warning("no %s rows in the database: training on the packaged USC data", device)
            data = _usc_data(None)
        if not data.ops:
            raise TflatError(_no_measurements(device, "the database", db_url))
        if device in BUNDLED_DEVICES:
            bundle = fit_usc_device(data, device, progress=progress)
        else:
            from tflat.predict.train import fit_device

            bundle = fit_device(data.ops, data.models_for(device), device={"id": device},
                                provenance=data.provenance, progress=progress)  # fmt: skip
    if save:
        from tflat.store import open_store

        with open_store(db_url) as store:
            store.save_predictor(device, bundle, provenance=bundle.get("provenance"))
    return bundle


def evaluate_device(
    device: str,
    *,
    db_url: str | None = None,
    usc: Path | None = None,
    predictor: str | None = None,
    folds: int = 5,
    progress: ProgressCallback | None = None,
) -> EvalReport:
    """How good ``device``'s predictor is on measured whole models.

    Without ``predictor``: the training pipeline cross-validated with the test architecture
    families left out, on the kernel rows of ``usc``, of ``db_url``, or of the USC data
    shipped with tflat (TFLAT_USC_DIR overrides). With ``predictor`` (``"bundled"``, ``"db"``
    or a bundle file): that trained predictor as it is, predicting the models stored in
    ``db_url`` (or ``usc``).
    """
    from tflat.predict.evaluate import evaluate_families

    if predictor is not None:
        return _evaluate_trained(device, db_url, usc, predictor)
    data = _usc_data(usc) if usc is not None else None
    if data is None and db_url is not None:
        data = _store_rows(db_url, device)
        if not data.ops:
            raise TflatError(_no_measurements(device, db_url, db_url))
    return evaluate_families(data if data is not None else _usc_data(None), device,
                             n_folds=folds, progress=progress)  # fmt: skip


def _load_trained(device: str, db_url: str | None, src: str) -> Any:
    from tflat.pricing.predictors import load_predictor, load_predictor_file

    if src == "bundled":
        return load_predictor(device)
    if src == "db":
        return load_predictor(device, db_url)
    path = Path(src)
    if not path.is_file():
        raise TflatError(f"--predictor: {src} is not bundled, db or a bundle file")
    pred = load_predictor_file(path)
    if pred.device != device:
        raise TflatError(f"--predictor: {src} is a predictor for {pred.device}, not {device}")
    return pred


def _evaluate_trained(device: str, db_url: str | None, usc: Path | None, src: str) -> EvalReport:
    from tflat.predict.evaluate import evaluate_on_models, evaluate_predictor_on_rows

    predictor = _load_trained(device, db_url, src)
    label = f"{src}: {predictor.card.source or predictor.device}"
    if usc is not None:
        data = _usc_data(usc)
        data = type(data)(ops=data.ops_for(device), models=data.models_for(device),
                          folder=data.folder, provenance=data.provenance)  # fmt: skip
        if not data.models:
            raise TflatError(f"no whole-model GPU times for {device} in {usc}")
        return evaluate_predictor_on_rows(predictor, data, label)
    from tflat.predict.dbrows import stored_model_files
    from tflat.store import open_store

    with open_store(db_url) as store:
        files = stored_model_files(store, device)
    if files:
        return evaluate_on_models(predictor, files)
    data = _store_rows(db_url, device)
    if not data.models or not data.ops:
        raise TflatError(
            f"no whole models with kernel lists or .tflite files for {device} in the database "
            "(import some with 'tflat db import DIR --format usc')"
        )
    return evaluate_predictor_on_rows(predictor, data, label)
