"""The output shapes of the layout ops: reshaping, slicing, joining, padding, gathering.

The companion of :mod:`tflat.model.shape_rules` (which holds the :class:`OpView` every rule
reads, the helpers, and the compute ops): one rule per op kind that moves or rearranges data
(``RESHAPE``, ``CONCATENATION``, ``PAD``, ``GATHER``, ``RESIZE_*``...) or computes a shape
(``SHAPE``, ``FILL``, ``RANGE``), each as LiteRT's kernel sizes its outputs.
``STRIDED_SLICE`` is in :mod:`tflat.model.shape_fold` (its shape and values share the logic).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tflat.model.shape_rules import (
    OpView,
    Shape,
    Unresolvable,
    axis_of,
    broadcast,
    cdiv,
    fmt_shape,
    rank_of,
)


def _from_values(pos: int) -> Callable[[OpView], list[Shape]]:
    """An op whose output shape is the value of one of its inputs (TRANSPOSE_CONV, FILL...)."""

    def rule(x: OpView) -> list[Shape]:
        shape = x.values(pos)
        if any(d < 0 for d in shape):
            raise Unresolvable(f"{x.type}: negative size in {fmt_shape(shape)}")
        return [tuple(shape)]

    return rule


def _reshape(x: OpView) -> list[Shape]:
    if x.has(1) and len(x.shape(1)) == 1 and x.dtype(1) == "int32":
        target = list(x.values(1))
    else:
        target = [int(v) for v in x.options.get("new_shape") or ()]
        if target == [0]:  # legacy models mark a scalar so
            target = []
    numel = math.prod(x.shape(0))
    nonzero_in = math.prod(d for d in x.shape(0) if d != 0)
    stretch = [i for i, d in enumerate(target) if d == -1]
    if len(stretch) > 1:
        raise Unresolvable(f"RESHAPE to {fmt_shape(tuple(target))} has two -1")
    if stretch:
        known = math.prod(d for d in target if d != -1)
        nonzero_out = math.prod(d for d in target if d not in (0, -1))
        target[stretch[0]] = 0 if numel == 0 and known != 0 else nonzero_in // nonzero_out
    if math.prod(target) != numel:
        raise Unresolvable(f"RESHAPE of {fmt_shape(x.shape(0))} to {fmt_shape(tuple(target))}")
    return [tuple(target)]


def _squeeze(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    dims = x.options.get("squeeze_dims") or []
    if not dims:
        return [tuple(d for d in shape if d != 1)]
    drop = {axis_of(int(a), len(shape), "SQUEEZE") for a in dims}
    return [tuple(d for i, d in enumerate(shape) if i not in drop)]


def _expand_dims(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axis = x.scalar(1)
    axis = axis + len(shape) + 1 if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise Unresolvable(f"EXPAND_DIMS axis {axis} outside rank {len(shape)}")
    return [(*shape[:axis], 1, *shape[axis:])]


def _transpose(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    perm = [axis_of(p, len(shape), "TRANSPOSE") for p in x.values(1)]
    if sorted(perm) != list(range(len(shape))):
        raise Unresolvable(f"TRANSPOSE perm {perm} for rank {len(shape)}")
    return [tuple(shape[p] for p in perm)]


def _concatenation(x: OpView) -> list[Shape]:
    shapes = [x.shape(i) for i in range(len(x.inputs)) if x.has(i)]
    first = shapes[0]
    axis = axis_of(x.option("axis"), len(first), "CONCATENATION")
    for s in shapes[1:]:
        if len(s) != len(first) or s[:axis] + s[axis + 1 :] != first[:axis] + first[axis + 1 :]:
            raise Unresolvable(f"CONCATENATION of {fmt_shape(first)}, {fmt_shape(s)} on {axis}")
    return [(*first[:axis], sum(s[axis] for s in shapes), *first[axis + 1 :])]


def _pack(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axis = x.option("axis")
    axis = axis + len(shape) + 1 if axis < 0 else axis
    count = x.option("values_count", len(x.inputs)) or len(x.inputs)
    return [(*shape[:axis], count, *shape[axis:])]


def _unpack(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axis = axis_of(x.option("axis"), len(shape), "UNPACK")
    return [shape[:axis] + shape[axis + 1 :]] * x.n_outputs


def _split(x: OpView) -> list[Shape]:
    shape = x.shape(1)
    axis = axis_of(x.scalar(0), len(shape), "SPLIT")
    n = x.option("num_splits", x.n_outputs) or x.n_outputs
    if shape[axis] % n:
        raise Unresolvable(f"SPLIT of {shape[axis]} into {n}")
    return [(*shape[:axis], shape[axis] // n, *shape[axis + 1 :])] * x.n_outputs


def _split_v(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axis = axis_of(x.scalar(2), len(shape), "SPLIT_V")
    sizes = list(x.values(1))
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = shape[axis] - (sum(sizes) + 1)
    if sum(sizes) != shape[axis] or len(sizes) != x.n_outputs:
        raise Unresolvable(f"SPLIT_V of {shape[axis]} into {sizes}")
    return [(*shape[:axis], s, *shape[axis + 1 :]) for s in sizes]


def _pad(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    pads = x.values(1)
    if len(pads) != 2 * len(shape):
        raise Unresolvable(f"{x.type} paddings {list(pads)} for rank {len(shape)}")
    return [tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(shape))]


def _gather(x: OpView) -> list[Shape]:
    params, indices = x.shape(0), x.shape(1)
    axis = axis_of(x.option("axis"), len(params), "GATHER")
    batch = x.option("batch_dims")
    batch = batch + len(indices) if batch < 0 else batch
    return [(*params[:axis], *indices[batch:], *params[axis + 1 :])]


def _gather_nd(x: OpView) -> list[Shape]:
    params, indices = x.shape(0), x.shape(1)
    if not indices or indices[-1] > len(params):
        raise Unresolvable(f"GATHER_ND indices {fmt_shape(indices)} into {fmt_shape(params)}")
    return [(*indices[:-1], *params[indices[-1] :])]


def _slice(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    begin, size = x.values(1), x.values(2)
    if len(begin) != len(shape) or len(size) != len(shape):
        raise Unresolvable(f"SLICE begin {list(begin)} size {list(size)} for rank {len(shape)}")
    return [tuple(d - b if s == -1 else s for d, b, s in zip(shape, begin, size, strict=True))]


def _tile(x: OpView) -> list[Shape]:
    shape, multiples = x.shape(0), x.values(1)
    if len(multiples) != len(shape):
        raise Unresolvable(f"TILE multiples {list(multiples)} for rank {len(shape)}")
    return [tuple(d * m for d, m in zip(shape, multiples, strict=True))]


def _broadcast_to(x: OpView) -> list[Shape]:
    target = tuple(x.values(1))
    if broadcast(x.shape(0), target) != target:
        raise Unresolvable(f"BROADCAST_TO {fmt_shape(x.shape(0))} to {fmt_shape(target)}")
    return [target]


def _depth_to_space(x: OpView) -> list[Shape]:
    n, h, w, c = rank_of(x.shape(0), 4, x.type)
    b = x.option("block_size", 1)
    if x.type == "DEPTH_TO_SPACE":
        return [(n, h * b, w * b, c // (b * b))]
    return [(n, h // b, w // b, c * b * b)]


def _resize(x: OpView) -> list[Shape]:
    n, _, _, c = rank_of(x.shape(0), 4, x.type)
    size = x.values(1)
    if len(size) != 2:
        raise Unresolvable(f"{x.type} size {list(size)}")
    return [(n, size[0], size[1], c)]


def _shape(x: OpView) -> list[Shape]:
    return [(len(x.shape(0)),)]


def _range(x: OpView) -> list[Shape]:
    start, limit, delta = x.scalar(0), x.scalar(1), x.scalar(2)
    if delta == 0:
        raise Unresolvable("RANGE with delta 0")
    return [(max(0, cdiv(abs(limit - start) + abs(delta) - 1, abs(delta))),)]


def _one_hot(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    axis = x.option("axis", -1)
    axis = len(shape) if axis == -1 else axis
    return [(*shape[:axis], x.scalar(1), *shape[axis:])]


def _top_k(x: OpView) -> list[Shape]:
    k = x.scalar(1)
    return [(*x.shape(0)[:-1], k)] * x.n_outputs


def _space_to_batch(x: OpView) -> list[Shape]:
    shape, block, pads = x.shape(0), x.values(1), x.values(2)
    spatial = [(shape[1 + i] + pads[2 * i] + pads[2 * i + 1]) // b for i, b in enumerate(block)]
    return [(shape[0] * math.prod(block), *spatial, *shape[1 + len(block) :])]


def _batch_to_space(x: OpView) -> list[Shape]:
    shape, block, crops = x.shape(0), x.values(1), x.values(2)
    spatial = [shape[1 + i] * b - crops[2 * i] - crops[2 * i + 1] for i, b in enumerate(block)]
    return [(shape[0] // math.prod(block), *spatial, *shape[1 + len(block) :])]


def _embedding_lookup(x: OpView) -> list[Shape]:
    ids, table = x.shape(0), x.shape(1)
    return [(*ids[:1], *table[1:])]


def _select(x: OpView) -> list[Shape]:
    if x.type == "SELECT_V2":
        return [broadcast(x.shape(0), x.shape(1), x.shape(2))]
    return [x.shape(1)]


def _matrix_diag(x: OpView) -> list[Shape]:
    shape = x.shape(0)
    return [(*shape, shape[-1])]


def _broadcast_args(x: OpView) -> list[Shape]:
    return [(max(len(x.values(0)), len(x.values(1))),)]


def _bitcast(x: OpView) -> list[Shape]:
    from tflat.model.ops import DTYPE_BYTES

    shape = x.shape(0)
    a, b = DTYPE_BYTES.get(x.dtype(0), 0), DTYPE_BYTES.get(x.out_dtype, 0)
    if not a or not b:
        raise Unresolvable(f"BITCAST from {x.dtype(0)} to {x.out_dtype}")
    if a == b:
        return [shape]
    return [(*shape, int(a // b)) if a > b else shape[:-1]]


LAYOUT_RULES: dict[str, Callable[[OpView], list[Shape]]] = {
    "TRANSPOSE_CONV": _from_values(0),
    "CONV_3D_TRANSPOSE": _from_values(0),
    "RESHAPE": _reshape,
    "SQUEEZE": _squeeze,
    "EXPAND_DIMS": _expand_dims,
    "TRANSPOSE": _transpose,
    "CONCATENATION": _concatenation,
    "PACK": _pack,
    "UNPACK": _unpack,
    "SPLIT": _split,
    "SPLIT_V": _split_v,
    "PAD": _pad,
    "PADV2": _pad,
    "MIRROR_PAD": _pad,
    "GATHER": _gather,
    "GATHER_ND": _gather_nd,
    "SLICE": _slice,
    "TILE": _tile,
    "BROADCAST_TO": _broadcast_to,
    "DEPTH_TO_SPACE": _depth_to_space,
    "SPACE_TO_DEPTH": _depth_to_space,
    "RESIZE_BILINEAR": _resize,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "SHAPE": _shape,
    "FILL": _from_values(0),
    "SCATTER_ND": _from_values(2),
    "RANGE": _range,
    "ONE_HOT": _one_hot,
    "TOPK_V2": _top_k,
    "SPACE_TO_BATCH_ND": _space_to_batch,
    "BATCH_TO_SPACE_ND": _batch_to_space,
    "EMBEDDING_LOOKUP": _embedding_lookup,
    "SELECT": _select,
    "SELECT_V2": _select,
    "MATRIX_DIAG": _matrix_diag,
    "BROADCAST_ARGS": _broadcast_args,
    "BITCAST": _bitcast,
}
