"""Every tensor's real shape: the shapes LiteRT resolves for a concrete input shape.

The shapes a .tflite file stores are a hint, not the truth. A model exported with a dynamic
batch stores ``-1`` in each ``shape_signature`` and ``1`` in each ``shape``, and inside the graph
LiteRT recomputes every output from its inputs when it prepares the model: a ``RESHAPE`` whose
new shape comes out of ``SHAPE -> STRIDED_SLICE -> PACK`` gets its real size only then. This
module does what LiteRT does, op by op in execution order: graph inputs get their shape (the
signature, batch 1 unless told, other dynamic dims from ``input_shapes``), each op's outputs get
the shape its kernel would give them (:mod:`tflat.model.shape_rules`), and small integer
tensors get their values folded (:mod:`tflat.model.shape_fold`) so the next op can read them.

Nothing is kept silently wrong. An op whose outputs cannot be computed keeps the file's stored
shape, and if that shape is not known to be right (its inputs differ from what the file stored,
or its signature has a ``-1``) the op is flagged with a reason, as is every op that depends on
it. A graph input with a dynamic dimension beyond the batch cannot be guessed: reading such a
model without its shape raises :class:`InputShapeError`, a one-line error naming
``--input-shape``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tflat.errors import ModelFormatError
from tflat.model.ops import Op, TensorInfo
from tflat.model.shape_fold import FOLDS, INT_DTYPES, MAX_VALUES, Values, strided_slice_shape
from tflat.model.shape_layout import LAYOUT_RULES
from tflat.model.shape_rules import RULES, OpView, Shape, Unresolvable

#: The shapes a caller gives the graph inputs: one per input in order, or by tensor name.
InputShapes = Mapping[str, Sequence[int]] | Sequence[Sequence[int]]

_RULES = {**RULES, **LAYOUT_RULES, "STRIDED_SLICE": strided_slice_shape}
#: Op kinds whose outputs tflat computes (READ_VARIABLE follows the variable it reads).
RULE_KINDS = frozenset({*_RULES, "READ_VARIABLE"})
#: Bounds no runtime allocates past (the reader holds stored shapes to the same).
MAX_RANK = 16
MAX_ELEMENTS = 2**48
_EXAMPLE = "1,224,224,3"


class InputShapeError(ModelFormatError):
    """A graph input whose shape is unknown (a dynamic height or width), or a given input shape
    that does not fit the model. Bad input: exit code 1."""


@dataclass(frozen=True)
class RawOp:
    """An op as the file stores it: tensor indices by position (-1 for an omitted input)."""

    index: int
    type: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any]
    version: int = 1


@dataclass(frozen=True)
class RawSubgraph:
    """A subgraph before its shapes are resolved; ``tensor(i)`` has the file's stored shape."""

    ops: tuple[RawOp, ...]
    inputs: tuple[int, ...]
    tensor: Callable[[int], TensorInfo]


@dataclass
class Resolution:
    """What resolving one subgraph found: shapes and folded values by tensor index, and the
    reason each unresolved op (by op index) could not be resolved."""

    shapes: dict[int, Shape] = field(default_factory=dict)
    values: dict[int, Values] = field(default_factory=dict)
    unresolved: dict[int, str] = field(default_factory=dict)


def parse_input_shapes(texts: Sequence[str]) -> InputShapes:
    """``--input-shape`` arguments (``1,224,224,3`` or ``NAME:1,224,224,3``) as input shapes.

    Unnamed shapes are given one per input, in the model's input order; named ones may name
    any inputs. Mixing both raises :class:`InputShapeError`.
    """
    named: dict[str, tuple[int, ...]] = {}
    ordered: list[tuple[int, ...]] = []
    for text in texts:
        name, _, dims = text.strip().rpartition(":")
        if not re.fullmatch(r"\s*\d+(\s*[,x]\s*\d+)*\s*", dims):
            raise InputShapeError(
                f"--input-shape {text!r}: expected sizes like {_EXAMPLE} (or NAME:{_EXAMPLE})"
            )
        shape = tuple(int(d) for d in re.split(r"[,x]", dims))
        if name:
            named[name] = shape
        else:
            ordered.append(shape)
    if named and ordered:
        raise InputShapeError("--input-shape: name every input (NAME:SHAPE) or none")
    return named if named else ordered


def resolve(
    subgraphs: Sequence[RawSubgraph], input_shapes: InputShapes | None, model: str
) -> list[Resolution]:
    """Resolve every subgraph; the first is the main one, whose inputs ``input_shapes`` set."""
    if not subgraphs:
        return []
    resolver = _Resolver(subgraphs)
    main = subgraphs[0]
    resolver.run(0, _main_inputs([main.tensor(i) for i in main.inputs], input_shapes, model))
    for si, sg in enumerate(subgraphs):
        if si not in resolver.done:
            resolver.run(si, {i: _batch_one(sg.tensor(i)) for i in sg.inputs})
    return [resolver.done[si] for si in range(len(subgraphs))]


def _batch_one(t: TensorInfo) -> Shape:
    sig = t.shape_signature if t.shape_signature is not None else t.shape
    return tuple(1 if d < 0 else d for d in sig)


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _main_inputs(
    inputs: list[TensorInfo], given: InputShapes | None, model: str
) -> dict[int, Shape]:
    by_name: dict[str, Sequence[int]] = {}
    if isinstance(given, Mapping):
        by_name = dict(given)
        unknown = sorted(set(by_name) - {t.name for t in inputs})
        if unknown:
            names = ", ".join(repr(t.name) for t in inputs)
            raise InputShapeError(f"{model}: no input named {unknown[0]!r} (inputs: {names})")
    elif given:
        if len(given) != len(inputs):
            raise InputShapeError(
                f"{model}: {len(given)} input shapes given for {len(inputs)} inputs "
                "(give one per input, or NAME:SHAPE)"
            )
        by_name = {t.name: s for t, s in zip(inputs, given, strict=True)}
    out: dict[int, Shape] = {}
    for t in inputs:
        sig = t.shape_signature if t.shape_signature is not None else t.shape
        shape = by_name.get(t.name)
        if shape is not None:
            out[t.index] = _checked(t, sig, tuple(int(d) for d in shape), model)
            continue
        if any(d < 0 for i, d in enumerate(sig) if i > 0 or len(sig) == 1):
            raise InputShapeError(_dynamic_message(model, t, sig, several=len(inputs) > 1))
        out[t.index] = _batch_one(t)
    return out


def _checked(t: TensorInfo, sig: Sequence[int], shape: Shape, model: str) -> Shape:
    if len(shape) != len(sig) or any(d <= 0 for d in shape):
        raise InputShapeError(
            f"{model}: input {t.name!r} has rank {len(sig)} ({_fmt(sig)}); "
            f"the shape given, {_fmt(shape)}, does not fit"
        )
    for i, (s, d) in enumerate(zip(sig, shape, strict=True)):
        if s >= 0 and s != d:
            raise InputShapeError(
                f"{model}: input {t.name!r} is {_fmt(sig)}: dim {i} is fixed at {s}, "
                f"the shape given sets {d} (only -1 dims can be set)"
            )
    return shape


def _dynamic_message(model: str, t: TensorInfo, sig: Sequence[int], several: bool) -> str:
    names = ["H", "W"] if len(sig) == 4 else []
    dims = []
    for i, d in enumerate(sig):
        if d >= 0:
            dims.append(str(d))
        elif i == 0 and len(sig) > 1:
            dims.append("1")
        else:
            dims.append(names.pop(0) if names else f"D{i}")
    flag = f"--input-shape {t.name + ':' if several else ''}{','.join(dims)}"
    return (
        f"{model}: input {t.name!r} has shape {_fmt(sig)}, dynamic beyond the batch: "
        f"give its size with {flag} (input_shapes= in Python)"
    )


class _Resolver:
    def __init__(self, subgraphs: Sequence[RawSubgraph]) -> None:
        self.subgraphs = subgraphs
        self.done: dict[int, Resolution] = {}
        #: resource variables by (container, shared_name): the shape last assigned
        self.variables: dict[tuple[str, str], Shape] = {}

    def run(self, si: int, inputs: dict[int, Shape]) -> Resolution:
        done = self.done.get(si)
        if done is not None:
            return done
        res = self.done[si] = Resolution()
        _Pass(self, self.subgraphs[si], res, inputs).run()
        return res


class _Pass:
    """One subgraph resolved in execution order."""

    def __init__(
        self, owner: _Resolver, sg: RawSubgraph, res: Resolution, inputs: dict[int, Shape]
    ) -> None:
        self.owner = owner
        self.sg = sg
        self.res = res
        self.shapes = res.shapes
        self.values = res.values
        #: tensor index -> the unresolved op its shape depends on (-1: a subgraph input)
        self.doubt: dict[int, int] = {}
        self.resources: dict[int, tuple[str, str]] = {}
        for i, shape in inputs.items():
            self.shapes[i] = shape
            t = sg.tensor(i)
            sig = t.shape_signature if t.shape_signature is not None else t.shape
            if any(d < 0 for d in sig[1:]) and sg is not owner.subgraphs[0]:
                self.doubt[i] = -1

    def _dtype(self, i: int) -> str:
        return self.sg.tensor(i).dtype

    def _see(self, i: int) -> None:
        """A tensor met for the first time: a constant or a tensor no op writes keeps the
        shape the file stores (LiteRT allocates it so)."""
        if i < 0 or i in self.shapes:
            return
        t = self.sg.tensor(i)
        self.shapes[i] = t.shape
        if t.values is not None:
            self.values[i] = t.values
        elif t.dtype in INT_DTYPES and not math.prod(t.shape):
            self.values[i] = ()  # an empty constant (no axes) stores no data at all

    def run(self) -> None:
        for op in self.sg.ops:
            for i in op.inputs:
                self._see(i)
            self._op(op)

    def _op(self, op: RawOp) -> None:
        view = OpView(
            op.type,
            op.inputs,
            len(op.outputs),
            op.options,
            self.shapes,
            self.values,
            self._dtype,
            self._dtype(op.outputs[0]) if op.outputs else "",
        )
        note = ""
        outs: list[Shape] | None = None
        try:
            outs = self._outputs(op, view)
        except Unresolvable as exc:
            note = str(exc)
        except (ArithmeticError, IndexError, KeyError, ValueError) as exc:
            # inputs no kernel would accept (a zero block size, an axis past the rank)
            note = f"{op.type} cannot take these inputs ({type(exc).__name__})"
        if outs is None:
            outs = [self.sg.tensor(o).shape for o in op.outputs]
            if self._stored_is_right(op):
                note = ""
            elif not note:
                note = f"no shape rule for {op.type}"
        roots = [self.doubt[i] for i in op.inputs if i in self.doubt]
        if note:
            self.res.unresolved[op.index] = f"{note}: the file's stored shape is shown"
            root = op.index
        elif roots:
            root = roots[0]
            self.res.unresolved[op.index] = (
                f"depends on op {root}, whose shape is unresolved"
                if root >= 0
                else "depends on a subgraph input of unknown shape"
            )
        else:
            root = None
        for o, shape in zip(op.outputs, outs, strict=True):
            self.shapes[o] = shape
            if root is not None:
                self.doubt[o] = root
        if root is None:
            self._fold(op, view, outs)

    def _outputs(self, op: RawOp, view: OpView) -> list[Shape] | None:
        if op.type == "READ_VARIABLE":
            key = self.resources.get(op.inputs[0])
            shape = self.owner.variables.get(key) if key is not None else None
            if shape is None:
                raise Unresolvable("READ_VARIABLE of a variable assigned nowhere before")
            return [shape]
        if op.type == "VAR_HANDLE" and op.outputs:
            key = (str(op.options.get("container", "")), str(op.options.get("shared_name", "")))
            self.resources[op.outputs[0]] = key
        elif op.type == "ASSIGN_VARIABLE" and len(op.inputs) > 1:
            key = self.resources.get(op.inputs[0])
            if key is not None:
                self.owner.variables[key] = self.shapes[op.inputs[1]]
        elif op.type == "CALL_ONCE":
            init = op.options.get("init_subgraph_index")
            if isinstance(init, int) and 0 <= init < len(self.owner.subgraphs):
                self.owner.run(init, {})
        rule = _RULES.get(op.type)
        if rule is None:
            return None
        outs = rule(view)
        if len(outs) != len(op.outputs):
            raise Unresolvable(f"{op.type} gives {len(outs)} outputs, the file {len(op.outputs)}")
        for shape in outs:
            if any(d < 0 for d in shape):
                raise Unresolvable(f"{op.type} would give a negative size {_fmt(shape)}")
            if len(shape) > MAX_RANK or math.prod(shape) > MAX_ELEMENTS:
                raise Unresolvable(f"{op.type} would give an impossible shape {_fmt(shape)}")
        return outs

    def _stored_is_right(self, op: RawOp) -> bool:
        """The file's stored output shapes hold when the op sees exactly the inputs the file
        stored and the file does not mark an output dynamic."""
        for i in op.inputs:
            if i >= 0 and self.shapes[i] != self.sg.tensor(i).shape:
                return False
        for o in op.outputs:
            t = self.sg.tensor(o)
            sig = t.shape_signature if t.shape_signature is not None else t.shape
            if any(d < 0 for d in sig):
                return False
        return True

    def _fold(self, op: RawOp, view: OpView, outs: list[Shape]) -> None:
        fold = FOLDS.get(op.type)
        if fold is None or not op.outputs:
            return
        if any(
            self._dtype(o) not in INT_DTYPES or math.prod(s) > MAX_VALUES
            for o, s in zip(op.outputs, outs, strict=True)
        ):
            return
        try:
            folded = fold(view, outs)
        except (Unresolvable, IndexError, ValueError):
            return  # values unknown: fine, most tensors never need them
        for o, shape, values in zip(op.outputs, outs, folded, strict=True):
            if len(values) == math.prod(shape):
                self.values[o] = tuple(int(v) for v in values)


def unresolved_warnings(ops: Sequence[Op]) -> list[str]:
    """One line per op whose shape could not be resolved, then one for the ops that depend on
    them: what ``inspect`` and ``estimate`` print, so no wrong shape goes by unsaid."""
    roots = [op for op in ops if op.unresolved and not op.unresolved.startswith("depends on")]
    lines = [
        f"op {_where(op)} ({op.type}): output shape unresolved, {op.unresolved}" for op in roots
    ]
    followers = [op for op in ops if op.unresolved.startswith("depends on")]
    if followers:
        shown = ", ".join(_where(op) for op in followers[:10])
        more = f" and {len(followers) - 10} more" if len(followers) > 10 else ""
        lines.append(
            f"{len(followers)} ops read an unresolved shape, so theirs may be wrong too: "
            f"op {shown}{more}"
        )
    return lines


def _where(op: Op) -> str:
    return f"{op.subgraph}:{op.index}" if op.subgraph else str(op.index)
