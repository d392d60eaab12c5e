"""One network in the weight formats users ship, written without TensorFlow.

The TFLite converter turns one float model into several files; tflat's estimate must treat each
as the GPU delegate does (:mod:`tflat.gpu.precision`), so tests and benchmarks need them all:

``fp32``
    float32 weights and activations.
``fp16``
    fp16 weight constants, each behind a DEQUANTIZE (``target_spec.supported_types=[float16]``).
``int8``
    full integer: QUANTIZE after the float input, int8 ops with per-channel weights, DEQUANTIZE
    before the float output (representative dataset, int8 builtins only).
``int8_io``
    full integer with int8 graph inputs and outputs (``inference_input_type=tf.int8``).
``dynamic``
    dynamic-range: float activations, int8 per-channel weight constants read directly by the
    "hybrid" CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (``optimizations=[DEFAULT]`` alone);
    other weights (TRANSPOSE_CONV) as int8 behind a DEQUANTIZE.
``int8_weights``
    weight-only int8: every weight an int8 constant behind a DEQUANTIZE, ops in float.

Op versions follow TFLite's op_version.cc for the types used (a hybrid per-channel CONV_2D is
version 5, DEPTHWISE_CONV_2D 6, FULLY_CONNECTED 12).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tflat.errors import SpecError
from tflat.model.builder import INT8_SCALE, Tensor
from tflat.model.layers import GraphBuilder

FORMATS = ("fp32", "fp16", "int8", "int8_io", "dynamic", "int8_weights")

#: Versions of the hybrid (float input, int8 per-channel weights) ops (op_version.cc).
_HYBRID_VERSION = {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 6, "FULLY_CONNECTED": 12}


class FormatBuilder(GraphBuilder):
    """A :class:`GraphBuilder` writing weights as ``fmt`` asks (see the module docstring);
    ``fp16`` and the full-int8 formats are the plain builder's own."""

    def __init__(self, fmt: str, *, seed: int = 0, description: str = "tflat") -> None:
        if fmt not in FORMATS:
            raise SpecError(f"weight format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        weights = "float16" if fmt == "fp16" else "float32"
        super().__init__(seed=seed, weights=weights, description=description)
        self.fmt = fmt

    def _weights(self, shape: Sequence[int], x: Tensor, name: str, axis: int) -> Tensor:
        if self.fmt not in ("dynamic", "int8_weights") or x.dtype != "float32":
            return super()._weights(shape, x, name, axis)
        q = self._rng.integers(-127, 128, size=tuple(shape), dtype=np.int8)
        scales = np.full(shape[axis], 0.01, dtype=np.float32)
        w = self._tensor(shape, "int8", name + "_int8", data=q, scale=scales, axis=axis)
        if self.fmt == "dynamic" and name != "tconv_weights":
            return w  # a hybrid op reads the int8 constant itself
        out = self._tensor(shape, "float32", name)
        self._op("DEQUANTIZE", [w], [out], version=2)
        return out

    def _op_version(self, kind: str, inputs: Sequence[Tensor | None], version: int) -> int:
        # a hybrid op (float input, int8 weight constant) has a version of its own
        data, weights = (*inputs, None, None)[:2]
        if kind not in _HYBRID_VERSION or data is None or weights is None:
            return version
        hybrid = (data.dtype, weights.dtype) == ("float32", "int8")
        return max(version, _HYBRID_VERSION[kind]) if hybrid else version


def build_in_format(
    arch: str, fmt: str, *, width: float = 1.0, input_size: int = 224, seed: int = 0
) -> bytes:
    """The .tflite bytes of zoo network ``arch`` (:data:`tflat.model.zoo.ARCHITECTURES`) in
    weight format ``fmt``; the same seed gives the same float weights in every format."""
    from tflat.model.zoo import ARCHITECTURES

    if arch not in ARCHITECTURES:
        raise SpecError(f"unknown zoo architecture {arch!r}")
    b = FormatBuilder(fmt, seed=seed, description=f"tflat {arch} {fmt}")
    shape = (1, input_size, input_size, 3)
    # an int8 graph input carries its quantization, as the converter writes it
    x = b.input(shape, dtype="int8", scale=INT8_SCALE) if fmt == "int8_io" else b.input(shape)
    int8 = fmt in ("int8", "int8_io")
    if fmt == "int8":
        x = b.quantize(x)
    y = ARCHITECTURES[arch](b, x, width=width)
    b.output(b.dequantize(y) if fmt == "int8" else y)
    if int8 and y.dtype != "int8":
        raise SpecError(f"{arch} did not stay int8 to its output")
    return b.to_bytes()
