"""Small real .tflite graphs for the pricing tests, written with tflat's own graph builder
(``GraphBuilder.op`` writes any builtin the typed methods do not cover: CUMSUM, TRANSPOSE,
BATCH_MATMUL, ..., the way converters write them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tflat
from tflat.model.builder import Tensor
from tflat.model.layers import GraphBuilder
from tflat.model.ops import Graph


def generic_op(
    b: GraphBuilder,
    kind: str,
    inputs: Sequence[Tensor],
    shape: Sequence[int],
    *,
    dtype: str = "float32",
    options: tuple[str, Mapping[str, Any]] | None = None,
) -> Tensor:
    """One op of one output, written as converters write it."""
    return b.op(kind, inputs, [shape], dtype=dtype, options=options)[0]


def int_const(b: GraphBuilder, values: Sequence[Any], name: str = "const") -> Tensor:
    return b.const(values, "int32", name)


def save(b: GraphBuilder, path: Path) -> Graph:
    path.write_bytes(b.to_bytes())
    return tflat.read_model(path)


def add_graph(tmp: Path, hw: int, channels: int = 96) -> Graph:
    """Two graph inputs added: one standalone element-wise kernel."""
    b = GraphBuilder(seed=0)
    x = b.input((1, hw, hw, channels), "a")
    y = b.input((1, hw, hw, channels), "b")
    b.output(b.add(x, y))
    return save(b, tmp / f"add_{hw}.tflite")


def conv_cumsum_conv(tmp: Path, hw: int = 56) -> Graph:
    """conv -> CUMSUM (refused by the 2.10 delegate) -> conv, on ``hw`` x ``hw`` x 32."""
    b = GraphBuilder(seed=0)
    x = b.input((1, hw, hw, 32))
    y = b.conv2d(x, 32, 3, activation="relu")
    (z,) = b.op("CUMSUM", [y, b.const([3], name="axis")], [y.shape],
                options=("CumsumOptions", {}))  # fmt: skip
    b.output(b.conv2d(z, 32, 3, activation="relu"))
    return save(b, tmp / ("conv_cumsum_conv.tflite" if hw == 56 else f"conv_cumsum_{hw}.tflite"))


def conv_reshape_cumsum(tmp: Path) -> Graph:
    """conv -> RESHAPE (free) -> CUMSUM (CPU): the copy crosses the reshape."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 28, 28, 32))
    y = b.conv2d(x, 32, 3, activation="relu")
    r = b.reshape(y, (1, 28 * 28, 32))
    (z,) = b.op("CUMSUM", [r, b.const([2], name="axis")], [r.shape],
                options=("CumsumOptions", {}))  # fmt: skip
    b.output(z)
    return save(b, tmp / "conv_reshape_cumsum.tflite")


def transformer_bits(tmp: Path) -> Graph:
    """A layer norm, an attention product and a softmax: kinds no regressor covers."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 197, 192))
    keep = ("ReducerOptions", {"keepDims": True})
    (mean,) = b.op("MEAN", [x, b.const([-1])], [(1, 197, 1)], options=keep)
    (sq,) = b.op("SQUARED_DIFFERENCE", [x, mean], [x.shape])
    (var,) = b.op("MEAN", [sq, b.const([-1])], [(1, 197, 1)], options=keep)
    (inv,) = b.op("RSQRT", [var], [var.shape])
    norm = b.mul(x, inv)
    q = b.reshape(norm, (1, 197, 3, 64))
    (qt,) = b.op("TRANSPOSE", [q, b.const([0, 2, 1, 3])], [(1, 3, 197, 64)])
    (kt,) = b.op("TRANSPOSE", [q, b.const([0, 2, 3, 1])], [(1, 3, 64, 197)])
    (att,) = b.op("BATCH_MATMUL", [qt, kt], [(1, 3, 197, 197)],
                  options=("BatchMatMulOptions", {}))  # fmt: skip
    b.output(b.softmax(att))
    return save(b, tmp / "transformer_bits.tflite")


def nonsquare_conv(tmp: Path) -> Graph:
    """A 1x7 then a 7x1 convolution at 17x17 (Inception's factorised 7x7)."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 17, 17, 128))
    y = b.conv2d(x, 160, (1, 7), activation="relu")
    b.output(b.conv2d(y, 192, (7, 1), activation="relu"))
    return save(b, tmp / "nonsquare_conv.tflite")
