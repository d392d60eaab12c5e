"""Calibrate a new device end to end, and check the result on whole real models.

:func:`calibrate` plans, generates, benchmarks, trains, cross-validates and saves a device's
predictor within a time budget (resumable); :func:`evaluate_models` estimates and measures
real models on the device and reports MAPE, share within ±10 % and rank correlation.
Importing this package loads nothing heavy.
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
