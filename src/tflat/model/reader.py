"""Read a .tflite flatbuffer into a :class:`~tflat.model.ops.Graph` of typed ops.

The reader trusts nothing in the file. Every offset and vector length is checked against the
file size before it is followed (:class:`~tflat.model.schema.FlatBuffer`), the vectors walked
in total are capped by a small multiple of the file size, and shapes are bounded in rank and
element count, so a hostile or corrupt file can neither loop for long nor make the reader
allocate without limit. Every failure becomes one :class:`ModelFormatError`.

Field positions come from LiteRT's generated schema (:func:`~tflat.model.schema.slot_of`),
not from constants copied here, so the reader follows the schema LiteRT ships.
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tflat.errors import ModelFormatError
from tflat.model import cost
from tflat.model.ops import Graph, Quantization, Subgraph, TensorInfo
from tflat.model.schema import (
    FlatBuffer,
    FlatBufferError,
    builtin_names,
    options_classes,
    read_options_fast,
    slot_of,
    tensor_type_names,
)
from tflat.model.shapes import InputShapes, RawOp, RawSubgraph, Resolution, resolve

log = logging.getLogger(__name__)

_IDENTIFIER = b"TFL3"
_CUSTOM = 32
#: Small integer constants (axes, paddings, new shapes) are read into ``TensorInfo.values``.
_MAX_VALUES = 64
#: Shapes beyond these are corrupt: no runtime allocates them, and bounding them keeps every
#: later product (elements, bytes, FLOPs) a small integer.
_MAX_RANK = 16
_MAX_ELEMENTS = 2**48
#: Work the reader may do, per byte of file: each vector element walked costs 1, each op
#: built _OP_COST and each tensor _TENSOR_COST. A real file stores every element once, and
#: an op or a tensor takes more bytes than its cost (offsets, table, vectors, name), so no
#: real model reaches the budget (the corpus of scripts/fetch_models.py uses < 0.3 per byte).
#: Only tables and vectors aliasing one another can, and that is what bounds a hostile file's
#: time and memory to a fixed multiple of its size.
_BUDGET_PER_BYTE = 1
_OP_COST = 32
_TENSOR_COST = 16
_I8 = struct.Struct("<b").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
# What a corrupt buffer can still raise past FlatBuffer's own checks.
_CORRUPT = (FlatBufferError, IndexError, struct.error, ValueError, OverflowError)


def read_model(
    path: str | os.PathLike[str] | bytes, input_shapes: InputShapes | None = None
) -> Graph:
    """Parse a .tflite file (a path, or the file's bytes) into a :class:`Graph`.

    Every tensor gets the shape LiteRT resolves (:mod:`tflat.model.shapes`): graph inputs
    their signature with batch 1, or ``input_shapes`` (one shape per input in order, or a
    mapping from input name to shape) where given. Raises :class:`ModelFormatError` with a
    one-line reason for anything that is not a readable TFLite model, and its subclass
    :class:`~tflat.model.shapes.InputShapeError` for an input whose shape must be given.
    """
    if isinstance(path, bytes | bytearray):
        return _parse(bytes(path), "<bytes>", input_shapes)
    with _mapped(Path(path)) as buf:
        return _parse(buf, str(path), input_shapes)


def _parse(buf: bytes | mmap.mmap, name: str, input_shapes: InputShapes | None) -> Graph:
    if len(buf) < 8:
        raise ModelFormatError(f"{name}: not a .tflite model (only {len(buf)} bytes)")
    ident = buf[4:8]
    if ident != _IDENTIFIER:
        raise ModelFormatError(
            f"{name}: not a .tflite model (file identifier {ident!r}, expected {_IDENTIFIER!r})"
        )
    try:
        return _Reader(buf, name).graph(input_shapes)
    except ModelFormatError:
        raise
    except _CORRUPT as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"{name}: corrupt or truncated TFLite model ({reason})") from exc


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[bytes | mmap.mmap]:
    """The file mapped read-only: the parse touches only the pages it reads, never a large
    model's weights, and nothing of the file outlives the parse (all values are copied).
    What cannot be mapped (a pipe) is read whole."""
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a directory, not a .tflite file")
    try:
        with path.open("rb") as f:
            try:
                mapped: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # empty, or not a regular file
                mapped = f.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not mapped:
        raise ModelFormatError(f"{path}: empty file")
    if isinstance(mapped, bytes):
        yield mapped
        return
    with mapped:
        yield mapped


class _Slots:
    """Vtable slots of the fields the reader uses, looked up once in LiteRT's schema."""

    def __init__(self) -> None:
        s = slot_of
        self.model_version = s("Model", "Version")
        self.model_codes = s("Model", "OperatorCodes")
        self.model_subgraphs = s("Model", "Subgraphs")
        self.model_description = s("Model", "Description")
        self.model_buffers = s("Model", "Buffers")
        self.code_deprecated = s("OperatorCode", "DeprecatedBuiltinCode")
        self.code_custom = s("OperatorCode", "CustomCode")
        self.code_version = s("OperatorCode", "Version")
        self.code_builtin = s("OperatorCode", "BuiltinCode")
        self.sg_tensors = s("SubGraph", "Tensors")
        self.sg_inputs = s("SubGraph", "Inputs")
        self.sg_outputs = s("SubGraph", "Outputs")
        self.sg_operators = s("SubGraph", "Operators")
        self.sg_name = s("SubGraph", "Name")
        self.t_shape = s("Tensor", "Shape")
        self.t_type = s("Tensor", "Type")
        self.t_buffer = s("Tensor", "Buffer")
        self.t_name = s("Tensor", "Name")
        self.t_quant = s("Tensor", "Quantization")
        self.t_signature = s("Tensor", "ShapeSignature")
        self.tensor_fields = (
            self.t_signature, self.t_shape, self.t_type, self.t_buffer, self.t_name, self.t_quant
        )  # fmt: skip
        self.q_scale = s("QuantizationParameters", "Scale")
        self.q_zero_point = s("QuantizationParameters", "ZeroPoint")
        self.q_axis = s("QuantizationParameters", "QuantizedDimension")
        self.op_code = s("Operator", "OpcodeIndex")
        self.op_inputs = s("Operator", "Inputs")
        self.op_outputs = s("Operator", "Outputs")
        self.op_opt_type = s("Operator", "BuiltinOptionsType")
        self.op_opt = s("Operator", "BuiltinOptions")
        self.op_opt2_type = s("Operator", "BuiltinOptions2Type")
        self.op_opt2 = s("Operator", "BuiltinOptions2")
        self.op_custom = s("Operator", "CustomOptions")
        self.buf_data = s("Buffer", "Data")
        self.buf_offset = s("Buffer", "Offset")
        self.buf_size = s("Buffer", "Size")


_slots: _Slots | None = None


def _get_slots() -> _Slots:
    global _slots
    if _slots is None:
        _slots = _Slots()
    return _slots


class _Reader:
    def __init__(self, buf: bytes | mmap.mmap, name: str) -> None:
        self.fb = FlatBuffer(buf, budget=_BUDGET_PER_BYTE * len(buf) + 1024)
        self.name = name
        self.s = _get_slots()
        self.model = self.fb.root()
        self.buffers = self.fb.tables(self.model, self.s.model_buffers)
        self._constant: dict[int, bool] = {}
        self.dtypes = tensor_type_names()

    def corrupt(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.name}: corrupt TFLite model ({what})")

    def graph(self, input_shapes: InputShapes | None) -> Graph:
        fb, s = self.fb, self.s
        codes = self._op_codes()
        subgraph_tables = fb.tables(self.model, s.model_subgraphs)
        if not subgraph_tables:
            raise ModelFormatError(f"{self.name}: TFLite model has no subgraphs")
        reads = [self._raw_subgraph(i, t, codes) for i, t in enumerate(subgraph_tables)]
        resolutions = resolve([r.raw for r in reads], input_shapes, self.name)
        subgraphs = tuple(
            self._subgraph(i, read, res)
            for i, (read, res) in enumerate(zip(reads, resolutions, strict=True))
        )
        return Graph(
            path=self.name,
            size_bytes=fb.size,
            schema_version=fb.u32(self.model, s.model_version),
            description=fb.string(self.model, s.model_description),
            subgraphs=subgraphs,
        )

    def _op_codes(self) -> list[tuple[str, int]]:
        """(name, version) of each operator code entry."""
        fb, s = self.fb, self.s
        names = builtin_names()
        out = []
        for oc in fb.tables(self.model, s.model_codes):
            deprecated = fb.scalar(oc, s.code_deprecated, _I8, 1, 0)
            code = max(int(deprecated), fb.i32(oc, s.code_builtin))
            if code == _CUSTOM:
                name = "CUSTOM:" + (fb.string(oc, s.code_custom) or "?")
            else:
                name = names.get(code, f"BUILTIN_{code}")
            out.append((name, fb.i32(oc, s.code_version, 1)))
        return out

    def _buffer(self, index: int) -> int:
        """The Buffer table of a tensor's buffer index, or 0 for none. Index 0 is the schema's
        empty sentinel; an index past the end is read as no data (tflat only inspects)."""
        if 0 < index < len(self.buffers):
            return self.buffers[index]
        return 0

    def _is_constant(self, index: int) -> bool:
        known = self._constant.get(index)
        if known is not None:
            return known
        fb, s = self.fb, self.s
        table = self._buffer(index)
        constant = False
        if table:
            _, n = fb.vector(table, s.buf_data, 1, walk=False)
            # Data inline, or (models over 2 GB) stored after the flatbuffer at an offset.
            offset = fb.scalar(table, s.buf_offset, _U64, 8, 0)
            size = fb.scalar(table, s.buf_size, _U64, 8, 0)
            constant = n > 0 or (offset > 1 and size > 0)
        self._constant[index] = constant
        return constant

    def _small_values(self, index: int, dtype: str, numel: int) -> tuple[int, ...] | None:
        if dtype not in ("int32", "int64") or numel > _MAX_VALUES:
            return None
        if numel == 0:
            return ()
        table = self._buffer(index)
        if not table:
            return None
        start, n = self.fb.vector(table, self.s.buf_data, 1, walk=False)
        width = 4 if dtype == "int32" else 8
        count = min(n // width, numel)
        if count == 0:
            return None
        code = "i" if dtype == "int32" else "q"
        return tuple(struct.unpack_from(f"<{count}{code}", self.fb.buf, start))

    def _tensor(self, table: int, index: int) -> TensorInfo:
        fb, buf = self.fb, self.fb.buf
        sig, dims, kind, buffer, name, quant = fb.fields(table, self.s.tensor_fields)
        signature = fb.numbers_at(sig, "i", 4) if sig else None
        # The stored shape is where LiteRT starts (it has 1 where the signature has -1).
        shape = fb.numbers_at(dims, "i", 4) if dims else tuple(max(d, 1) for d in signature or ())
        if len(shape) > _MAX_RANK or len(signature or ()) > _MAX_RANK:
            raise self.corrupt(f"tensor {index} has rank {max(len(shape), len(signature or ()))}")
        if any(d < 0 for d in shape):
            raise self.corrupt(f"tensor {index} has shape {list(shape)}")
        numel = math.prod(shape)
        if numel > _MAX_ELEMENTS:
            raise self.corrupt(f"tensor {index} has {numel} elements")
        type_code = _I8(buf, kind)[0] if kind else 0
        dtype = self.dtypes.get(type_code, f"type{type_code}")
        buffer_index = _U32(buf, buffer)[0] if buffer else 0
        constant = self._is_constant(buffer_index)
        return TensorInfo(
            index=index,
            name=fb.string_at(name) if name else "",
            shape=tuple(shape),
            shape_signature=tuple(signature) if signature is not None else tuple(shape),
            dtype=dtype,
            is_constant=constant,
            quantization=self._quantization(fb.ref(quant)) if quant else None,
            values=self._small_values(buffer_index, dtype, numel) if constant else None,
        )

    def _quantization(self, q: int) -> Quantization | None:
        fb, s = self.fb, self.s
        scale = fb.numbers(q, s.q_scale, "f", 4)
        if not scale:
            return None
        return Quantization(
            scale=scale,
            zero_point=fb.numbers(q, s.q_zero_point, "q", 8),
            axis=fb.i32(q, s.q_axis),
        )

    def _custom_options(self, op_type: str, op: int) -> dict[str, Any]:
        """What tflat understands of a custom op's opaque options."""
        start, n = self.fb.vector(op, self.s.op_custom, 1, walk=False)
        out: dict[str, Any] = {"custom_options_bytes": n}
        if op_type == cost.TRANSPOSE_CONV_CUSTOM and n == 12:
            # MediaPipe's op stores TfLiteTransposeConvParams: padding enum, stride w, stride h.
            pad, stride_w, stride_h = struct.unpack_from("<3i", self.fb.buf, start)
            padding = {1: "SAME", 2: "VALID"}.get(pad)
            if padding is not None:
                out["padding"] = padding
            out.update(stride_w=stride_w, stride_h=stride_h)
        return out

    def _raw_subgraph(self, si: int, sg: int, codes: list[tuple[str, int]]) -> _RawRead:
        """A subgraph's ops and tensors as the file stores them (shapes not yet resolved)."""
        fb, s = self.fb, self.s
        tensor_start, ntensors = fb.vector(sg, s.sg_tensors, 4)
        cache: dict[int, TensorInfo] = {}

        def tensor(i: int) -> TensorInfo:
            info = cache.get(i)
            if info is None:
                if not 0 <= i < ntensors:
                    raise self.corrupt(f"subgraph {si} has no tensor {i}")
                fb.charge(_TENSOR_COST)
                info = cache[i] = self._tensor(fb.ref(tensor_start + 4 * i), i)
            return info

        def indices(table: int, slot: int) -> tuple[int, ...]:
            found = tuple(int(i) for i in fb.numbers(table, slot, "i", 4))
            for i in found:
                if i >= 0:
                    tensor(i)  # checked (and charged) while reading, as LiteRT would
            return found

        option_sets: tuple[tuple[int, int, dict[int, type]], ...] = (
            (s.op_opt_type, s.op_opt, options_classes("BuiltinOptions")),
            (s.op_opt2_type, s.op_opt2, options_classes("BuiltinOptions2")),
        )
        ops = []
        for oi, o in enumerate(fb.tables(sg, s.sg_operators)):
            fb.charge(_OP_COST)
            code_index = fb.u32(o, s.op_code)
            if code_index >= len(codes):
                raise self.corrupt(f"op {oi} has opcode index {code_index}")
            options: dict[str, Any] = {}
            for type_slot, table_slot, classes in option_sets:
                tag = fb.u8(o, type_slot)
                cls = classes.get(tag) if tag else None
                if cls is not None:
                    table = fb.table(o, table_slot)
                    if table:
                        options.update(read_options_fast(fb, table, cls))
            op_type, version = codes[code_index]
            if op_type.startswith("CUSTOM:"):
                options.update(self._custom_options(op_type, o))
            # -1 marks an omitted optional input (e.g. a conv without bias); positions matter
            # to shape rules, so the raw op keeps them.
            ins, outs = indices(o, s.op_inputs), indices(o, s.op_outputs)
            ops.append(RawOp(oi, op_type, ins, tuple(i for i in outs if i >= 0), options, version))
        raw = RawSubgraph(tuple(ops), indices(sg, s.sg_inputs), tensor)
        return _RawRead(raw, fb.string(sg, s.sg_name), indices(sg, s.sg_outputs), ntensors)

    def _subgraph(self, si: int, read: _RawRead, res: Resolution) -> Subgraph:
        """The subgraph's typed ops, every tensor with its resolved shape."""
        stored = read.raw.tensor
        cache: dict[int, TensorInfo] = {}

        def tensor(i: int) -> TensorInfo:
            info = cache.get(i)
            if info is None:
                t = stored(i)
                shape = res.shapes.get(i, t.shape)
                values = t.values if t.is_constant else res.values.get(i)
                if shape != t.shape or values is not t.values:
                    t = replace(t, shape=shape, values=values)
                info = cache[i] = t
            return info

        def tensors(found: tuple[int, ...]) -> tuple[TensorInfo, ...]:
            return tuple(tensor(i) for i in found if i >= 0)

        make_op: Callable[..., Any] = cost.make_op
        ops = tuple(
            make_op(
                index=op.index,
                subgraph=si,
                op_type=op.type,
                version=op.version,
                inputs=tensors(op.inputs),
                outputs=tensors(op.outputs),
                options=op.options,
                unresolved=res.unresolved.get(op.index, ""),
            )
            for op in read.raw.ops
        )
        return Subgraph(
            index=si,
            name=read.name,
            ops=ops,
            inputs=tensors(read.raw.inputs),
            outputs=tensors(read.outputs),
            num_tensors=read.num_tensors,
        )


@dataclass(frozen=True)
class _RawRead:
    raw: RawSubgraph
    name: str
    outputs: tuple[int, ...]
    num_tensors: int
