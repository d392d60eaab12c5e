"""tflat: how long a TFLite model takes on a phone's GPU, before anyone runs it on a phone.

The public API. The CLI uses only what is listed in ``__all__``. Importing tflat does no work:
heavy modules (LiteRT, SQLAlchemy, scikit-learn) load inside the functions that need them.
"""

from tflat.errors import (
    DeviceError,
    ModelFormatError,
    PredictorError,
    SpecError,
    StoreError,
    TflatError,
)
from tflat.model import Graph, Op, TensorInfo, read_model

__version__ = "0.1.0"

__all__ = [
    "DeviceError",
    "Graph",
    "ModelFormatError",
    "Op",
    "PredictorError",
    "SpecError",
    "StoreError",
    "TensorInfo",
    "TflatError",
    "__version__",
    "read_model",
]
