"""tflat: how long a TFLite model takes on a phone's GPU, before anyone runs it on a phone.

The public API. The CLI and the benchmarks use only what is listed in ``__all__``. Importing
tflat does no work: each name below is imported on first use (PEP 562), so ``import tflat``
stays cheap and heavy modules (LiteRT, SQLAlchemy, LightGBM) load only inside the functions
that need them.
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
from tflat.version import __version__

#: public name -> the module that defines it ("module:name" where it is named otherwise there)
_LAZY: dict[str, str] = {
    # model: read, write, build
    "Graph": "tflat.model.ops",
    "Op": "tflat.model.ops",
    "TensorInfo": "tflat.model.ops",
    "read_model": "tflat.model.reader",
    "parse_input_shapes": "tflat.model.shapes",
    "unresolved_warnings": "tflat.model.shapes",
    "OpSpec": "tflat.model.spec",
    "GraphBuilder": "tflat.model.writer",
    "write_spec": "tflat.model.writer",
    "build_spec": "tflat.model.writer",
    "build_model": "tflat.model.zoo",
    "build_in_format": "tflat.model.formats",
    "WEIGHT_FORMATS": "tflat.model.formats:FORMATS",
    # delegates: which kernels run a graph
    "Kernel": "tflat.gpu",
    "partition": "tflat.cpu.delegates",
    # plans: what to measure
    "load_plan": "tflat.plans",
    "generate": "tflat.plans",
    "adaptive_specs": "tflat.plans",
    "summarize_plan": "tflat.plans:summarize",
    # bench: measuring
    "get_runner": "tflat.bench",
    "measure": "tflat.bench.measure",
    "MeasureResult": "tflat.bench.measure",
    "BenchItem": "tflat.bench.campaign",
    "CampaignResult": "tflat.bench.campaign",
    "Progress": "tflat.bench.campaign",
    "WideSpread": "tflat.bench.campaign",
    "SPREAD_LIMIT": "tflat.bench.campaign",
    "SPREAD_STATISTIC": "tflat.bench.campaign",
    "run_campaign": "tflat.bench.campaign",
    "bench_model": "tflat.bench.campaign",
    "relative_spread": "tflat.bench.campaign",
    # store: the measurement database
    "open_store": "tflat.store",
    "RunSettings": "tflat.store.measurement",
    "Measurement": "tflat.store.measurement",
    "SpecRecord": "tflat.store",
    "import_usc": "tflat.store.usc",
    "import_measurements_csv": "tflat.store.tabular",
    "export_measurements_csv": "tflat.store.tabular:to_csv",
    "export_measurements_parquet": "tflat.store.tabular:write_parquet",
    "load_usc": "tflat.datasets.usc",
    "USC_DEVICES": "tflat.datasets.usc:DEVICES",
    "usc_family_of": "tflat.datasets.usc:family_of",
    # predictors: trained, shipped, calibrated
    "Predictor": "tflat.predict",
    "GraphPrediction": "tflat.predict",
    "KernelTime": "tflat.predict",
    "DeviceCard": "tflat.predict",
    "fit_device": "tflat.predict",
    "bundle_json": "tflat.predict.bundles",
    "evaluate_families": "tflat.predict.evaluate",
    "write_plot": "tflat.predict.plot",
    "check_plot_path": "tflat.predict.plot",
    "load_predictor": "tflat.pricing.predictors",
    "list_devices": "tflat.pricing.predictors",
    "train_device": "tflat.calibrate.workflows",
    "evaluate_device": "tflat.calibrate.workflows",
    # (not "calibrate": tflat.calibrate is the subpackage, which an import would shadow it with)
    "calibrate_device": "tflat.calibrate:calibrate",
    # a device from little: timings transferred from the shipped phones, or a sharpened one
    "add_device": "tflat.devices.add",
    "AddResult": "tflat.devices.add",
    "install_device": "tflat.devices.install:install_bundle",
    "write_bundle_file": "tflat.devices.install",
    "save_sharpened": "tflat.devices.sharpen",
    "evaluate_models": "tflat.calibrate",
    # progress of long calls (reported by the library, drawn by the CLI)
    "Step": "tflat.progress",
    # pricing and the estimate
    "estimate": "tflat.pricing.compose",
    "estimate_with": "tflat.pricing.compose",
    "Estimate": "tflat.estimation",
    "LayerEstimate": "tflat.estimation",
    "KernelEstimate": "tflat.estimation",
}

__all__ = [
    "SPREAD_LIMIT",
    "SPREAD_STATISTIC",
    "USC_DEVICES",
    "WEIGHT_FORMATS",
    "AddResult",
    "BenchItem",
    "CampaignResult",
    "DeviceCard",
    "DeviceError",
    "Estimate",
    "Graph",
    "GraphBuilder",
    "GraphPrediction",
    "Kernel",
    "KernelEstimate",
    "KernelTime",
    "LayerEstimate",
    "MeasureResult",
    "Measurement",
    "ModelFormatError",
    "Op",
    "OpSpec",
    "Predictor",
    "PredictorError",
    "Progress",
    "RunSettings",
    "SpecError",
    "SpecRecord",
    "Step",
    "StoreError",
    "TensorInfo",
    "TflatError",
    "WideSpread",
    "__version__",
    "adaptive_specs",
    "add_device",
    "bench_model",
    "build_in_format",
    "build_model",
    "build_spec",
    "bundle_json",
    "calibrate_device",
    "check_plot_path",
    "estimate",
    "estimate_with",
    "evaluate_device",
    "evaluate_families",
    "evaluate_models",
    "export_measurements_csv",
    "export_measurements_parquet",
    "fit_device",
    "generate",
    "get_runner",
    "import_measurements_csv",
    "import_usc",
    "install_device",
    "list_devices",
    "load_plan",
    "load_predictor",
    "load_usc",
    "measure",
    "open_store",
    "parse_input_shapes",
    "partition",
    "read_model",
    "relative_spread",
    "run_campaign",
    "save_sharpened",
    "summarize_plan",
    "train_device",
    "unresolved_warnings",
    "usc_family_of",
    "write_bundle_file",
    "write_plot",
    "write_spec",
]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'tflat' has no attribute {name!r}")
    module, _, attr = where.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:
    from tflat.bench import get_runner
    from tflat.bench.campaign import (
        SPREAD_LIMIT,
        SPREAD_STATISTIC,
        BenchItem,
        CampaignResult,
        Progress,
        WideSpread,
        bench_model,
        relative_spread,
        run_campaign,
    )
    from tflat.bench.measure import MeasureResult, measure
    from tflat.calibrate import calibrate as calibrate_device
    from tflat.calibrate import evaluate_models
    from tflat.calibrate.workflows import evaluate_device, train_device
    from tflat.cpu.delegates import partition
    from tflat.datasets.usc import DEVICES as USC_DEVICES
    from tflat.datasets.usc import family_of as usc_family_of
    from tflat.datasets.usc import load_usc
    from tflat.devices.add import AddResult, add_device
    from tflat.devices.install import install_bundle as install_device
    from tflat.devices.install import write_bundle_file
    from tflat.devices.sharpen import save_sharpened
    from tflat.estimation import Estimate, KernelEstimate, LayerEstimate
    from tflat.gpu import Kernel
    from tflat.model.formats import FORMATS as WEIGHT_FORMATS
    from tflat.model.formats import build_in_format
    from tflat.model.ops import Graph, Op, TensorInfo
    from tflat.model.reader import read_model
    from tflat.model.shapes import parse_input_shapes, unresolved_warnings
    from tflat.model.spec import OpSpec
    from tflat.model.writer import GraphBuilder, build_spec, write_spec
    from tflat.model.zoo import build_model
    from tflat.plans import adaptive_specs, generate, load_plan
    from tflat.plans import summarize as summarize_plan
    from tflat.predict import DeviceCard, GraphPrediction, KernelTime, Predictor, fit_device
    from tflat.predict.bundles import bundle_json
    from tflat.predict.evaluate import evaluate_families
    from tflat.predict.plot import check_plot_path, write_plot
    from tflat.pricing.compose import estimate, estimate_with
    from tflat.pricing.predictors import list_devices, load_predictor
    from tflat.progress import Step
    from tflat.store import SpecRecord, open_store
    from tflat.store.measurement import Measurement, RunSettings
    from tflat.store.tabular import import_measurements_csv
    from tflat.store.tabular import to_csv as export_measurements_csv
    from tflat.store.tabular import write_parquet as export_measurements_parquet
    from tflat.store.usc import import_usc
