"""Make and check a device's predictor: calibrate a new device end to end, train, evaluate.

:func:`calibrate` orchestrates plan -> bench campaign -> train -> evaluate -> save within a time
budget (resumable; the measuring goes through :mod:`tflat.bench.campaign`);
:func:`evaluate_models` estimates and measures real models on the device and reports MAPE,
share within ±10 % and rank correlation; :mod:`tflat.calibrate.workflows` trains and evaluates
predictors from stored or public data (``tflat train``, ``tflat evaluate``). Importing this
package loads nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tflat.calibrate.evaluate import (
        ModelCheck,
        ModelsReport,
        evaluate_models,
        load_device_predictor,
    )
    from tflat.calibrate.loop import CalibrationResult, calibrate, device_and_rules
    from tflat.calibrate.session import CalibrationProgress
    from tflat.calibrate.training import CvReport

__all__ = [
    "CalibrationProgress",
    "CalibrationResult",
    "CvReport",
    "ModelCheck",
    "ModelsReport",
    "calibrate",
    "device_and_rules",
    "evaluate_models",
    "load_device_predictor",
]

_WHERE = {
    "CalibrationProgress": "session",
    "CalibrationResult": "loop",
    "calibrate": "loop",
    "device_and_rules": "loop",
    "CvReport": "training",
    "ModelCheck": "evaluate",
    "ModelsReport": "evaluate",
    "evaluate_models": "evaluate",
    "load_device_predictor": "evaluate",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"tflat.calibrate.{module}"), name)
