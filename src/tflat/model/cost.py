"""Normalized options and FLOPs of each op type.

FLOPs conventions (what ``Op.flops`` counts), per op type:

==========================================  =================================================
op                                          flops
==========================================  =================================================
CONV_2D                                     2 * out elements * kh * kw * (Cin / groups)
DEPTHWISE_CONV_2D                           2 * out elements * kh * kw
CONV_3D                                     2 * out elements * kd * kh * kw * Cin
TRANSPOSE_CONV, Convolution2DTransposeBias  2 * in elements * kh * kw * Cout
FULLY_CONNECTED                             2 * out elements * Cin
BATCH_MATMUL                                2 * out elements * K
pools (MAX/AVERAGE/L2_POOL_2D)              out elements * kh * kw
reductions (MEAN, SUM, REDUCE_*)            in elements
SOFTMAX, LOG_SOFTMAX                        3 * elements (max, exp and sum, divide)
L2_NORMALIZATION                            2 * elements
RESIZE_BILINEAR                             4 * out elements
UNIDIRECTIONAL_SEQUENCE_LSTM                2 * out elements * 4 gates * (input + hidden)
RFFT2D                                      2.5 * batch * N * log2(N), N = fft_h * fft_w
element-wise, activations, (de)quantize     out elements
data movement (RESHAPE, CONCATENATION,      0
PAD, TRANSPOSE, SLICE, GATHER, DENSIFY...)
state and control (VAR_HANDLE,              0 (CALL_ONCE runs its subgraph once, at init)
READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE)
==========================================  =================================================

Shapes are the ones :mod:`tflat.model.shapes` resolves (LiteRT's for the model's input
shapes), not the file's stored hints. A multiply-add counts as 2. Biases and fused activations
add nothing (as in the public
measurements tflat trains on). Ops not listed here are ``known=False``: 0 FLOPs, flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tflat.model.ops import Op, TensorInfo

_CONV_LIKE = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D"}
_POOLS = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D"}
REDUCTIONS = frozenset(
    {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL"}
)
ELEMENTWISE = frozenset(
    {
        "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW", "SQUARED_DIFFERENCE",
        "FLOOR_DIV", "FLOOR_MOD", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC",
        "TANH", "HARD_SWISH", "ELU", "LEAKY_RELU", "PRELU", "GELU", "EXP", "LOG", "SQRT",
        "RSQRT", "ABS", "NEG", "SQUARE", "SIN", "COS", "FLOOR", "CEIL", "ROUND", "SIGN",
        "QUANTIZE", "DEQUANTIZE", "CAST", "ADD_N", "SELECT", "SELECT_V2", "LESS", "GREATER",
        "LESS_EQUAL", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND", "LOGICAL_OR",
        "LOGICAL_NOT", "ZEROS_LIKE", "ONES_LIKE", "LOCAL_RESPONSE_NORMALIZATION", "CUMSUM",
        "ATAN2", "REAL", "IMAG", "COMPLEX_ABS", "BITWISE_XOR", "RIGHT_SHIFT",
    }
)  # fmt: skip
DATA_MOVEMENT = frozenset(
    {
        "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "CONCATENATION", "PAD", "PADV2",
        "MIRROR_PAD", "GATHER", "GATHER_ND", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V",
        "PACK", "UNPACK", "TILE", "BROADCAST_TO", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
        "RESIZE_NEAREST_NEIGHBOR", "SHAPE", "FILL", "REVERSE_V2", "SPACE_TO_BATCH_ND",
        "BATCH_TO_SPACE_ND", "ARG_MAX", "ARG_MIN", "TOPK_V2", "RANGE", "ONE_HOT",
        "DENSIFY", "EMBEDDING_LOOKUP", "SCATTER_ND", "REVERSE_SEQUENCE", "WHERE",
        "MATRIX_DIAG", "MATRIX_SET_DIAG", "BROADCAST_ARGS", "DYNAMIC_UPDATE_SLICE", "BITCAST",
    }
)  # fmt: skip
#: Ops that hold or move state, or run a subgraph once at init: no per-inference arithmetic.
STATE_AND_CONTROL = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})
TRANSPOSE_CONV_CUSTOM = "CUSTOM:Convolution2DTransposeBias"


def _numel(t: TensorInfo | None) -> int:
    return t.numel if t is not None else 0


def _first(ts: tuple[TensorInfo, ...]) -> TensorInfo | None:
    return ts[0] if ts else None


def _pair(options: Mapping[str, Any], h: str, w: str, default: int = 1) -> tuple[int, int]:
    return int(options.get(h, default) or default), int(options.get(w, default) or default)


def _conv_flops(op_type: str, inputs: tuple[TensorInfo, ...], out: TensorInfo | None) -> int:
    filt = inputs[1] if len(inputs) > 1 else None
    if filt is None or out is None or len(filt.shape) < 4:
        return 0
    k = math.prod(max(d, 1) for d in filt.shape[1:-1])
    if op_type == "CONV_2D":
        return 2 * out.numel * k * max(filt.shape[-1], 1)
    if op_type == "DEPTHWISE_CONV_2D":
        return 2 * out.numel * k
    if op_type == "CONV_3D":  # filter [kd, kh, kw, Cin, Cout]
        return 2 * out.numel * math.prod(max(d, 1) for d in filt.shape[:-1])
    return 0


def _transpose_conv_flops(weights: TensorInfo | None, data: TensorInfo | None) -> int:
    # Every input element is scattered through the whole kernel into Cout channels.
    if weights is None or data is None or len(weights.shape) != 4:
        return 0
    cout, kh, kw, _ = (max(d, 1) for d in weights.shape)
    return 2 * data.numel * kh * kw * cout


def flops_of(
    op_type: str,
    inputs: tuple[TensorInfo, ...],
    outputs: tuple[TensorInfo, ...],
    options: Mapping[str, Any],
    kernel: tuple[int, int] | None,
) -> int | None:
    """FLOPs of one op by the table in this module's docstring; None for an unknown type."""
    out = _first(outputs)
    if op_type in ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D"):
        return _conv_flops(op_type, inputs, out)
    if op_type == "TRANSPOSE_CONV":  # inputs: output_shape, weights, input[, bias]
        return _transpose_conv_flops(
            inputs[1] if len(inputs) > 2 else None, inputs[2] if len(inputs) > 2 else None
        )
    if op_type == TRANSPOSE_CONV_CUSTOM:  # inputs: input, weights, bias
        return _transpose_conv_flops(inputs[1] if len(inputs) > 1 else None, _first(inputs))
    if op_type == "FULLY_CONNECTED":
        w = inputs[1] if len(inputs) > 1 else None
        return 2 * _numel(out) * (max(w.shape[-1], 1) if w is not None and w.shape else 0)
    if op_type == "BATCH_MATMUL":
        lhs = _first(inputs)
        if lhs is None or len(lhs.shape) < 2:
            return 0
        k = lhs.shape[-2] if options.get("adj_x") else lhs.shape[-1]
        return 2 * _numel(out) * max(k, 1)
    if op_type in _POOLS:
        return _numel(out) * (kernel[0] * kernel[1] if kernel else 1)
    if op_type in REDUCTIONS:
        return _numel(_first(inputs))
    if op_type in ("SOFTMAX", "LOG_SOFTMAX"):
        return 3 * _numel(out)
    if op_type == "L2_NORMALIZATION":
        return 2 * _numel(out)
    if op_type == "RESIZE_BILINEAR":
        return 4 * _numel(out)
    if op_type == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        data = _first(inputs)
        if data is None or out is None or not data.shape or not out.shape:
            return 0
        return 2 * out.numel * 4 * (max(data.shape[-1], 1) + max(out.shape[-1], 1))
    if op_type == "RFFT2D":
        return _rfft2d_flops(inputs)
    if op_type in ELEMENTWISE:
        return _numel(out)
    if op_type in DATA_MOVEMENT or op_type in STATE_AND_CONTROL:
        return 0
    return None


def _rfft2d_flops(inputs: tuple[TensorInfo, ...]) -> int:
    # The usual real-FFT count, 2.5 N log2 N per transform (half the complex 5 N log2 N).
    data = _first(inputs)
    fft = inputs[1].values if len(inputs) > 1 else None
    if data is None or len(data.shape) < 2:
        return 0
    n = math.prod(max(v, 1) for v in fft) if fft else max(data.shape[-1] * data.shape[-2], 1)
    batch = math.prod(max(d, 1) for d in data.shape[:-2])
    return int(2.5 * batch * n * math.log2(n)) if n > 1 else 0


def _kernel_of(
    op_type: str, inputs: tuple[TensorInfo, ...], options: Mapping[str, Any]
) -> tuple[int, int] | None:
    if op_type in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", TRANSPOSE_CONV_CUSTOM):
        w = inputs[1] if len(inputs) > 1 else None
        if w is not None and len(w.shape) == 4:
            return int(w.shape[1]), int(w.shape[2])
        return None
    if op_type in _POOLS:
        return _pair(options, "filter_height", "filter_width")
    return None


def _groups(op_type: str, inputs: tuple[TensorInfo, ...]) -> int:
    data = _first(inputs)
    w = inputs[1] if len(inputs) > 1 else None
    if data is None or w is None or not data.shape or len(w.shape) != 4:
        return 1
    cin = data.shape[-1]
    if op_type == "CONV_2D" and w.shape[-1] > 0 and cin > 0 and cin % w.shape[-1] == 0:
        return cin // w.shape[-1]
    if op_type == "DEPTHWISE_CONV_2D":
        return max(cin, 1)
    return 1


def make_op(
    *,
    index: int,
    op_type: str,
    inputs: tuple[TensorInfo, ...],
    outputs: tuple[TensorInfo, ...],
    options: Mapping[str, Any],
    subgraph: int = 0,
    version: int = 1,
    unresolved: str = "",
) -> Op:
    """Build an :class:`Op` with its normalized options and FLOPs."""
    options = dict(options)
    kernel = _kernel_of(op_type, inputs, options)
    has_window = op_type in _CONV_LIKE or op_type in _POOLS or op_type == TRANSPOSE_CONV_CUSTOM
    stride = _pair(options, "stride_h", "stride_w") if has_window else None
    dilation = (
        _pair(options, "dilation_h_factor", "dilation_w_factor")
        if op_type in ("CONV_2D", "DEPTHWISE_CONV_2D")
        else None
    )
    padding = options.get("padding") if has_window else None
    # Reductions and concatenation name their axis in options or in a constant input.
    if op_type in REDUCTIONS and len(inputs) > 1 and inputs[1].values is not None:
        options["axis"] = list(inputs[1].values)
    if op_type in ("PAD", "PADV2", "MIRROR_PAD") and len(inputs) > 1 and inputs[1].values:
        options["paddings"] = list(inputs[1].values)
    flops = flops_of(op_type, inputs, outputs, options, kernel)
    return Op(
        index=index,
        type=op_type,
        inputs=inputs,
        outputs=outputs,
        options=options,
        subgraph=subgraph,
        version=version,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=str(padding) if padding is not None else None,
        groups=_groups(op_type, inputs),
        depth_multiplier=(
            int(options.get("depth_multiplier") or 1) if op_type == "DEPTHWISE_CONV_2D" else None
        ),
        activation=str(options.get("fused_activation_function", "NONE")),
        flops=int(flops or 0),
        known=flops is not None,
        unresolved=unresolved,
    )
