"""The shapes LiteRT itself resolves, and a check of tflat's against them (test helper).

LiteRT is the reference: ``resize_tensor_input`` for the given input shapes,
``allocate_tensors()``, one ``invoke()`` (some outputs are sized only then), and the tensor
details. The default delegates stay off so every op runs LiteRT's own kernel and every
tensor keeps the shape that kernel gave it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import tflat
from tflat.model.ops import Graph, Op

#: Ops whose FLOPs the check recomputes from LiteRT's shapes.
MATMUL_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )


def litert_shapes(
    path: Path, input_shapes: list[tuple[int, ...]] | None = None
) -> dict[int, tuple[int, ...]] | None:
    """Tensor index -> shape after one invoke; None when LiteRT lacks one of the model's
    custom ops (MediaPipe's), so it cannot prepare the model at all."""
    it = _interpreter(path)
    for d, shape in zip(it.get_input_details(), input_shapes or (), strict=False):
        it.resize_tensor_input(d["index"], list(shape))
    try:
        it.allocate_tensors()
    except RuntimeError as exc:
        if "unresolved custom op" in str(exc):
            return None
        raise
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        floats = np.issubdtype(d["dtype"], np.floating)
        data = rng.standard_normal(d["shape"]) if floats else np.zeros(d["shape"])
        it.set_tensor(d["index"], data.astype(d["dtype"]))
    it.invoke()
    return {d["index"]: tuple(int(v) for v in d["shape"]) for d in it.get_tensor_details()}


def stored_shapes(path: Path) -> dict[int, tuple[int, ...]]:
    """The shapes LiteRT reads from the file, before preparing anything."""
    details = _interpreter(path).get_tensor_details()
    return {d["index"]: tuple(int(v) for v in d["shape"]) for d in details}


def flops_from(op: Op, shapes: dict[int, tuple[int, ...]]) -> int:
    """An op's FLOPs by tflat's conventions (model/cost.py), from the given shapes."""
    out = math.prod(shapes[op.outputs[0].index])
    ins = [shapes[t.index] for t in op.inputs]
    if op.type == "CONV_2D":
        return 2 * out * ins[1][1] * ins[1][2] * ins[1][3]
    if op.type == "DEPTHWISE_CONV_2D":
        return 2 * out * ins[1][1] * ins[1][2]
    if op.type == "FULLY_CONNECTED":
        return 2 * out * ins[1][-1]
    k = ins[0][-2] if op.options.get("adj_x") else ins[0][-1]
    return 2 * out * k


def assert_shapes_equal_litert(
    path: Path, input_shapes: list[tuple[int, ...]] | None = None
) -> Graph:
    """Every op output of the main subgraph has LiteRT's shape, no op is flagged unresolved,
    and the FLOPs of the matmul-like ops equal those computed from LiteRT's shapes."""
    graph = tflat.read_model(path, input_shapes=input_shapes)
    lite = litert_shapes(path, input_shapes)
    if lite is None:  # a static model LiteRT cannot prepare: its stored shapes are the truth
        assert input_shapes is None
        assert all(-1 not in (t.shape_signature or ()) for t in graph.inputs)
        lite = stored_shapes(path)
    wrong = [
        (op.index, op.type, t.shape, lite[t.index])
        for op in graph.ops
        for t in op.outputs
        if t.shape != lite[t.index]
    ]
    assert wrong == [], f"{len(wrong)} op outputs differ from LiteRT: {wrong[:5]}"
    assert [(op.index, op.unresolved) for op in graph.ops if op.unresolved] == []
    for op in graph.ops:
        if op.type in MATMUL_KINDS:
            assert op.flops == flops_from(op, lite), (op.index, op.type)
    return graph
