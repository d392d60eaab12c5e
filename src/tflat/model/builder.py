"""The graph builder's ground floor: tensors, constants, weights, generic ops, packing.

:class:`BuilderBase` holds the tensors and ops of one subgraph and packs them with the
flatbuffer object API of the schema LiteRT ships, so what it writes is what the runtime reads.
Its :meth:`~BuilderBase.op` writes any builtin op from explicit output shapes and options; the
typed network ops (conv, pool, FC, ...) that compute and check their shapes live on
:class:`tflat.model.layers.GraphBuilder`, which is what callers use.

Models are float32 unless asked otherwise. Weights are constants with seeded random values.
``weights="float16"`` stores weights and biases as fp16 constants behind DEQUANTIZE ops, as
fp16-converted models do; int8 weights are per channel with int32 biases. ``to_bytes(
blank_shapes=True)`` writes a model as converters write one with a dynamic input: every
computed tensor stores 1s with ``-1`` in its signature, so the runtime must resolve each shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflat.errors import SpecError
from tflat.model.schema import builtin_codes, schema, tensor_type_codes
from tflat.model.spec import conv_output_size

log = logging.getLogger(__name__)

#: Quantization of int8 activations: one scale everywhere keeps CONCATENATION and pools valid.
INT8_SCALE = 0.05
#: Output quantization the int8 kernels require for these ops (TFLite's fixed ranges).
_FIXED_OUTPUT_QUANT = {
    "LOGISTIC": (1 / 256, -128),
    "SOFTMAX": (1 / 256, -128),
    "TANH": (1 / 128, 0),
}
_GREATER_OP_CODES = 127  # deprecated_builtin_code placeholder for codes above 127


@dataclass(frozen=True)
class Tensor:
    """A tensor of the graph being built (an index into its tensor table)."""

    index: int
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int = 0


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


class BuilderBase:
    """Tensors and ops of one subgraph, packed to .tflite bytes by :meth:`to_bytes`."""

    def __init__(
        self, *, seed: int = 0, weights: str = "float32", description: str = "tflat"
    ) -> None:
        if weights not in ("float32", "float16"):
            raise SpecError(f"weights must be float32 or float16, not {weights!r}")
        self.weights = weights
        self.description = description
        self._rng = np.random.default_rng(seed)
        self._s = schema()
        self._tensors: list[Any] = []
        self._buffers: list[Any] = [self._s.BufferT()]  # buffer 0: the empty sentinel
        self._ops: list[Any] = []
        self._codes: dict[tuple[str, int], int] = {}
        self._inputs: list[int] = []
        self._outputs: list[int] = []

    # --- tensors ---------------------------------------------------------------------------

    def _tensor(
        self,
        shape: Sequence[int],
        dtype: str,
        name: str,
        data: np.ndarray | None = None,
        scale: float | Sequence[float] | np.ndarray | None = None,
        zero_point: int = 0,
        axis: int = 0,
        signature: Sequence[int] | None = None,
    ) -> Tensor:
        s = self._s
        t = s.TensorT()
        t.shape = np.asarray(shape, dtype=np.int32)
        if signature is not None:
            if len(signature) != len(shape):
                raise SpecError(f"signature {list(signature)} does not fit shape {list(shape)}")
            t.shapeSignature = np.asarray(signature, dtype=np.int32)
        t.type = tensor_type_codes()[dtype]
        t.name = f"{name}_{len(self._tensors)}"
        if data is not None:
            buf = s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self._buffers.append(buf)
            t.buffer = len(self._buffers) - 1
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            q = s.QuantizationParametersT()
            q.scale = scales
            q.zeroPoint = np.full(len(scales), zero_point, dtype=np.int64)
            q.quantizedDimension = axis
            t.quantization = q
        self._tensors.append(t)
        first_scale = float(np.atleast_1d(scale)[0]) if scale is not None else None
        return Tensor(
            len(self._tensors) - 1, tuple(int(d) for d in shape), dtype, first_scale, zero_point
        )

    def input(
        self,
        shape: Sequence[int],
        name: str = "input",
        *,
        dtype: str = "float32",
        signature: Sequence[int] | None = None,
        scale: float | None = None,
    ) -> Tensor:
        """A graph input (float32 unless told; ``scale`` quantizes an int8 one, as the
        converter writes it); ``signature`` marks dynamic dims with -1."""
        t = self._tensor(shape, dtype, name, scale=scale, signature=signature)
        self._inputs.append(t.index)
        return t

    def const(
        self, values: Sequence[Any] | np.ndarray, dtype: str = "int32", name: str = "const"
    ) -> Tensor:
        """A constant of any dtype, stored as given (axes, shapes, indices, tables)."""
        arr = np.asarray(values, dtype=np.dtype(dtype))
        return self._tensor(arr.shape, dtype, name, data=arr)

    def variable(self, shape: Sequence[int], dtype: str = "float32", name: str = "state") -> Tensor:
        """A variable tensor: state an op keeps between runs (an LSTM's hidden and cell)."""
        t = self._tensor(shape, dtype, name)
        self._tensors[t.index].isVariable = True
        return t

    def op(
        self,
        kind: str,
        inputs: Sequence[Tensor | None],
        outputs: Sequence[Sequence[int]],
        *,
        dtype: str | Sequence[str] = "float32",
        options: tuple[str, Mapping[str, Any]] | None = None,
        version: int = 1,
    ) -> tuple[Tensor, ...]:
        """Any builtin op, written as told: ``outputs`` are the shapes to store (the runtime
        recomputes them), ``dtype`` the output type(s), ``options`` the name of the schema's
        options table and its fields by object-API name (``("SqueezeOptions",
        {"squeezeDims": [1]})``). Nothing is checked: this writes what converters write."""
        dtypes = [dtype] * len(outputs) if isinstance(dtype, str) else list(dtype)
        outs = [
            self._tensor(shape, d, kind.lower()) for shape, d in zip(outputs, dtypes, strict=True)
        ]
        opt, opt_name = None, None
        if options is not None:
            opt_name, fields = options
            opt = getattr(self._s, opt_name + "T")()
            for key, value in fields.items():
                if not hasattr(opt, key):
                    raise SpecError(f"{opt_name} has no field {key}")
                setattr(opt, key, value)
        self._op(kind, inputs, outs, opt, opt_name, version)
        return tuple(outs)

    def output(self, *tensors: Tensor) -> None:
        self._outputs.extend(t.index for t in tensors)

    def _activation_like(
        self, shape: Sequence[int], like: Tensor, name: str, op: str | None = None
    ) -> Tensor:
        if like.dtype == "int8":
            scale, zp = _FIXED_OUTPUT_QUANT.get(op or "", (INT8_SCALE, 0))
            return self._tensor(shape, "int8", name, scale=scale, zero_point=zp)
        return self._tensor(shape, like.dtype, name)

    def constant(self, values: np.ndarray | Sequence[float], name: str = "const") -> Tensor:
        """A float constant operand (fp16 + DEQUANTIZE when the builder stores fp16 weights)."""
        return self._float_const(np.asarray(values, dtype=np.float32), name)

    def _const_int32(self, values: Sequence[int] | np.ndarray, name: str) -> Tensor:
        arr = np.asarray(values, dtype=np.int32)
        return self._tensor(arr.shape, "int32", name, data=arr)

    def _weights(self, shape: Sequence[int], x: Tensor, name: str, axis: int) -> Tensor:
        """Weights for an op reading ``x``: float32, fp16 + DEQUANTIZE, or int8 per channel."""
        fan_in = int(np.prod(shape)) // max(shape[axis], 1)
        w = self._rng.standard_normal(size=tuple(shape), dtype=np.float32)
        w *= np.float32(1.0 / np.sqrt(max(fan_in, 1)))
        if x.dtype == "int8":
            q = self._rng.integers(-127, 128, size=tuple(shape), dtype=np.int8)
            scales = np.full(shape[axis], 0.01, dtype=np.float32)
            return self._tensor(shape, "int8", name, data=q, scale=scales, axis=axis)
        return self._float_const(w, name)

    def _float_const(self, values: np.ndarray, name: str) -> Tensor:
        if self.weights == "float16":
            half = self._tensor(
                values.shape, "float16", name + "_fp16", data=values.astype(np.float16)
            )
            out = self._tensor(values.shape, "float32", name)
            self._op("DEQUANTIZE", [half], [out], version=3)
            return out
        return self._tensor(values.shape, "float32", name, data=values)

    def _bias(self, n: int, x: Tensor, w: Tensor, name: str) -> Tensor:
        if x.dtype == "int8":
            scale = (x.scale or INT8_SCALE) * 0.01
            data = self._rng.integers(-1000, 1000, size=n, dtype=np.int32)
            return self._tensor((n,), "int32", name, data=data, scale=np.full(n, scale))
        return self._float_const(self._rng.standard_normal(n, dtype=np.float32) * 0.1, name)

    # --- ops -------------------------------------------------------------------------------

    def _op(
        self,
        kind: str,
        inputs: Sequence[Tensor | None],
        outputs: Sequence[Tensor],
        options: Any = None,
        options_name: str | None = None,
        version: int = 1,
    ) -> None:
        s = self._s
        code = builtin_codes().get(kind)
        key = (kind, self._op_version(kind, inputs, version))
        if code is None:
            raise SpecError(f"unknown builtin op {kind}")
        self._codes.setdefault(key, len(self._codes))
        # Kernels count their inputs (CONV_2D has a bias iff it has 3), so an omitted optional
        # input at the end is left out rather than written as -1.
        inputs = list(inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        op = s.OperatorT()
        op.opcodeIndex = self._codes[key]
        op.inputs = np.asarray([t.index if t is not None else -1 for t in inputs], dtype=np.int32)
        op.outputs = np.asarray([t.index for t in outputs], dtype=np.int32)
        if options is not None:
            op.builtinOptionsType = getattr(s.BuiltinOptions, options_name or "")
            op.builtinOptions = options
        self._ops.append(op)

    def _op_version(self, kind: str, inputs: Sequence[Tensor | None], version: int) -> int:
        """The version an op is written with (a subclass may pick another for its types)."""
        return version

    def _act(self, activation: str) -> int:
        name = {"none": "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}
        if activation not in name:
            raise SpecError(f"unsupported fused activation {activation!r}")
        return int(getattr(self._s.ActivationFunctionType, name[activation]))

    def _padding(self, padding: str) -> int:
        return int(self._s.Padding.SAME if padding == "same" else self._s.Padding.VALID)

    @staticmethod
    def _int8_version(x: Tensor, base: int = 1) -> int:
        return 2 if x.dtype == "int8" else base

    def _window_out(
        self,
        x: Tensor,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        padding: str,
        what: str,
    ) -> tuple[int, int]:
        if len(x.shape) != 4:
            raise SpecError(f"{what}: input shape {list(x.shape)} is not NHWC")
        out = []
        for size, k, s, d in zip(x.shape[1:3], kernel, stride, dilation, strict=True):
            effective = (k - 1) * d + 1
            o = conv_output_size(size, k, s, d, padding)
            if (padding == "valid" and effective > size) or o <= 0:
                raise SpecError(f"{what}: kernel {kernel} does not fit input {list(x.shape)}")
            out.append(o)
        return out[0], out[1]

    # --- packing ---------------------------------------------------------------------------

    def to_bytes(self, *, blank_shapes: bool = False) -> bytes:
        """The model as .tflite bytes (schema version 3, file identifier ``TFL3``).

        ``blank_shapes`` stores every tensor an op computes as converters store one that
        depends on a dynamic input: 1 in each dimension, -1 in its signature.
        """
        import copy

        import flatbuffers

        s = self._s
        if not self._inputs or not self._outputs:
            raise SpecError("a model needs at least one input and one output")
        tensors = self._tensors
        if blank_shapes:
            computed = {int(i) for op in self._ops for i in op.outputs}
            tensors = [copy.copy(t) for t in tensors]
            for i in computed:
                rank = len(tensors[i].shape)
                tensors[i].shape = np.ones(rank, dtype=np.int32)
                tensors[i].shapeSignature = np.full(rank, -1, dtype=np.int32)
        sg = s.SubGraphT()
        sg.tensors, sg.operators = tensors, self._ops
        sg.inputs = np.asarray(self._inputs, dtype=np.int32)
        sg.outputs = np.asarray(self._outputs, dtype=np.int32)
        sg.name = "main"
        codes: list[Any] = [None] * len(self._codes)
        for (kind, version), i in self._codes.items():
            oc = s.OperatorCodeT()
            code = builtin_codes()[kind]
            oc.builtinCode, oc.deprecatedBuiltinCode = code, min(code, _GREATER_OP_CODES)
            oc.version = version
            codes[i] = oc
        model = s.ModelT()
        model.version = 3
        model.operatorCodes = codes
        model.subgraphs = [sg]
        model.buffers = self._buffers
        model.description = self.description
        size = sum(len(b.data) for b in self._buffers if b.data is not None)
        fb = flatbuffers.Builder(size + 4096)
        fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
        return bytes(fb.Output())
