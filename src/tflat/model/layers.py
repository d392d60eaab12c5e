"""The graph builder: typed network ops that make their weights and check their shapes.

:class:`GraphBuilder` adds to :class:`~tflat.model.builder.BuilderBase` one method per network op
(conv, depthwise conv, transposed conv, FC, pools, mean, concatenation, element-wise, pad,
resize, softmax, reshape, (de)quantize). Each takes input tensors, creates its weights and
output, checks the shapes (invalid ones raise :class:`SpecError`) and returns the output
tensor. int8 ops come from ``quantize()``-ing a float input, after which every op works in int8
until ``dequantize()``. Op versions follow TFLite's versioning rules
(tensorflow/lite/tools/versioning/op_version.cc) for the options used, e.g. grouped CONV_2D is
version 6, dilated DEPTHWISE_CONV_2D version 2. One use writes a single-op benchmark model
(:func:`tflat.model.writer.write_spec`), another a whole network (:mod:`tflat.model.zoo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflat.errors import SpecError
from tflat.model.builder import INT8_SCALE, BuilderBase, Tensor, pair
from tflat.model.spec import transpose_conv_output_size


class GraphBuilder(BuilderBase):
    """Tensors and ops of one subgraph, packed to .tflite bytes by :meth:`to_bytes`.

    Each op method takes input tensors, creates its weights and output, checks the shapes
    (invalid ones raise :class:`SpecError`) and returns the output tensor.
    """

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
        k, st, dl = pair(kernel), pair(stride), pair(dilation)
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
        k, st, dl = pair(kernel), pair(stride), pair(dilation)
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
        k, st = pair(kernel), pair(stride)
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
        k, st = pair(kernel), pair(stride)
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
        oh, ow = pair(tuple(size))
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
