"""The GPU predictor: kernel features, regressors, training, evaluation, shipped bundles.

:class:`Predictor` predicts a graph's kernels from a bundle; :func:`fit_device` trains one from
measurements. Which predictor a device has is :func:`tflat.load_predictor`'s answer
(:mod:`tflat.pricing.predictors`).
"""

from tflat.predict.bundles import BUNDLED_DEVICES
from tflat.predict.predictor import DeviceCard, GraphPrediction, KernelTime, Predictor

__all__ = [
    "BUNDLED_DEVICES",
    "DeviceCard",
    "GraphPrediction",
    "KernelTime",
    "Predictor",
    "fit_device",
]


def __getattr__(name: str) -> object:
    # Training pulls scipy/LightGBM: import it only when asked for.
    if name == "fit_device":
        from tflat.predict.train import fit_device

        return fit_device
    raise AttributeError(name)
