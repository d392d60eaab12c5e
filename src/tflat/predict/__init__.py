"""Per-device latency predictors: features, regressors, training, evaluation, bundles.

Use :func:`load_predictor` and :meth:`Predictor.predict_graph`; :func:`fit_device` trains a
bundle from measurements; :func:`list_devices` tells what is available.
"""

from tflat.predict.bundles import BUNDLED_DEVICES, list_devices, load_predictor
from tflat.predict.predictor import DeviceCard, GraphPrediction, KernelTime, Predictor

__all__ = [
    "BUNDLED_DEVICES",
    "DeviceCard",
    "GraphPrediction",
    "KernelTime",
    "Predictor",
    "fit_device",
    "list_devices",
    "load_predictor",
]


def __getattr__(name: str) -> object:
    # Training pulls scipy/LightGBM: import it only when asked for.
    if name == "fit_device":
        from tflat.predict.train import fit_device

        return fit_device
    raise AttributeError(name)
