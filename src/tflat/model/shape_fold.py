"""Constant folding of shape arithmetic: the values of small integer tensors known before running.

Converters that keep a batch dimension dynamic compute shapes inside the graph: ``SHAPE`` of an
activation, ``STRIDED_SLICE`` of it, a ``PACK`` with constants, maybe a ``MUL``, and a
``RESHAPE`` that reads the result. LiteRT evaluates those chains at run time; tflat folds them
here, on tuples of Python ints, so the ``RESHAPE`` downstream gets its real shape. Only small
integer tensors (at most :data:`MAX_VALUES` elements) are folded; a fold that lacks a value
raises :class:`~tflat.model.shape_rules.Unresolvable`, which leaves the tensor unknown (not an
error: most tensors never need values).

``STRIDED_SLICE`` lives here whole (its output shape and its values share the index logic).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tflat.model.shape_rules import OpView, Shape, Unresolvable, axis_of, broadcast, cdiv

Values = tuple[int, ...]
#: Integer tensors up to this many elements get their values folded.
MAX_VALUES = 64
INT_DTYPES = frozenset({"int32", "int64", "int16", "int8", "uint8", "uint16", "uint32"})


def _strides(shape: Shape) -> list[int]:
    out = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        out[i] = out[i + 1] * shape[i + 1]
    return out


def _at(values: Values, shape: Shape, index: Sequence[int]) -> int:
    return values[sum(i * s for i, s in zip(index, _strides(shape), strict=True))]


def _grid(shape: Shape) -> itertools.product[tuple[int, ...]]:
    return itertools.product(*(range(d) for d in shape))


# --- STRIDED_SLICE -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    size: int
    start: int
    stride: int
    count: int
    shrink: bool


def _bit(mask: int, i: int) -> bool:
    return bool(mask >> i & 1)


def _slice_axes(x: OpView) -> list[_Axis]:
    """LiteRT's reading of a strided slice: one entry per axis of the input once the ellipsis
    is expanded and new axes are inserted (tflite/kernels/strided_slice.cc)."""
    shape, begin, end, strides = x.shape(0), x.values(1), x.values(2), x.values(3)
    n = len(begin)
    if len(end) != n or len(strides) != n:
        raise Unresolvable("STRIDED_SLICE begin, end and strides differ in length")
    ellipsis, new_axis = x.option("ellipsis_mask"), x.option("new_axis_mask")
    num_add = sum(1 for i in range(n) if not _bit(ellipsis, i) and _bit(new_axis, i))
    eff = len(shape) + num_add
    eff_ellipsis: set[int] = set()
    eff_new: set[int] = set()
    ellipsis_start, expanded = eff, 0
    i = 0
    while i < eff:
        if _bit(ellipsis, i):
            ellipsis_start = i
            stop = max(i + 1, min(i + 1 + num_add + len(shape) - n, eff))
            expanded = stop - ellipsis_start - 1
            eff_ellipsis.update(range(i, stop))
            i = stop
            continue
        if _bit(new_axis, i - expanded):
            eff_new.add(i)
        i += 1
    begin_mask, end_mask = x.option("begin_mask"), x.option("end_mask")
    shrink_mask, offset = x.option("shrink_axis_mask"), bool(x.options.get("offset"))
    if offset and (ellipsis or new_axis or n != len(shape)):
        raise Unresolvable("STRIDED_SLICE with offset and an ellipsis, new axes or fewer indices")
    axes: list[_Axis] = []
    added_ellipsis = added_axes = 0
    for i in range(eff):
        if i in eff_new:
            axes.append(_Axis(1, 0, 1, 1, False))
            added_axes += 1
            continue
        size = shape[i - added_axes]
        if i in eff_ellipsis:
            added_ellipsis = max(0, i - ellipsis_start)
        if i in eff_ellipsis or i >= n + expanded:
            axes.append(_Axis(size, 0, 1, size, False))
            continue
        o = i - added_ellipsis
        stride = strides[o]
        if stride == 0:
            raise Unresolvable("STRIDED_SLICE with stride 0")
        start = _start(begin[o], size, stride, _bit(begin_mask, o))
        shrink = _bit(shrink_mask, o)
        if offset:  # LiteRT sizes the output by the raw sizes in `end`, unclamped
            count = _count(end[o], stride)
        elif shrink:
            count = 1 if start < size else 0
        else:
            count = _count(_stop(end[o], size, stride, _bit(end_mask, o)) - start, stride)
        axes.append(_Axis(size, start, stride, count, shrink))
    return axes


def _start(begin: int, size: int, stride: int, masked: bool) -> int:
    if masked:
        return 0 if stride > 0 else size - 1
    begin = begin + size if begin < 0 else begin
    return min(max(begin, 0), size) if stride > 0 else min(max(begin, -1), size - 1)


def _stop(end: int, size: int, stride: int, masked: bool) -> int:
    if masked:
        return size if stride > 0 else -1
    end = end + size if end < 0 else end
    return min(max(end, 0), size) if stride > 0 else min(max(end, -1), size - 1)


def _count(span: int, stride: int) -> int:
    if (span < 0) != (stride < 0):
        return 0
    if stride < 0:
        return cdiv(span + 1, stride) + 1
    return 0 if span == 0 else (span - 1) // stride + 1


def strided_slice_shape(x: OpView) -> list[Shape]:
    return [tuple(a.count for a in _slice_axes(x) if not a.shrink)]


def _fold_strided_slice(x: OpView, outs: list[Shape]) -> list[Values]:
    if x.options.get("offset"):
        raise Unresolvable("offset slices are not folded")
    axes = _slice_axes(x)
    data = x.values(0)
    eff_shape = tuple(a.size for a in axes)
    ranges = [[a.start + k * a.stride for k in range(a.count)] for a in axes]
    return [tuple(_at(data, eff_shape, idx) for idx in itertools.product(*ranges))]


# --- other folds -------------------------------------------------------------------------------


def _fold_shape(x: OpView, outs: list[Shape]) -> list[Values]:
    return [x.shape(0)]


def _fold_copy(x: OpView, outs: list[Shape]) -> list[Values]:
    """RESHAPE, SQUEEZE, EXPAND_DIMS, CAST between integers: the data passes unchanged."""
    if x.dtype(0) not in INT_DTYPES:
        raise Unresolvable("not integer data")
    return [x.values(0)]


_BINARY: dict[str, Callable[[int, int], int]] = {
    "ADD": operator.add,
    "SUB": operator.sub,
    "MUL": operator.mul,
    "DIV": cdiv,
    "FLOOR_DIV": operator.floordiv,
    "FLOOR_MOD": operator.mod,
    "MAXIMUM": max,
    "MINIMUM": min,
}


def _fold_binary(x: OpView, outs: list[Shape]) -> list[Values]:
    fn = _BINARY[x.type]
    a, b, out = x.shape(0), x.shape(1), outs[0]
    va, vb = x.values(0), x.values(1)

    def pick(values: Values, shape: Shape, idx: tuple[int, ...]) -> int:
        own = idx[len(idx) - len(shape) :]  # broadcasting aligns the trailing dims
        return _at(values, shape, [i if d != 1 else 0 for i, d in zip(own, shape, strict=True)])

    try:
        return [tuple(fn(pick(va, a, idx), pick(vb, b, idx)) for idx in _grid(out))]
    except ZeroDivisionError as exc:
        raise Unresolvable("division by zero") from exc


def _square(v: int) -> int:
    return v * v


_UNARY: dict[str, Callable[[int], int]] = {"NEG": operator.neg, "ABS": abs, "SQUARE": _square}
_REDUCE: dict[str, Callable[[list[int]], int]] = {
    "SUM": sum,
    "REDUCE_PROD": math.prod,
    "REDUCE_MAX": max,
    "REDUCE_MIN": min,
}


def _fold_unary(x: OpView, outs: list[Shape]) -> list[Values]:
    fn = _UNARY[x.type]
    return [tuple(fn(v) for v in x.values(0))]


def _fold_concatenation(x: OpView, outs: list[Shape]) -> list[Values]:
    parts = [(x.values(i), x.shape(i)) for i in range(len(x.inputs)) if x.has(i)]
    return [_concat(parts, axis_of(x.option("axis"), len(outs[0]), "CONCATENATION"))]


def _concat(parts: list[tuple[Values, Shape]], axis: int) -> Values:
    out: list[int] = []
    outer = math.prod(parts[0][1][:axis])
    for o in range(outer):
        for values, shape in parts:
            chunk = math.prod(shape[axis:])
            out.extend(values[o * chunk : (o + 1) * chunk])
    return tuple(out)


def _fold_pack(x: OpView, outs: list[Shape]) -> list[Values]:
    shape = x.shape(0)
    axis = x.option("axis")
    axis = axis + len(shape) + 1 if axis < 0 else axis
    expanded = (*shape[:axis], 1, *shape[axis:])
    return [_concat([(x.values(i), expanded) for i in range(len(x.inputs))], axis)]


def _fold_unpack(x: OpView, outs: list[Shape]) -> list[Values]:
    shape, data = x.shape(0), x.values(0)
    axis = axis_of(x.option("axis"), len(shape), "UNPACK")
    out = []
    for k in range(shape[axis]):
        idx_shape = (*shape[:axis], *shape[axis + 1 :])
        out.append(tuple(_at(data, shape, (*i[:axis], k, *i[axis:])) for i in _grid(idx_shape)))
    return out


def _fold_split(x: OpView, outs: list[Shape]) -> list[Values]:
    data_pos, axis_pos = (1, 0) if x.type == "SPLIT" else (0, 2)
    shape, data = x.shape(data_pos), x.values(data_pos)
    axis = axis_of(x.scalar(axis_pos), len(shape), x.type)
    out, offset = [], 0
    for part in outs:
        out.append(
            tuple(
                _at(data, shape, (*i[:axis], i[axis] + offset, *i[axis + 1 :])) for i in _grid(part)
            )
        )
        offset += part[axis]
    return out


def _fold_gather(x: OpView, outs: list[Shape]) -> list[Values]:
    if x.option("batch_dims"):
        raise Unresolvable("GATHER with batch_dims is not folded")
    params, indices = x.shape(0), x.shape(1)
    pv, iv = x.values(0), x.values(1)
    axis = axis_of(x.option("axis"), len(params), "GATHER")
    out = []
    for idx in _grid(outs[0]):
        pre, mid = idx[:axis], idx[axis : axis + len(indices)]
        post = idx[axis + len(indices) :]
        k = _at(iv, indices, mid)
        if not 0 <= k < params[axis]:
            raise Unresolvable(f"GATHER index {k} outside {params[axis]}")
        out.append(_at(pv, params, (*pre, k, *post)))
    return [tuple(out)]


def _fold_slice(x: OpView, outs: list[Shape]) -> list[Values]:
    shape, data, begin = x.shape(0), x.values(0), x.values(1)
    return [
        tuple(
            _at(data, shape, [i + b for i, b in zip(idx, begin, strict=True)])
            for idx in _grid(outs[0])
        )
    ]


def _fold_reduce(x: OpView, outs: list[Shape]) -> list[Values]:
    fn = _REDUCE[x.type]
    shape, data = x.shape(0), x.values(0)
    axes = {axis_of(a, len(shape), x.type) for a in x.values(1)}
    groups: dict[tuple[int, ...], list[int]] = {}
    for idx in _grid(shape):
        key = tuple(i for a, i in enumerate(idx) if a not in axes)
        groups.setdefault(key, []).append(_at(data, shape, idx))
    return [tuple(fn(v) for v in groups.values())]


def _fold_fill(x: OpView, outs: list[Shape]) -> list[Values]:
    return [(x.scalar(1),) * math.prod(outs[0])]


def _fold_range(x: OpView, outs: list[Shape]) -> list[Values]:
    start, delta = x.scalar(0), x.scalar(2)
    return [tuple(start + k * delta for k in range(outs[0][0]))]


def _fold_broadcast_args(x: OpView, outs: list[Shape]) -> list[Values]:
    return [broadcast(x.values(0), x.values(1))]


def _fold_like(x: OpView, outs: list[Shape]) -> list[Values]:
    return [(int(x.type == "ONES_LIKE"),) * math.prod(outs[0])]


FOLDS: dict[str, Callable[[OpView, list[Shape]], list[Values]]] = {
    "SHAPE": _fold_shape,
    "STRIDED_SLICE": _fold_strided_slice,
    "SLICE": _fold_slice,
    "GATHER": _fold_gather,
    "CONCATENATION": _fold_concatenation,
    "PACK": _fold_pack,
    "UNPACK": _fold_unpack,
    "SPLIT": _fold_split,
    "SPLIT_V": _fold_split,
    "RESHAPE": _fold_copy,
    "SQUEEZE": _fold_copy,
    "EXPAND_DIMS": _fold_copy,
    "CAST": _fold_copy,
    **dict.fromkeys(_BINARY, _fold_binary),
    "NEG": _fold_unary,
    "ABS": _fold_unary,
    "SQUARE": _fold_unary,
    **dict.fromkeys(("SUM", "REDUCE_PROD", "REDUCE_MAX", "REDUCE_MIN"), _fold_reduce),
    "FILL": _fold_fill,
    "RANGE": _fold_range,
    "BROADCAST_ARGS": _fold_broadcast_args,
    "ZEROS_LIKE": _fold_like,
    "ONES_LIKE": _fold_like,
}
