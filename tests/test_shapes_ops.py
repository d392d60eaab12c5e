"""Shape inference op by op, against LiteRT, on models written with tflat's own writer.

Each case writes a small graph around one op kind (or one shape-arithmetic chain) with a
dynamic input signature, and stores every computed tensor as a dynamic export does (1s, and
-1 in the signature: ``to_bytes(blank_shapes=True)``), so nothing can be read off the file: the
shapes must be inferred. Each model is then resolved for concrete input shapes (another batch,
another height and width) and compared op by op with LiteRT after one invoke, and once more
for the default input shape (batch 1) where the input's only dynamic dim is the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from litert_shapes import assert_shapes_equal_litert
from tflat.model.builder import Tensor
from tflat.model.layers import GraphBuilder

Case = Callable[[GraphBuilder], list[tuple[int, ...]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def op(
    b: GraphBuilder,
    kind: str,
    inputs: Sequence[Tensor | None],
    ranks: Sequence[int | tuple[int, ...]],
    *,
    dtype: str | Sequence[str] = "float32",
    options: tuple[str, dict[str, Any]] | None = None,
    version: int = 1,
) -> tuple[Tensor, ...]:
    """An op with outputs of the given ranks (their stored shapes are blanked anyway), or of
    the given shapes where a typed builder op reads them next."""
    shapes = [(1,) * r if isinstance(r, int) else r for r in ranks]
    return b.op(kind, inputs, shapes, dtype=dtype, options=options, version=version)


def one(
    b: GraphBuilder, kind: str, inputs: Sequence[Tensor | None], rank: int | tuple[int, ...],
    **kw: Any,
) -> Tensor:  # fmt: skip
    return op(b, kind, inputs, [rank], **kw)[0]


def image(b: GraphBuilder, c: int = 3) -> Tensor:
    """An NHWC input whose batch, height and width are dynamic; the file stores 1x24x20."""
    return b.input((1, 24, 20, c), signature=(-1, -1, -1, c))


def shape_of(b: GraphBuilder, x: Tensor) -> Tensor:
    return one(b, "SHAPE", [x], 1, dtype="int32", options=("ShapeOptions", {"outType": 2}))


def dim(b: GraphBuilder, x: Tensor, i: int) -> Tensor:
    """Dim ``i`` of ``x`` as an int32 scalar, the way converters compute it."""
    shape = shape_of(b, x)
    return one(
        b, "STRIDED_SLICE", [shape, b.const([i]), b.const([i + 1]), b.const([1])], 0,
        dtype="int32", options=("StridedSliceOptions", {"shrinkAxisMask": 1}),
    )  # fmt: skip


def hw(c: int = 3) -> list[tuple[int, ...]]:
    """Another batch, height and width than the file stores (1, 24, 20)."""
    return [(2, 13, 11, c)]


@case
def conv_same_strided_dilated(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b)
    y = b.conv2d(x, 8, 3, stride=2, padding="same", activation="relu")
    y = b.conv2d(y, 4, (3, 1), dilation=2, padding="same")
    b.output(b.conv2d(y, 6, 1, groups=2, padding="valid"))
    return hw()


@case
def conv_and_pools_valid(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 4)
    y = b.conv2d(x, 8, 3, stride=2, padding="valid")
    y = b.depthwise_conv2d(y, 3, stride=1, dilation=2, padding="same", depth_multiplier=2)
    y = b.depthwise_conv2d(y, 2, stride=2, padding="valid")
    y = b.pool("MAX_POOL_2D", y, 3, stride=2, padding="same")
    b.output(b.pool("AVERAGE_POOL_2D", y, 2, stride=1, padding="valid"))
    return [(3, 17, 15, 4)]


@case
def transpose_conv_from_shape(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 4)
    n, h, w = dim(b, x, 0), dim(b, x, 1), dim(b, x, 2)
    two = b.const(2)
    oh, ow = one(b, "MUL", [h, two], 0, dtype="int32"), one(b, "MUL", [w, two], 0, dtype="int32")
    shape = one(b, "PACK", [n, oh, ow, b.const(5)], 1, dtype="int32",
                options=("PackOptions", {"valuesCount": 4, "axis": 0}))  # fmt: skip
    weights = b.const(np.ones((5, 3, 3, 4)), "float32")
    opt = {"padding": 0, "strideH": 2, "strideW": 2}
    b.output(one(b, "TRANSPOSE_CONV", [shape, weights, x], 4,
                 options=("TransposeConvOptions", opt), version=3))  # fmt: skip
    return hw(4)


@case
def conv3d(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = b.input((1, 4, 6, 6, 2), signature=(-1, -1, -1, -1, 2))
    w = b.const(np.ones((2, 3, 3, 2, 3)), "float32")
    opt = {"padding": 1, "strideD": 1, "strideH": 2, "strideW": 2, "dilationDFactor": 1,
           "dilationHFactor": 1, "dilationWFactor": 1}  # fmt: skip
    b.output(one(b, "CONV_3D", [x, w], 5, options=("Conv3DOptions", opt)))
    return [(2, 5, 9, 7, 2)]


@case
def reshape_flatten_and_fc(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = b.input((1, 4, 6), signature=(-1, 4, 6))
    flat = one(b, "RESHAPE", [x, b.const([-1, 24])], (1, 24))
    y = b.fully_connected(flat, 5)
    seq = b.fully_connected(x, 7)  # rows of 6, batch folded in
    keep = one(b, "FULLY_CONNECTED", [x, b.const(np.ones((3, 6)), "float32")], 3,
               options=("FullyConnectedOptions", {"keepNumDims": True}))  # fmt: skip
    legacy = one(b, "RESHAPE", [x], 2, options=("ReshapeOptions", {"newShape": [-1, 12]}))
    b.output(y, seq, keep, legacy)
    return [(3, 4, 6)]


@case
def reshape_from_shape_arithmetic(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 8)
    n, h, w = dim(b, x, 0), dim(b, x, 1), dim(b, x, 2)
    hw = one(b, "MUL", [h, w], 0, dtype="int32")
    shape = one(b, "PACK", [n, hw, b.const(-1)], 1, dtype="int32",
                options=("PackOptions", {"valuesCount": 3, "axis": 0}))  # fmt: skip
    seq = one(b, "RESHAPE", [x, shape], 3)
    full = shape_of(b, x)
    half = one(b, "FLOOR_DIV", [full, b.const([1, 2, 1, 1])], 1, dtype="int32")
    wider = one(b, "MUL", [half, b.const([1, 1, 1, 2])], 1, dtype="int32")
    same = one(b, "ADD", [one(b, "SUB", [wider, b.const(3)], 1, dtype="int32"), b.const(3)], 1,
               dtype="int32")  # fmt: skip
    back = one(b, "RESHAPE", [x, same], 4)
    b.output(seq, back)
    return [(2, 12, 7, 8)]


@case
def batch_matmul_adjoint_broadcast(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = b.input((1, 5, 4), signature=(-1, -1, 4))
    xt = one(b, "TRANSPOSE", [x, b.const([0, 2, 1])], 3)
    scores = one(b, "BATCH_MATMUL", [x, xt], 3)
    adj = one(b, "BATCH_MATMUL", [x, x], 3, options=("BatchMatMulOptions", {"adjX": True}))
    adj_y = one(b, "BATCH_MATMUL", [x, x], 3, options=("BatchMatMulOptions", {"adjY": True}))
    shared = one(b, "BATCH_MATMUL", [x, b.const(np.ones((4, 6)), "float32")], 3)
    heads = one(b, "RESHAPE", [x, b.const([-1, 1, 5, 4])], 4)
    bcast = one(b, "BATCH_MATMUL", [heads, b.const(np.ones((3, 4, 2)), "float32")], 4)
    b.output(scores, adj, adj_y, shared, bcast)
    return [(2, 5, 4)]


@case
def softmax_norms_and_attention(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = b.input((1, 6, 4), signature=(-1, -1, 4))
    b.output(
        b.softmax(x),
        one(b, "LOG_SOFTMAX", [x], 3),
        one(b, "L2_NORMALIZATION", [x], 3),
        one(b, "LOGISTIC", [x], 3),
        one(b, "CUMSUM", [x, b.const(1)], 3),
        one(b, "REVERSE_V2", [x, b.const([1])], 3),
    )
    return [(3, 9, 4)]


@case
def broadcasting_elementwise(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 4)
    c = b.constant(np.ones(4))
    y = b.add(x, c)
    z = b.mul(y, b.constant(np.ones((1, 1, 1, 4))))
    col = one(b, "MEAN", [x, b.const([2])], 4, options=("ReducerOptions", {"keepDims": True}))
    d = one(b, "SQUARED_DIFFERENCE", [z, col], 4)
    m = one(b, "MAXIMUM", [d, b.constant(np.zeros((1, 1, 4)))], 4)
    s = one(b, "SUB", [m, x], 4)
    cond = one(b, "GREATER", [s, col], 4, dtype="bool")
    b.output(one(b, "SELECT_V2", [cond, s, col], 4), one(b, "DIV", [s, col], 4))
    return hw(4)


@case
def reductions(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 4)

    def red(kind: str, axes: list[int], keep: bool, rank: int) -> Tensor:
        return one(b, kind, [x, b.const(axes)], rank,
                   options=("ReducerOptions", {"keepDims": keep}))  # fmt: skip

    b.output(
        red("MEAN", [1, 2], True, 4),
        red("MEAN", [1, 2], False, 2),
        red("SUM", [-1], False, 3),
        red("REDUCE_MAX", [0, 3], True, 4),
        red("REDUCE_MIN", [2, -3], False, 2),
        red("REDUCE_PROD", [], False, 4),
        one(b, "ARG_MAX", [x, b.const([3])], 3, dtype="int64",
            options=("ArgMaxOptions", {"outputType": 4})),
    )  # fmt: skip
    return hw(4)


@case
def split_and_concat(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 6)
    a, c = op(b, "SPLIT", [b.const(3), x], [4, 4], options=("SplitOptions", {"numSplits": 2}))
    p, q, r = op(b, "SPLIT_V", [x, b.const([1, -1, 2]), b.const(-1)], [4, 4, 4],
                 options=("SplitVOptions", {"numSplits": 3}))  # fmt: skip
    cat = one(b, "CONCATENATION", [a, p, q], 4, options=("ConcatenationOptions", {"axis": -1}))
    rows = one(b, "CONCATENATION", [c, q], 4, options=("ConcatenationOptions", {"axis": 1}))
    b.output(cat, rows, r)
    return [(2, 13, 11, 6)]


@case
def pads(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b)
    pads = b.const([[0, 0], [1, 2], [3, 0], [0, 1]])
    b.output(
        b.pad(x, 1, 1, 2, 2),
        one(b, "PADV2", [x, pads, b.const(0.5, "float32")], 4),
        one(b, "MIRROR_PAD", [x, b.const([[0, 0], [1, 1], [2, 2], [0, 0]])], 4,
            options=("MirrorPadOptions", {"mode": 0})),
    )  # fmt: skip
    return hw()


@case
def resizes(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b)
    fixed = b.resize_bilinear(x, (16, 20), half_pixel_centers=True)
    size = shape_of(b, x)
    spatial = one(b, "SLICE", [size, b.const([1]), b.const([2])], 1, dtype="int32")
    twice = one(b, "MUL", [spatial, b.const([2, 3])], 1, dtype="int32")
    up = one(b, "RESIZE_NEAREST_NEIGHBOR", [x, twice], 4,
             options=("ResizeNearestNeighborOptions", {}))  # fmt: skip
    b.output(fixed, up)
    return hw()


@case
def slices_and_strided_slices(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 5)

    def ss(begin: list[int], end: list[int], strides: list[int], rank: int, **masks: Any) -> Tensor:
        return one(b, "STRIDED_SLICE", [x, b.const(begin), b.const(end), b.const(strides)], rank,
                   options=("StridedSliceOptions", masks))  # fmt: skip

    b.output(
        one(b, "SLICE", [x, b.const([0, 1, 2, 0]), b.const([-1, 3, -1, 2])], 4),
        ss([0, 1, 0, 0], [0, -1, 0, 3], [1, 2, 1, 1], 4, beginMask=9, endMask=13),
        ss([0, -1, 0, 1], [0, 0, 0, 2], [1, 1, 1, 1], 3, beginMask=5, endMask=5,
           shrinkAxisMask=2),
        ss([0, 0, 0], [0, 0, 2], [1, 1, 1], 5, ellipsisMask=1, newAxisMask=2, endMask=1),
        ss([0, 0], [0, 3], [1, 1], 4, ellipsisMask=1, endMask=1),
        ss([-1, 0, 0, 0], [0, 0, 0, 0], [-1, -2, 1, -1], 4, endMask=15, beginMask=14),
        ss([0, 8, 0], [0, -20, 0], [1, -3, 1], 3, beginMask=1, endMask=1, shrinkAxisMask=4),
        ss([0, 2, 1, 0], [1, 5, 30, 2], [1, 2, 1, 1], 4, offset=True),  # sizes, unclamped
    )  # fmt: skip
    return [(2, 13, 11, 5)]


@case
def squeeze_expand_transpose(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 1)
    sq = one(b, "SQUEEZE", [x], 3, options=("SqueezeOptions", {"squeezeDims": [-1]}))
    ex = one(b, "EXPAND_DIMS", [sq, b.const(-1)], 4)
    ex0 = one(b, "EXPAND_DIMS", [sq, b.const([1])], 4)
    t = one(b, "TRANSPOSE", [ex, b.const([3, 1, 0, 2])], 4)
    single = b.input((1, 1, 4), signature=(-1, 1, 4), name="row")
    all_ones = one(b, "SQUEEZE", [single], 1, options=("SqueezeOptions", {}))
    b.output(t, ex0, all_ones)
    return [(2, 13, 11, 1), (1, 1, 4)]


@case
def tile_broadcast_to_gather(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 3)
    tiled = one(b, "TILE", [x, b.const([1, 2, 1, 3])], 4)
    n = dim(b, x, 0)
    target = one(b, "PACK", [n, b.const(4), b.const(5), b.const(3)], 1, dtype="int32",
                 options=("PackOptions", {"valuesCount": 4, "axis": 0}))  # fmt: skip
    small = b.input((1, 1, 1, 3), signature=(-1, 1, 1, 3), name="small")
    wide = one(b, "BROADCAST_TO", [small, target], 4, version=2)
    g = one(b, "GATHER", [x, b.const([[0, 2, 1], [1, 1, 0]])], 5,
            options=("GatherOptions", {"axis": 3}))  # fmt: skip
    g2 = one(b, "GATHER", [x, b.const(1)], 3, options=("GatherOptions", {"axis": -3}))
    nd = one(b, "GATHER_ND", [x, b.const([[0, 1], [0, 2]])], 3)
    b.output(tiled, wide, g, g2, nd)
    return [(2, 13, 11, 3), (2, 1, 1, 3)]


@case
def shape_arithmetic_fill_range(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 2)
    shape = shape_of(b, x)
    as64 = one(b, "CAST", [shape], 1, dtype="int64",
               options=("CastOptions", {"inDataType": 2, "outDataType": 4}))  # fmt: skip
    back = one(b, "CAST", [as64], 1, dtype="int32",
               options=("CastOptions", {"inDataType": 4, "outDataType": 2}))  # fmt: skip
    hw = one(b, "GATHER", [back, b.const([1, 2])], 1, dtype="int32",
             options=("GatherOptions", {"axis": 0}))  # fmt: skip
    area = one(b, "REDUCE_PROD", [hw, b.const([0])], 0, dtype="int32",
               options=("ReducerOptions", {"keepDims": False}))  # fmt: skip
    n = dim(b, x, 0)
    dims = one(b, "CONCATENATION", [one(b, "RESHAPE", [n, b.const([1])], 1, dtype="int32"), hw],
               1, dtype="int32", options=("ConcatenationOptions", {"axis": 0}))  # fmt: skip
    filled = one(b, "FILL", [dims, b.const(1.5, "float32")], 3)
    steps = one(b, "RANGE", [b.const(0), area, b.const(3)], 1, dtype="int32")
    rows = one(b, "MAXIMUM", [one(b, "SUB", [area, b.const(100)], 0, dtype="int32"), b.const(1)],
               0, dtype="int32")  # fmt: skip
    down = one(b, "RANGE", [rows, b.const(0), b.const(-2)], 1, dtype="int32")
    b.output(filled, steps, down)
    return [(2, 13, 11, 2)]


@case
def space_depth_batch(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 8)
    d2s = one(b, "DEPTH_TO_SPACE", [x], 4, options=("DepthToSpaceOptions", {"blockSize": 2}))
    s2d = one(b, "SPACE_TO_DEPTH", [d2s], 4, options=("SpaceToDepthOptions", {"blockSize": 2}))
    s2b = one(b, "SPACE_TO_BATCH_ND", [x, b.const([2, 3]), b.const([[0, 1], [1, 0]])], 4)
    b2s = one(b, "BATCH_TO_SPACE_ND", [s2b, b.const([2, 3]), b.const([[0, 1], [1, 0]])], 4)
    b.output(s2d, b2s)
    return [(2, 13, 11, 8)]


@case
def pack_unpack_topk_onehot(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = b.input((1, 3, 6), signature=(-1, 3, 6))
    parts = op(b, "UNPACK", [x], [2, 2, 2], options=("UnpackOptions", {"num": 3, "axis": 1}))
    packed = one(b, "PACK", list(parts), 3, options=("PackOptions", {"valuesCount": 3, "axis": -1}))
    values, indices = op(b, "TOPK_V2", [x, b.const(2)], [3, 3], dtype=["float32", "int32"])
    on, off = b.const(1.0, "float32"), b.const(0.0, "float32")
    hot = one(b, "ONE_HOT", [indices, b.const(4), on, off], 4,
              options=("OneHotOptions", {"axis": 1}))  # fmt: skip
    b.output(packed, values, hot)
    return [(4, 3, 6)]


@case
def rfft2d_and_embedding(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = b.input((1, 8, 16), signature=(-1, 8, -1))
    spectrum = one(b, "RFFT2D", [x, b.const([8, 32])], 3, dtype="complex64")
    mag = one(b, "COMPLEX_ABS", [spectrum], 3)
    table = b.const(np.ones((10, 3)), "float32")
    emb = one(b, "EMBEDDING_LOOKUP", [b.const([1, 4, 4, 2]), table], 2)
    b.output(mag, emb)
    return [(2, 8, 20)]


@case
def lstm_sequence(b: GraphBuilder) -> list[tuple[int, ...]]:
    steps, units, hidden = 7, 5, 6  # the file stores 7 steps; the signature leaves them open
    x = b.input((1, steps, units), signature=(1, -1, units))

    def w(*shape: int) -> Tensor:
        return b.const(np.full(shape, 0.1), "float32")

    gates = [w(hidden, units) for _ in range(4)] + [w(hidden, hidden) for _ in range(4)]
    biases = [w(hidden) for _ in range(4)]
    states = [b.variable((1, hidden)) for _ in range(2)]
    inputs = [x, *gates, None, None, None, *biases, None, None, *states, None, None, None, None]
    opt = {"fusedActivationFunction": 4, "timeMajor": False}
    b.output(one(b, "UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, 3,
                 options=("UnidirectionalSequenceLSTMOptions", opt)))  # fmt: skip
    return [(1, 11, units)]


@case
def int8_and_fp16_weights(b: GraphBuilder) -> list[tuple[int, ...]]:
    x = image(b, 8)
    q = b.quantize(x)
    y = b.conv2d(q, 8, 3, stride=2)
    y = b.depthwise_conv2d(y, 3)
    y = b.mean(y, keep_dims=False)
    b.output(b.dequantize(b.fully_connected(y, 4)))
    return hw(8)


def _fp16_builder() -> GraphBuilder:
    return GraphBuilder(seed=1, weights="float16")


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_shapes_equal_litert(tmp_path: Path, name: str) -> None:
    b = GraphBuilder(seed=0)
    shapes = CASES[name](b)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(b.to_bytes(blank_shapes=True))
    graph = assert_shapes_equal_litert(path, shapes)
    assert [t.shape for t in graph.inputs] == shapes
    if all(-1 not in (t.shape_signature or ())[1:] for t in graph.inputs):
        assert_shapes_equal_litert(path)  # the default: batch 1


def test_fp16_weights_resolve(tmp_path: Path) -> None:
    """fp16 weights sit behind DEQUANTIZE ops whose outputs are blanked too."""
    b = _fp16_builder()
    x = image(b, 4)
    b.output(b.fully_connected(b.mean(b.conv2d(x, 8, 3, stride=2), keep_dims=False), 3))
    path = tmp_path / "fp16.tflite"
    path.write_bytes(b.to_bytes(blank_shapes=True))
    assert_shapes_equal_litert(path, hw(4))
