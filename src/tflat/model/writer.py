"""Write .tflite models without TensorFlow: a small graph builder over LiteRT's schema.

:class:`GraphBuilder` holds tensors and ops and packs them with the flatbuffer object API of
the schema LiteRT ships, so what it writes is what the runtime reads. One use of it writes a
single-op benchmark model (:func:`write_spec`), another a whole network (:mod:`tflat.model.zoo`).

Models are float32 unless asked otherwise. Weights are constants with seeded random values.
``weights="float16"`` stores weights and biases as fp16 constants behind DEQUANTIZE ops, as
fp16-converted models do; int8 ops come from ``quantize()``-ing a float input, after which
every op works in int8 (per-channel weights, int32 biases) until ``dequantize()``. Op versions
follow TFLite's versioning rules (tensorflow/lite/tools/versioning/op_version.cc) for the
options used, e.g. grouped CONV_2D is version 6, dilated DEPTHWISE_CONV_2D version 2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflat.errors import SpecError
from tflat.model.ops import Graph
from tflat.model.schema import builtin_codes, schema, tensor_type_codes
from tflat.model.spec import OpSpec, conv_output_size, transpose_conv_output_size

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


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


class GraphBuilder:
    """Tensors and ops of one subgraph, packed to .tflite bytes by :meth:`to_bytes`.

    Each op method takes input tensors, creates its weights and output, checks the shapes
    (invalid ones raise :class:`SpecError`) and returns the output tensor.
    """

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
    ) -> Tensor:
        s = self._s
        t = s.TensorT()
        t.shape = np.asarray(shape, dtype=np.int32)
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

    def input(self, shape: Sequence[int], name: str = "input") -> Tensor:
        """A float32 graph input."""
        t = self._tensor(shape, "float32", name)
        self._inputs.append(t.index)
        return t

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
        key = (kind, version)
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

    def conv2d(
        self,
        x: Tensor,
        cout: int,
        kernel: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        dilation: int | Sequence[int] = 1,
        padding: str = "same",
        groups: int = 1,
        activation: str = "none",
    ) -> Tensor:
        k, st, dl = _pair(kernel), _pair(stride), _pair(dilation)
        cin = x.shape[-1]
        if groups < 1 or cin % groups or cout % groups:
            raise SpecError(f"CONV_2D: groups {groups} do not divide cin {cin} and cout {cout}")
        oh, ow = self._window_out(x, k, st, dl, padding, "CONV_2D")
        w = self._weights((cout, k[0], k[1], cin // groups), x, "conv_weights", axis=0)
        b = self._bias(cout, x, w, "conv_bias")  # LiteRT's CONV_2D refuses a missing bias
        out = self._activation_like((1, oh, ow, cout), x, "conv")
        opt = self._s.Conv2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = self._padding(padding), st[0], st[1]
        opt.dilationHFactor, opt.dilationWFactor = dl[0], dl[1]
        opt.fusedActivationFunction = self._act(activation)
        version = 6 if groups > 1 else (3 if x.dtype == "int8" else 1)
        self._op("CONV_2D", [x, w, b], [out], opt, "Conv2DOptions", version)
        return out

    def depthwise_conv2d(
        self,
        x: Tensor,
        kernel: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        dilation: int | Sequence[int] = 1,
        padding: str = "same",
        depth_multiplier: int = 1,
        activation: str = "none",
    ) -> Tensor:
        k, st, dl = _pair(kernel), _pair(stride), _pair(dilation)
        cout = x.shape[-1] * depth_multiplier
        oh, ow = self._window_out(x, k, st, dl, padding, "DEPTHWISE_CONV_2D")
        w = self._weights((1, k[0], k[1], cout), x, "dw_weights", axis=3)
        b = self._bias(cout, x, w, "dw_bias")
        out = self._activation_like((1, oh, ow, cout), x, "dwconv")
        opt = self._s.DepthwiseConv2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = self._padding(padding), st[0], st[1]
        opt.dilationHFactor, opt.dilationWFactor = dl[0], dl[1]
        opt.depthMultiplier = depth_multiplier
        opt.fusedActivationFunction = self._act(activation)
        version = 3 if x.dtype == "int8" else (2 if dl != (1, 1) else 1)
        self._op("DEPTHWISE_CONV_2D", [x, w, b], [out], opt, "DepthwiseConv2DOptions", version)
        return out

    def transpose_conv(
        self,
        x: Tensor,
        cout: int,
        kernel: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        activation: str = "none",
        bias: bool = True,
    ) -> Tensor:
        k, st = _pair(kernel), _pair(stride)
        if len(x.shape) != 4:
            raise SpecError(f"TRANSPOSE_CONV: input shape {list(x.shape)} is not NHWC")
        oh, ow = (
            transpose_conv_output_size(size, kk, s, padding)
            for size, kk, s in zip(x.shape[1:3], k, st, strict=True)
        )
        shape = self._const_int32([1, oh, ow, cout], "output_shape")
        w = self._weights((cout, k[0], k[1], x.shape[-1]), x, "tconv_weights", axis=0)
        b = self._bias(cout, x, w, "tconv_bias") if bias else None
        out = self._activation_like((1, oh, ow, cout), x, "tconv")
        opt = self._s.TransposeConvOptionsT()
        opt.padding, opt.strideH, opt.strideW = self._padding(padding), st[0], st[1]
        opt.fusedActivationFunction = self._act(activation)
        version = 4 if activation != "none" else 3 if bias else 2 if x.dtype == "int8" else 1
        self._op("TRANSPOSE_CONV", [shape, w, x, b], [out], opt, "TransposeConvOptions", version)
        return out

    def fully_connected(
        self, x: Tensor, cout: int, *, activation: str = "none", bias: bool = True
    ) -> Tensor:
        cin = x.shape[-1]
        rows = int(np.prod(x.shape)) // cin
        w = self._weights((cout, cin), x, "fc_weights", axis=0)
        if x.dtype == "int8":  # int8 FULLY_CONNECTED takes per-tensor weights
            self._tensors[w.index].quantization.scale = np.array([0.01], dtype=np.float32)
            self._tensors[w.index].quantization.zeroPoint = np.array([0], dtype=np.int64)
        b = self._bias(cout, x, w, "fc_bias") if bias else None
        out = self._activation_like((rows, cout), x, "fc")
        opt = self._s.FullyConnectedOptionsT()
        opt.fusedActivationFunction = self._act(activation)
        version = 6 if not bias else 4 if x.dtype == "int8" else 1
        inputs = [x, w, b] if bias else [x, w]
        self._op("FULLY_CONNECTED", inputs, [out], opt, "FullyConnectedOptions", version)
        return out

    def pool(
        self,
        kind: str,
        x: Tensor,
        kernel: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        activation: str = "none",
    ) -> Tensor:
        """MAX_POOL_2D or AVERAGE_POOL_2D."""
        if kind not in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            raise SpecError(f"not a pool: {kind}")
        k, st = _pair(kernel), _pair(stride)
        oh, ow = self._window_out(x, k, st, (1, 1), padding, kind)
        out = self._activation_like((1, oh, ow, x.shape[-1]), x, kind.lower())
        opt = self._s.Pool2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = self._padding(padding), st[0], st[1]
        opt.filterHeight, opt.filterWidth = k
        opt.fusedActivationFunction = self._act(activation)
        self._op(kind, [x], [out], opt, "Pool2DOptions", self._int8_version(x))
        return out

    def mean(self, x: Tensor, *, keep_dims: bool = True) -> Tensor:
        """Global average over height and width (axes 1, 2)."""
        axes = self._const_int32([1, 2], "mean_axes")
        shape = (1, 1, 1, x.shape[-1]) if keep_dims else (1, x.shape[-1])
        out = self._activation_like(shape, x, "mean")
        opt = self._s.ReducerOptionsT()
        opt.keepDims = keep_dims
        self._op("MEAN", [x, axes], [out], opt, "ReducerOptions", self._int8_version(x))
        return out

    def concat(self, xs: Sequence[Tensor], *, activation: str = "none") -> Tensor:
        """Concatenation along the last axis."""
        base = xs[0].shape[:-1]
        if any(t.shape[:-1] != base for t in xs):
            raise SpecError(f"CONCATENATION: shapes {[list(t.shape) for t in xs]} differ")
        out = self._activation_like((*base, sum(t.shape[-1] for t in xs)), xs[0], "concat")
        opt = self._s.ConcatenationOptionsT()
        opt.axis = len(base)
        opt.fusedActivationFunction = self._act(activation)
        version = self._int8_version(xs[0])
        self._op("CONCATENATION", list(xs), [out], opt, "ConcatenationOptions", version)
        return out

    def binary(self, kind: str, a: Tensor, b: Tensor, *, activation: str = "none") -> Tensor:
        """ADD or MUL; ``b`` may broadcast against ``a`` (numpy rules)."""
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError as exc:
            raise SpecError(
                f"{kind}: shapes {list(a.shape)} and {list(b.shape)} do not broadcast"
            ) from exc
        out = self._activation_like(shape, a, kind.lower())
        if kind == "ADD":
            opt: Any = self._s.AddOptionsT()
            name = "AddOptions"
        elif kind == "MUL":
            opt = self._s.MulOptionsT()
            name = "MulOptions"
        else:
            raise SpecError(f"not a binary op: {kind}")
        opt.fusedActivationFunction = self._act(activation)
        self._op(kind, [a, b], [out], opt, name, self._int8_version(a))
        return out

    def add(self, a: Tensor, b: Tensor, *, activation: str = "none") -> Tensor:
        return self.binary("ADD", a, b, activation=activation)

    def mul(self, a: Tensor, b: Tensor, *, activation: str = "none") -> Tensor:
        return self.binary("MUL", a, b, activation=activation)

    def unary(self, kind: str, x: Tensor) -> Tensor:
        """RELU, RELU6, HARD_SWISH, LOGISTIC or TANH."""
        if kind not in ("RELU", "RELU6", "HARD_SWISH", "LOGISTIC", "TANH"):
            raise SpecError(f"not a unary activation: {kind}")
        out = self._activation_like(x.shape, x, kind.lower(), op=kind)
        version = 1 if kind == "HARD_SWISH" else self._int8_version(x)
        self._op(kind, [x], [out], version=version)
        return out

    def pad(self, x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
        pads = self._const_int32(
            np.array([[0, 0], [top, bottom], [left, right], [0, 0]]), "paddings"
        )
        n, h, w, c = x.shape
        out = self._activation_like((n, h + top + bottom, w + left + right, c), x, "pad")
        self._op(
            "PAD", [x, pads], [out], self._s.PadOptionsT(), "PadOptions", self._int8_version(x)
        )
        return out

    def resize_bilinear(
        self,
        x: Tensor,
        size: Sequence[int],
        *,
        align_corners: bool = False,
        half_pixel_centers: bool = False,
    ) -> Tensor:
        oh, ow = _pair(tuple(size))
        sz = self._const_int32([oh, ow], "size")
        out = self._activation_like((x.shape[0], oh, ow, x.shape[-1]), x, "resize")
        opt = self._s.ResizeBilinearOptionsT()
        opt.alignCorners, opt.halfPixelCenters = align_corners, half_pixel_centers
        version = 3 if half_pixel_centers else self._int8_version(x)
        self._op("RESIZE_BILINEAR", [x, sz], [out], opt, "ResizeBilinearOptions", version)
        return out

    def softmax(self, x: Tensor, *, beta: float = 1.0) -> Tensor:
        out = self._activation_like(x.shape, x, "softmax", op="SOFTMAX")
        opt = self._s.SoftmaxOptionsT()
        opt.beta = beta
        self._op("SOFTMAX", [x], [out], opt, "SoftmaxOptions", self._int8_version(x))
        return out

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        if int(np.prod(shape)) != int(np.prod(x.shape)):
            raise SpecError(f"RESHAPE: {list(x.shape)} cannot become {list(shape)}")
        new = self._const_int32(list(shape), "new_shape")
        out = self._activation_like(tuple(shape), x, "reshape")
        opt = self._s.ReshapeOptionsT()
        opt.newShape = np.asarray(shape, dtype=np.int32)
        self._op("RESHAPE", [x, new], [out], opt, "ReshapeOptions")
        return out

    def quantize(self, x: Tensor) -> Tensor:
        """float32 -> int8 (per-tensor, scale :data:`INT8_SCALE`)."""
        out = self._tensor(x.shape, "int8", "quantized", scale=INT8_SCALE)
        self._op("QUANTIZE", [x], [out], version=1)
        return out

    def dequantize(self, x: Tensor) -> Tensor:
        out = self._tensor(x.shape, "float32", "dequantized")
        self._op("DEQUANTIZE", [x], [out], version=2)
        return out

    # --- packing ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The model as .tflite bytes (schema version 3, file identifier ``TFL3``)."""
        import flatbuffers

        s = self._s
        if not self._inputs or not self._outputs:
            raise SpecError("a model needs at least one input and one output")
        sg = s.SubGraphT()
        sg.tensors, sg.operators = self._tensors, self._ops
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


def build_spec(spec: OpSpec) -> bytes:
    """The single-op model of ``spec`` as .tflite bytes; weights seeded by the spec hash.

    int8 specs get QUANTIZE before and DEQUANTIZE after the op, so the model's inputs and
    outputs stay float32 as in quantized models converted by TFLite.
    """
    p = spec.params
    dtype = p.get("dtype", "float32")
    b = GraphBuilder(
        seed=int(spec.spec_hash, 16),
        weights="float16" if dtype == "float16" else "float32",
        description=f"tflat single-op model {spec.kind} {spec.spec_hash}",
    )
    kind = spec.kind

    def wrap(t: Tensor) -> Tensor:
        return b.quantize(t) if dtype == "int8" else t

    image = (1, p.get("input_h", 1), p.get("input_w", 1), p.get("cin", 1))
    ins: list[Tensor] = []
    if kind == "CONCATENATION":
        ins = [
            b.input((1, p["input_h"], p["input_w"], c), f"input{i}")
            for i, c in enumerate(p["cins"])
        ]
        y = b.concat([wrap(t) for t in ins], activation=p["activation"])
    elif kind in ("ADD", "MUL"):
        other = {"none": image, "channel": (1, 1, 1, p["cin"]), "scalar": (1,)}[p["broadcast"]]
        ins = [b.input(image, "input0"), b.input(other, "input1")]
        y = b.binary(kind, wrap(ins[0]), wrap(ins[1]), activation=p["activation"])
    elif kind in ("FULLY_CONNECTED", "SOFTMAX"):
        ins = [b.input((p["batch"], p["cin"]))]
        x = wrap(ins[0])
        if kind == "SOFTMAX":
            y = b.softmax(x)
        else:
            y = b.fully_connected(x, p["cout"], activation=p["activation"], bias=p["bias"])
    else:
        ins = [b.input(image)]
        y = _image_op(b, kind, wrap(ins[0]), p)
    if dtype == "int8":
        y = b.dequantize(y)
    b.output(y)
    return b.to_bytes()


def _image_op(b: GraphBuilder, kind: str, x: Tensor, p: Any) -> Tensor:
    kernel = (p.get("kernel_h", 1), p.get("kernel_w", 1))
    if kind == "CONV_2D":
        return b.conv2d(
            x,
            p["cout"],
            kernel,
            stride=p["stride"],
            dilation=p["dilation"],
            padding=p["padding"],
            groups=p["groups"],
            activation=p["activation"],
        )
    if kind == "DEPTHWISE_CONV_2D":
        return b.depthwise_conv2d(
            x,
            kernel,
            stride=p["stride"],
            dilation=p["dilation"],
            padding=p["padding"],
            depth_multiplier=p["depth_multiplier"],
            activation=p["activation"],
        )
    if kind == "TRANSPOSE_CONV":
        return b.transpose_conv(
            x,
            p["cout"],
            kernel,
            stride=p["stride"],
            padding=p["padding"],
            activation=p["activation"],
            bias=p["bias"],
        )
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return b.pool(
            kind, x, kernel, stride=p["stride"], padding=p["padding"], activation=p["activation"]
        )
    if kind == "MEAN":
        return b.mean(x, keep_dims=p["keep_dims"])
    if kind == "PAD":
        return b.pad(x, p["pad_top"], p["pad_bottom"], p["pad_left"], p["pad_right"])
    if kind == "RESIZE_BILINEAR":
        return b.resize_bilinear(
            x,
            (p["output_h"], p["output_w"]),
            align_corners=p["align_corners"],
            half_pixel_centers=p["half_pixel_centers"],
        )
    if kind == "RESHAPE":
        return b.reshape(x, p["shape"])
    return b.unary(kind, x)


def write_spec(spec: OpSpec) -> tuple[bytes, Graph]:
    """Build ``spec``'s model and check it by reading it back: returns (bytes, Graph).

    Raises :class:`SpecError` naming the spec when the model cannot be built or what was
    written does not read back as the spec.
    """
    from tflat.errors import ModelFormatError
    from tflat.model.reader import read_model
    from tflat.model.spec import check_graph

    try:
        data = build_spec(spec)
        graph = read_model(data)
    except (SpecError, ModelFormatError) as exc:
        raise SpecError(f"{spec.label}: {exc}") from exc
    check_graph(graph, spec)
    return data, graph
