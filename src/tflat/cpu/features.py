"""Features of one XNNPACK kernel on a CPU: the work it does and the shapes it does it on.

Why these: on the CPU a kernel's time follows its work (FLOPs, bytes moved) with an efficiency
that depends on shapes (GEMM tiles, channel counts, cache). :func:`op_features` reads them from
a kernel's main op; :func:`work_terms` turns them into the inputs of the regressor's linear part
(:mod:`tflat.cpu.regressor`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Graph, Op

#: Features of one kernel, all >= 0. Shape fields are 0 where the op has no such notion.
FEATURE_NAMES = (
    "flops",
    "in_bytes",
    "out_bytes",
    "weight_bytes",
    "h",
    "w",
    "cin",
    "cout",
    "kernel",
    "stride",
    "groups",
    "fused",
    "cout_waste",
    "cin_waste",
)
#: Inputs of the linear part, in order (see :func:`work_terms`): the work features, two
#: derived terms and a constant.
WORK_TERMS = ("flops", "in_bytes", "out_bytes", "weight_bytes", "spill_bytes", "pixels", "one")
#: Bytes an op can keep in the last-level cache between runs. Why half of the L3 (32 MiB on
#: this machine's EPYC, shared with the neighbours of a cloud VM): single-op FULLY_CONNECTED
#: runs stream their weights at 33-41 GB/s up to 12 MB and at 16-25 GB/s from 16 MB on
#: (fresh 20-minute calibration database, min of 30 runs); a batch-1 FC past it is bound by
#: DRAM bandwidth, a price per byte the in-cache terms cannot give it.
SPILL_THRESHOLD_BYTES = 16 * 2**20
#: Op types that XNNPACK runs with the same operator (so they share a regressor).
_SAME_AS = {
    "CUSTOM:Convolution2DTransposeBias": "TRANSPOSE_CONV",
    "RELU_N1_TO_1": "RELU",
    "RELU_0_TO_1": "RELU",
    "SUB": "ADD",
    "DIV": "MUL",
    "MAXIMUM": "ADD",
    "MINIMUM": "ADD",
    "SQUARED_DIFFERENCE": "MUL",
    "PRELU": "MUL",
    "LEAKY_RELU": "MUL",
    "SUM": "MEAN",
}
#: Element-wise ops with two operands: a constant operand counts as input, not as weights.
_BINARY = frozenset(
    {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "PRELU", "POW"}
)
#: The fallback when an op type has no regressor: the pooled regressor of its kernel kind.


def model_key(op_type: str) -> str:
    return _SAME_AS.get(op_type, op_type)


def op_features(op: Op, static: set[int], fused: int = 0) -> dict[str, float]:
    """The features of ``op`` as the main op of a kernel with ``fused`` ops folded into it."""
    if op.type in _BINARY:  # a constant operand is read like a runtime one (the benchmarks' way)
        data, weights = list(op.inputs), []
    else:
        data = [t for t in op.inputs if t.index not in static]
        weights = [t for t in op.inputs if t.index in static]
    first = data[0] if data else (op.inputs[0] if op.inputs else None)
    out = op.outputs[0] if op.outputs else None
    shape = first.shape if first is not None else ()
    h = w = cin = 0
    if len(shape) == 4:
        h, w, cin = shape[1], shape[2], shape[3]
    elif shape:
        cin = shape[-1]
        h = math.prod(max(d, 1) for d in shape[:-1])
        w = 1
    cout = out.shape[-1] if out is not None and out.shape else 0
    flops = op.flops
    if flops == 0 and out is not None:  # data movement: count what it touches
        flops = out.numel
    return {
        "flops": float(flops),
        "in_bytes": float(sum(t.nbytes for t in data)),
        "out_bytes": float(sum(t.nbytes for t in op.outputs)),
        "weight_bytes": float(sum(t.numel * 4 for t in weights)),
        "h": float(max(h, 0)),
        "w": float(max(w, 0)),
        "cin": float(max(cin, 0)),
        "cout": float(max(cout, 0)),
        "kernel": float(op.kernel[0] * op.kernel[1]) if op.kernel else 0.0,
        "stride": _stride(op, h),
        "groups": float(op.groups),
        "fused": float(fused),
        # SIMD tiles: channels are padded to a multiple of 16 (x86) or 8 (Arm) lanes
        "cout_waste": float(math.ceil(cout / 16) * 16 / cout) if cout > 0 else 1.0,
        "cin_waste": float(math.ceil(cin / 16) * 16 / cin) if cin > 0 else 1.0,
    }


def _stride(op: Op, h: int) -> float:
    if op.type == "CUSTOM:Convolution2DTransposeBias":  # options are opaque: read the shapes
        out_h = op.outputs[0].shape[1] if op.outputs and len(op.outputs[0].shape) == 4 else h
        return float(max(out_h // max(h, 1), 1))
    return float(op.stride[0]) if op.stride else 0.0


def kernel_rows(graph: Graph, kernels: Sequence[Kernel]) -> list[tuple[str, dict[str, float]]]:
    """(op type, features) of each kernel's main op, in kernel order."""
    from tflat.cpu.xnnpack import static_tensors

    static = static_tensors(graph)
    by_index = {op.index: op for op in graph.ops}
    rows = []
    for k in kernels:
        op = by_index[k.main_op]
        rows.append((op.type, op_features(op, static, fused=len(k.op_indices) - 1)))
    return rows


def work_terms(features: Mapping[str, float]) -> list[float]:
    """The linear part's inputs, named by :data:`WORK_TERMS`: the work features, the bytes
    past the last-level cache's share (:data:`SPILL_THRESHOLD_BYTES`), the pixels and a
    constant.

    Why pixels: XNNPACK's kernels loop over pixels with the channels inside, so a thin tensor
    pays a per-pixel cost its bytes do not show (a 1-channel PAD of 172 x 273 takes 0.76 ms,
    about 15 ns a pixel; bytes alone predicted 0.14 ms).
    """
    touched = features["in_bytes"] + features["out_bytes"] + features["weight_bytes"]
    spill = max(touched - SPILL_THRESHOLD_BYTES, 0.0)
    pixels = features["h"] * max(features["w"], 1.0)
    return [*(float(features[n]) for n in WORK_TERMS[:4]), spill, pixels, 1.0]


def cache_pressure(features: Mapping[str, float]) -> float:
    ws = features["in_bytes"] + features["out_bytes"] + features["weight_bytes"]
    return math.log2(1.0 + ws / 262144.0)


#: Which terms a whole-model fit may use: 0 the float kernel sum, 1 its cache-weighted part,
#: 2 the float kernel count (signed), 3 the int8 kernel sum (without it int8 kernels count as
