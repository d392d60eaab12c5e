"""The output shapes of the compute ops, as LiteRT's kernels compute them; the rules' toolkit.

Here: the :class:`OpView` every rule reads, the helpers (C++ division, broadcasting, window
sizes), and the rules of convolutions, pools, FC, BATCH_MATMUL, reductions, element-wise ops,
LSTM, RFFT and resource variables. The layout ops are in :mod:`tflat.model.shape_layout`.
One rule per op kind takes an :class:`OpView` (the op's resolved input shapes, the values of
its small integer inputs, its options) and returns the shape of each output, the way the
kernel's ``Prepare`` (or, for an output it sizes at run time, ``Eval``) resizes it. A rule that
lacks what it needs (the values of a shape tensor nobody can fold, an input that does not fit)
raises :class:`Unresolvable` with a one-line reason; :mod:`tflat.model.shapes` then keeps the
file's stored shape and flags the op. Integer division and clamping follow the C++ kernels
(truncation toward zero), since that is what decides a size at a border.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Shape = tuple[int, ...]


class Unresolvable(Exception):
    """An op whose output shape cannot be computed; ``str()`` is the one-line reason."""


class OpView:
    """What a rule may read of one op: its options and its inputs by position.

    ``inputs`` keeps the file's positions, -1 for an omitted optional input.
    """

    __slots__ = (
        "_dtypes", "_shapes", "_values", "inputs", "n_outputs", "options", "out_dtype", "type"
    )  # fmt: skip

    def __init__(
        self,
        op_type: str,
        inputs: Sequence[int],
        n_outputs: int,
        options: Mapping[str, Any],
        shapes: Mapping[int, Shape],
        values: Mapping[int, tuple[int, ...]],
        dtypes: Callable[[int], str],
        out_dtype: str = "",
    ) -> None:
        self.type = op_type
        self.out_dtype = out_dtype
        self.inputs = inputs
        self.n_outputs = n_outputs
        self.options = options
        self._shapes = shapes
        self._values = values
        self._dtypes = dtypes

    def has(self, pos: int) -> bool:
        return pos < len(self.inputs) and self.inputs[pos] >= 0

    def _index(self, pos: int) -> int:
        if not self.has(pos):
            raise Unresolvable(f"{self.type} has no input {pos}")
        return self.inputs[pos]

    def shape(self, pos: int) -> Shape:
        return self._shapes[self._index(pos)]

    def values(self, pos: int) -> tuple[int, ...]:
        found = self._values.get(self._index(pos))
        if found is None:
            raise Unresolvable(f"input {pos} of {self.type} is computed at run time")
        return found

    def scalar(self, pos: int) -> int:
        v = self.values(pos)
        if len(v) != 1:
            raise Unresolvable(f"input {pos} of {self.type} holds {len(v)} values, not one")
        return v[0]

    def dtype(self, pos: int) -> str:
        return self._dtypes(self._index(pos))

    def option(self, key: str, default: int = 0) -> int:
        value = self.options.get(key, default)
        return int(value) if isinstance(value, int | float | bool) else default


# --- helpers -----------------------------------------------------------------------------------


def cdiv(a: int, b: int) -> int:
    """C++ integer division: truncates toward zero."""
    if b == 0:
        raise Unresolvable("division by zero in a shape")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def axis_of(axis: int, rank: int, what: str) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise Unresolvable(f"{what}: axis {axis} outside rank {rank}")
    return a


def broadcast(*shapes: Shape) -> Shape:
    """NumPy broadcasting of several shapes (what LiteRT's broadcasting kernels allow)."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise Unresolvable(f"shapes {' and '.join(map(fmt_shape, shapes))} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def fmt_shape(shape: Shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def window_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of a conv or pool along one axis (LiteRT's ComputeOutSize)."""
    if stride <= 0:
        raise Unresolvable(f"stride {stride}")
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return cdiv(size + stride - 1, stride)
    if padding == "VALID":
        out = cdiv(size + stride - effective, stride)
        if out < 0:
            raise Unresolvable(f"a {kernel}-wide window does not fit size {size}")
        return out
    raise Unresolvable(f"padding {padding!r}")


def rank_of(shape: Shape, rank: int, what: str) -> Shape:
    if len(shape) != rank:
        raise Unresolvable(f"{what} input {fmt_shape(shape)} is not {rank}-D")
    return shape


# --- rules -------------------------------------------------------------------------------------


def _same(x: OpView) -> list[Shape]:
    return [x.shape(0)] * x.n_outputs


def _binary(x: OpView) -> list[Shape]:
    return [broadcast(x.shape(0), x.shape(1))]


def _conv2d(x: OpView) -> list[Shape]:
    n, h, w, _ = rank_of(x.shape(0), 4, x.type)
    f = rank_of(x.shape(1), 4, f"{x.type} filter")
    kh, kw = f[1], f[2]
    cout = f[0] if x.type == "CONV_2D" else f[3]
    pad = str(x.options.get("padding", "SAME"))
    oh = window_out(h, kh, x.option("stride_h", 1), x.option("dilation_h_factor", 1), pad)
    ow = window_out(w, kw, x.option("stride_w", 1), x.option("dilation_w_factor", 1), pad)
    return [(n, oh, ow, cout)]


def _conv3d(x: OpView) -> list[Shape]:
    n, d, h, w, _ = rank_of(x.shape(0), 5, x.type)
    kd, kh, kw, _, cout = rank_of(x.shape(1), 5, "CONV_3D filter")
    pad = str(x.options.get("padding", "SAME"))
    dims = [
        window_out(size, k, x.option(f"stride_{a}", 1), x.option(f"dilation_{a}_factor", 1), pad)
        for size, k, a in ((d, kd, "d"), (h, kh, "h"), (w, kw, "w"))
    ]
    return [(n, *dims, cout)]


def _pool(x: OpView) -> list[Shape]:
    n, h, w, c = rank_of(x.shape(0), 4, x.type)
    pad = str(x.options.get("padding", "SAME"))
    oh = window_out(h, x.option("filter_height", 1), x.option("stride_h", 1), 1, pad)
    ow = window_out(w, x.option("filter_width", 1), x.option("stride_w", 1), 1, pad)
    return [(n, oh, ow, c)] * x.n_outputs


def _transpose_conv_bias(x: OpView) -> list[Shape]:
    # MediaPipe's Convolution2DTransposeBias: input, weights [Cout, kh, kw, Cin], bias.
    n, h, w, _ = rank_of(x.shape(0), 4, x.type)
    cout, kh, kw, _ = rank_of(x.shape(1), 4, f"{x.type} weights")
    if "stride_h" not in x.options or "padding" not in x.options:
        raise Unresolvable(f"{x.type} without the options tflat reads (padding, strides)")
    sh, sw = x.option("stride_h", 1), x.option("stride_w", 1)
    if x.options.get("padding") == "SAME":
        return [(n, h * sh, w * sw, cout)]
    return [(n, (h - 1) * sh + kh, (w - 1) * sw + kw, cout)]


def _fully_connected(x: OpView) -> list[Shape]:
    data, weights = x.shape(0), x.shape(1)
    if len(weights) != 2:
        raise Unresolvable(f"FULLY_CONNECTED weights {fmt_shape(weights)} are not 2-D")
    units, cin = weights
    if x.options.get("keep_num_dims"):
        if not data or data[-1] != cin:
            raise Unresolvable(f"FULLY_CONNECTED input {fmt_shape(data)} does not end in {cin}")
        return [(*data[:-1], units)]
    if cin <= 0 or math.prod(data) % cin:
        raise Unresolvable(
            f"FULLY_CONNECTED input {fmt_shape(data)} does not split into rows of {cin}"
        )
    return [(math.prod(data) // cin, units)]


def _batch_matmul(x: OpView) -> list[Shape]:
    lhs, rhs = x.shape(0), x.shape(1)
    if len(lhs) < 2 or len(rhs) < 2:
        raise Unresolvable(
            f"BATCH_MATMUL operands {fmt_shape(lhs)} and {fmt_shape(rhs)} are not matrices"
        )
    m, k = (lhs[-1], lhs[-2]) if x.options.get("adj_x") else (lhs[-2], lhs[-1])
    k2, n = (rhs[-1], rhs[-2]) if x.options.get("adj_y") else (rhs[-2], rhs[-1])
    if k != k2:
        raise Unresolvable(f"BATCH_MATMUL inner sizes {k} and {k2} differ")
    return [(*broadcast(lhs[:-2], rhs[:-2]), m, n)]


def _reduce(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axes = {axis_of(a, len(shape), x.type) for a in x.values(1)}
    if x.options.get("keep_dims"):
        return [tuple(1 if i in axes else d for i, d in enumerate(shape))]
    return [tuple(d for i, d in enumerate(shape) if i not in axes)]


def _arg_reduce(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axis = axis_of(x.scalar(1), len(shape), x.type)
    return [shape[:axis] + shape[axis + 1 :]]


def _lstm(x: OpView) -> list[Shape]:
    data = rank_of(x.shape(0), 3, x.type)
    recurrent_to_output = x.shape(8)
    if len(recurrent_to_output) != 2:
        raise Unresolvable("UNIDIRECTIONAL_SEQUENCE_LSTM without recurrent weights")
    return [(*data[:2], recurrent_to_output[1])]


def _rfft2d(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    fft = x.values(1)
    if len(shape) < 2 or len(fft) != 2:
        raise Unresolvable(f"RFFT2D of {fmt_shape(shape)} with fft_length {list(fft)}")
    return [(*shape[:-2], fft[0], fft[1] // 2 + 1)]


def _scalar_out(x: OpView) -> list[Shape]:
    return [()] * x.n_outputs


def _none(x: OpView) -> list[Shape]:
    return []


BINARY = frozenset(
    {
        "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW", "SQUARED_DIFFERENCE",
        "FLOOR_DIV", "FLOOR_MOD", "LESS", "GREATER", "LESS_EQUAL", "GREATER_EQUAL", "EQUAL",
        "NOT_EQUAL", "LOGICAL_AND", "LOGICAL_OR", "ATAN2", "BITWISE_XOR", "RIGHT_SHIFT",
        "PRELU",
    }
)  # fmt: skip
#: Ops whose single output has the shape of their first input.
SAME_AS_INPUT = frozenset(
    {
        "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH",
        "ELU", "LEAKY_RELU", "GELU", "EXP", "LOG", "SQRT", "RSQRT", "ABS", "NEG", "SQUARE",
        "SIN", "COS", "FLOOR", "CEIL", "ROUND", "SIGN", "QUANTIZE", "DEQUANTIZE", "CAST",
        "ADD_N", "LOGICAL_NOT", "ZEROS_LIKE", "ONES_LIKE", "LOCAL_RESPONSE_NORMALIZATION",
        "CUMSUM", "REAL", "IMAG", "COMPLEX_ABS", "SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION",
        "REVERSE_V2", "REVERSE_SEQUENCE", "MATRIX_SET_DIAG", "DYNAMIC_UPDATE_SLICE", "DENSIFY",
    }
)  # fmt: skip

#: Rules of the compute and element-wise ops (the layout ops are in shape_layout).
RULES: dict[str, Callable[[OpView], list[Shape]]] = {
    **dict.fromkeys(BINARY, _binary),
    **dict.fromkeys(SAME_AS_INPUT, _same),
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _conv2d,
    "CONV_3D": _conv3d,
    "CUSTOM:Convolution2DTransposeBias": _transpose_conv_bias,
    "MAX_POOL_2D": _pool,
    "AVERAGE_POOL_2D": _pool,
    "L2_POOL_2D": _pool,
    "FULLY_CONNECTED": _fully_connected,
    "BATCH_MATMUL": _batch_matmul,
    **dict.fromkeys(
        ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL"),
        _reduce,
    ),
    "ARG_MAX": _arg_reduce,
    "ARG_MIN": _arg_reduce,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm,
    "RFFT2D": _rfft2d,
    "VAR_HANDLE": _scalar_out,
    "ASSIGN_VARIABLE": _none,
    "CALL_ONCE": _none,
}
