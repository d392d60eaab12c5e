"""Small real .tflite graphs for the pricing tests, written with tflat's own graph builder.

``generic_op`` writes any builtin op the typed builder methods do not cover (CUMSUM,
TRANSPOSE, BATCH_MATMUL, SOFTMAX with another beta, ...), the way converters write them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tflat
from tflat.model.ops import Graph
from tflat.model.writer import GraphBuilder, Tensor


def generic_op(
    b: GraphBuilder,
    kind: str,
    inputs: Sequence[Tensor],
    shape: Sequence[int],
    *,
    dtype: str = "float32",
    options: tuple[str, Mapping[str, Any]] | None = None,
) -> Tensor:
    out = b._tensor(shape, dtype, kind.lower())
    opt, name = None, None
    if options is not None:
        name, fields = options
        opt = getattr(b._s, name + "T")()
        for key, value in fields.items():
            setattr(opt, key, value)
    b._op(kind, list(inputs), [out], opt, name)
    return out


def int_const(b: GraphBuilder, values: Sequence[int], name: str = "const") -> Tensor:
    arr = np.asarray(values, dtype=np.int32)
    return b._tensor(arr.shape, "int32", name, data=arr)


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


def conv_cumsum_conv(tmp: Path) -> Graph:
    """conv -> CUMSUM (refused by the 2.10 delegate) -> conv."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 56, 56, 32))
    y = b.conv2d(x, 32, 3, activation="relu")
    z = generic_op(b, "CUMSUM", [y, int_const(b, [3], "axis")], y.shape,
                   options=("CumsumOptions", {}))  # fmt: skip
    b.output(b.conv2d(z, 32, 3, activation="relu"))
    return save(b, tmp / "conv_cumsum_conv.tflite")


def transformer_bits(tmp: Path) -> Graph:
    """A layer norm, an attention product and a softmax: kinds no regressor covers."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 197, 192))
    mean = generic_op(b, "MEAN", [x, int_const(b, [-1])], (1, 197, 1),
                      options=("ReducerOptions", {"keepDims": True}))  # fmt: skip
    sq = generic_op(b, "SQUARED_DIFFERENCE", [x, mean], x.shape)
    var = generic_op(b, "MEAN", [sq, int_const(b, [-1])], (1, 197, 1),
                     options=("ReducerOptions", {"keepDims": True}))  # fmt: skip
    inv = generic_op(b, "RSQRT", [var], var.shape)
    norm = b.mul(x, inv)
    q = b.reshape(norm, (1, 197, 3, 64))
    qt = generic_op(b, "TRANSPOSE", [q, int_const(b, [0, 2, 1, 3])], (1, 3, 197, 64))
    kt = generic_op(b, "TRANSPOSE", [q, int_const(b, [0, 2, 3, 1])], (1, 3, 64, 197))
    att = generic_op(b, "BATCH_MATMUL", [qt, kt], (1, 3, 197, 197),
                     options=("BatchMatMulOptions", {}))  # fmt: skip
    b.output(b.softmax(att))
    return save(b, tmp / "transformer_bits.tflite")
