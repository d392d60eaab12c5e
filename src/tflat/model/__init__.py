"""The model layer: typed op records, the .tflite reader and the single-op writer."""

from tflat.model.ops import Graph, Op, Quantization, Subgraph, TensorInfo
from tflat.model.reader import read_model

__all__ = ["Graph", "Op", "Quantization", "Subgraph", "TensorInfo", "read_model"]
