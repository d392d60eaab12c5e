"""tflat: how long a TFLite model takes on a phone's GPU, before anyone runs it on a phone.

The public API. The CLI uses only what is listed in ``__all__``. Importing tflat does no work:
each name below is imported on first use (PEP 562), so ``import tflat`` stays cheap and heavy
modules (LiteRT, SQLAlchemy, LightGBM) load only inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tflat.errors import (
    DeviceError,
    ModelFormatError,
    PredictorError,
    SpecError,
    StoreError,
    TflatError,
)

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    "Graph": "tflat.model.ops",
    "Op": "tflat.model.ops",
    "TensorInfo": "tflat.model.ops",
    "read_model": "tflat.model.reader",
    "OpSpec": "tflat.model.spec",
    "GraphBuilder": "tflat.model.writer",
    "write_spec": "tflat.model.writer",
    "build_model": "tflat.model.zoo",
    "load_plan": "tflat.plans",
    "generate": "tflat.plans",
    "adaptive_specs": "tflat.plans",
    "Kernel": "tflat.gpu",
    "partition": "tflat.cpu.delegates",
    "load_predictor": "tflat.pricing.predictors",
    "list_devices": "tflat.pricing.predictors",
    "Predictor": "tflat.predict",
    "GraphPrediction": "tflat.predict",
    "KernelTime": "tflat.predict",
    "DeviceCard": "tflat.predict",
    "estimate": "tflat.pricing.compose",
    "Estimate": "tflat.estimation",
    "LayerEstimate": "tflat.estimation",
    "open_store": "tflat.store",
    "get_runner": "tflat.bench",
    "RunSettings": "tflat.store.measurement",
    "Measurement": "tflat.store.measurement",
}

__all__ = [
    "DeviceCard",
    "DeviceError",
    "Estimate",
    "Graph",
    "GraphBuilder",
    "GraphPrediction",
    "Kernel",
    "KernelTime",
    "LayerEstimate",
    "Measurement",
    "ModelFormatError",
    "Op",
    "OpSpec",
    "Predictor",
    "PredictorError",
    "RunSettings",
    "SpecError",
    "StoreError",
    "TensorInfo",
    "TflatError",
    "__version__",
    "adaptive_specs",
    "build_model",
    "estimate",
    "generate",
    "get_runner",
    "list_devices",
    "load_plan",
    "load_predictor",
    "open_store",
    "partition",
    "read_model",
    "write_spec",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tflat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:
    from tflat.bench import get_runner
    from tflat.cpu.delegates import partition
    from tflat.estimation import Estimate, LayerEstimate
    from tflat.gpu import Kernel
    from tflat.model.ops import Graph, Op, TensorInfo
    from tflat.model.reader import read_model
    from tflat.model.spec import OpSpec
    from tflat.model.writer import GraphBuilder, write_spec
    from tflat.model.zoo import build_model
    from tflat.plans import adaptive_specs, generate, load_plan
    from tflat.predict import DeviceCard, GraphPrediction, KernelTime, Predictor
    from tflat.pricing.compose import estimate
    from tflat.pricing.predictors import list_devices, load_predictor
    from tflat.store import open_store
    from tflat.store.measurement import Measurement, RunSettings
