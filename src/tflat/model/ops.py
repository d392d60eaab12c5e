"""Typed records of a TFLite graph: tensors, ops, subgraphs, and what each op costs.

Everything here is plain data, built by :mod:`tflat.model.reader` and consumed by the GPU
rules, the feature extractors and the reports. Units are in the names: ``flops`` counts
floating-point operations (a multiply-add is 2), ``*_bytes`` count bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Bytes per element of each TFLite tensor type (schema name, lower case).
DTYPE_BYTES: Mapping[str, float] = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "int32": 4,
    "uint32": 4,
    "uint8": 1,
    "int8": 1,
    "int16": 2,
    "uint16": 2,
    "int64": 8,
    "uint64": 8,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
    "int4": 0.5,
    "int2": 0.25,
    "uint4": 0.5,
    "string": 1,
    "resource": 0,
    "variant": 0,
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as an op sees it.

    ``shape`` is the shape LiteRT resolves for the graph's input shapes
    (:mod:`tflat.model.shapes`): concrete, never ``-1``. ``shape_signature`` is what the file
    stores, ``-1`` for a dimension it leaves dynamic (None: the same as ``shape``).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    is_constant: bool
    quantization: Quantization | None = None
    #: The data of a small integer tensor known before running: a constant (axes, paddings, a
    #: new shape) or shape arithmetic folded by :mod:`tflat.model.shape_fold`; else None.
    values: tuple[int, ...] | None = None
    shape_signature: tuple[int, ...] | None = None

    @property
    def numel(self) -> int:
        """Elements in ``shape``: 0 for an empty tensor (a -1, only ever in a hand-built
        record, counts as 1)."""
        return math.prod(d if d >= 0 else 1 for d in self.shape)

    @property
    def nbytes(self) -> int:
        return math.ceil(self.numel * DTYPE_BYTES.get(self.dtype, 4))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "name": self.name,
            "shape": list(self.shape),
            "shape_signature": list(
                self.shape if self.shape_signature is None else self.shape_signature
            ),
            "dtype": self.dtype,
            "constant": self.is_constant,
        }
        if self.quantization is not None:
            out["quantization"] = {
                "scale": list(self.quantization.scale),
                "zero_point": list(self.quantization.zero_point),
                "axis": self.quantization.axis,
            }
        if self.values is not None:
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class Op:
    """One operator of a subgraph, in execution order, with its cost-relevant options.

    ``type`` is the schema name of the builtin (``CONV_2D``) or ``CUSTOM:<code>``.
    ``options`` holds every option the schema gives the op, in snake case, enums by name.
    The normalized fields (``kernel``, ``stride``, ...) are ``None`` where the op has no such
    notion. ``known`` is False for op types tflat has no cost formula for: their ``flops``
    is 0 and they are flagged in every output, never dropped. ``unresolved`` says why the
    op's output shape could not be resolved ("" when it was): its shapes, FLOPs and bytes
    then rest on the file's stored shapes, and every output flags it.
    """

    index: int
    type: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    subgraph: int = 0
    version: int = 1
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None
    padding: str | None = None
    groups: int = 1
    depth_multiplier: int | None = None
    activation: str = "NONE"
    flops: int = 0
    known: bool = True
    unresolved: str = ""

    @property
    def weight_bytes(self) -> int:
        """Bytes of constant inputs (weights, biases, constant operands)."""
        return sum(t.nbytes for t in self.inputs if t.is_constant)

    @property
    def input_bytes(self) -> int:
        """Bytes of the non-constant inputs the op reads."""
        return sum(t.nbytes for t in self.inputs if not t.is_constant)

    @property
    def output_bytes(self) -> int:
        return sum(t.nbytes for t in self.outputs)

    @property
    def activations(self) -> tuple[TensorInfo, ...]:
        """The non-constant inputs, in order."""
        return tuple(t for t in self.inputs if not t.is_constant)

    @property
    def params(self) -> int:
        """Number of elements in constant inputs (weights and biases)."""
        return sum(t.numel for t in self.inputs if t.is_constant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subgraph": self.subgraph,
            "type": self.type,
            "version": self.version,
            "known": self.known,
            "unresolved": self.unresolved,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "kernel": list(self.kernel) if self.kernel else None,
            "stride": list(self.stride) if self.stride else None,
            "dilation": list(self.dilation) if self.dilation else None,
            "padding": self.padding,
            "groups": self.groups,
            "depth_multiplier": self.depth_multiplier,
            "activation": self.activation,
            "flops": self.flops,
            "weight_bytes": self.weight_bytes,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class Subgraph:
    index: int
    name: str
    ops: tuple[Op, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    num_tensors: int


@dataclass(frozen=True)
class Graph:
    """A whole .tflite model. ``ops`` are the ops of the main (first) subgraph."""

    path: str
    size_bytes: int
    schema_version: int
    description: str
    subgraphs: tuple[Subgraph, ...]

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.subgraphs[0].ops if self.subgraphs else ()

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return self.subgraphs[0].inputs if self.subgraphs else ()

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return self.subgraphs[0].outputs if self.subgraphs else ()

    @property
    def all_ops(self) -> tuple[Op, ...]:
        return tuple(op for sg in self.subgraphs for op in sg.ops)

    @property
    def name(self) -> str:
        base = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        return base[:-7] if base.endswith(".tflite") else base

    def summary(self) -> dict[str, Any]:
        """Op counts by type, totals, and what the reader did not know."""
        ops = self.all_ops
        # A weight shared by several ops counts once.
        params = {t.index: t.numel for op in ops for t in op.inputs if t.is_constant}
        weight_bytes = {t.index: t.nbytes for op in ops for t in op.inputs if t.is_constant}
        return {
            "model": self.name,
            "size_bytes": self.size_bytes,
            "subgraphs": len(self.subgraphs),
            "ops": len(ops),
            "ops_main_subgraph": len(self.ops),
            "op_counts": dict(Counter(op.type for op in ops).most_common()),
            "total_flops": sum(op.flops for op in ops),
            "parameters": sum(params.values()),
            "weight_bytes": sum(weight_bytes.values()),
            "unknown_ops": sorted({op.type for op in ops if not op.known}),
            "unresolved_ops": [
                {"index": op.index, "subgraph": op.subgraph, "type": op.type, "why": op.unresolved}
                for op in ops
                if op.unresolved
            ],
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "path": self.path,
            "summary": self.summary(),
            "subgraphs": [
                {"index": sg.index, "name": sg.name, "ops": len(sg.ops), "tensors": sg.num_tensors}
                for sg in self.subgraphs
            ],
            "ops": [op.to_dict() for op in self.all_ops],
        }
