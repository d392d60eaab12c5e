"""Read a .tflite flatbuffer into a :class:`~tflat.model.ops.Graph` of typed ops.

The reader trusts nothing in the file: every vector length is checked against the file size
before it is walked, so a hostile or corrupt file can neither loop for long nor make the reader
allocate without limit, and every failure becomes one :class:`ModelFormatError`.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from pathlib import Path
from typing import Any

from tflat.errors import ModelFormatError
from tflat.model import cost
from tflat.model.ops import Graph, Quantization, Subgraph, TensorInfo
from tflat.model.schema import (
    builtin_names,
    options_classes,
    read_options,
    schema,
    tensor_type_names,
)

log = logging.getLogger(__name__)

_IDENTIFIER = b"TFL3"
_CUSTOM = 32
#: Small integer constants (axes, paddings, new shapes) are read into ``TensorInfo.values``.
_MAX_VALUES = 64
# Errors the generated accessors raise on a corrupt buffer.
_CORRUPT = (
    IndexError,
    struct.error,
    ValueError,
    TypeError,
    OverflowError,
    UnicodeDecodeError,
    AttributeError,
    KeyError,
    RecursionError,
)


def read_model(path: str | os.PathLike[str] | bytes) -> Graph:
    """Parse a .tflite file (a path, or the file's bytes) into a :class:`Graph`.

    Raises :class:`ModelFormatError` with a one-line reason for anything that is not a
    readable TFLite model.
    """
    if isinstance(path, bytes | bytearray):
        buf, name = bytes(path), "<bytes>"
    else:
        buf, name = _load(Path(path)), str(path)
    if len(buf) < 8:
        raise ModelFormatError(f"{name}: not a TFLite model (only {len(buf)} bytes)")
    ident = buf[4:8]
    if ident != _IDENTIFIER:
        raise ModelFormatError(
            f"{name}: not a TFLite model (file identifier {ident!r}, expected {_IDENTIFIER!r})"
        )
    try:
        return _Reader(buf, name).graph()
    except ModelFormatError:
        raise
    except _CORRUPT as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFormatError(f"{name}: corrupt or truncated TFLite model ({reason})") from exc


def _load(path: Path) -> bytes:
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a directory, not a .tflite file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise ModelFormatError(f"{path}: empty file")
    return data


class _Reader:
    def __init__(self, buf: bytes, name: str) -> None:
        self.buf = buf
        self.name = name
        self.model = schema().Model.GetRootAs(buf, 0)
        self._buffer_sizes: dict[int, int] = {}

    def count(self, n: int, what: str, elem: int = 4) -> int:
        """A vector length, refused if the file is too small to hold it."""
        if n < 0 or n * elem > len(self.buf):
            raise ModelFormatError(f"{self.name}: corrupt TFLite model ({what} count {n})")
        return n

    def graph(self) -> Graph:
        m = self.model
        codes = self._op_codes()
        nbuf = self.count(m.BuffersLength(), "buffers")
        nsub = self.count(m.SubgraphsLength(), "subgraphs")
        if nsub == 0:
            raise ModelFormatError(f"{self.name}: TFLite model has no subgraphs")
        subgraphs = tuple(self._subgraph(i, codes, nbuf) for i in range(nsub))
        desc = m.Description()
        return Graph(
            path=self.name,
            size_bytes=len(self.buf),
            schema_version=int(m.Version()),
            description=desc.decode("utf-8", "replace") if desc else "",
            subgraphs=subgraphs,
        )

    def _op_codes(self) -> list[tuple[str, int]]:
        """(name, version) of each operator code entry."""
        names = builtin_names()
        out = []
        m = self.model
        for i in range(self.count(m.OperatorCodesLength(), "operator codes")):
            oc = m.OperatorCodes(i)
            code = max(int(oc.DeprecatedBuiltinCode()), int(oc.BuiltinCode()))
            if code == _CUSTOM:
                custom = oc.CustomCode()
                name = "CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?")
            else:
                name = names.get(code, f"BUILTIN_{code}")
            out.append((name, int(oc.Version())))
        return out

    def _is_constant(self, buffer_index: int, nbuf: int) -> bool:
        if buffer_index <= 0 or buffer_index >= nbuf:
            return False
        size = self._buffer_sizes.get(buffer_index)
        if size is None:
            b = self.model.Buffers(buffer_index)
            # Data inline, or (for models over 2 GB) stored after the flatbuffer.
            size = int(b.DataLength()) or (int(b.Size()) if int(b.Offset()) > 1 else 0)
            self._buffer_sizes[buffer_index] = size
        return size > 0

    def _small_values(self, buffer_index: int, dtype: str, numel: int) -> tuple[int, ...] | None:
        if dtype not in ("int32", "int64") or numel > _MAX_VALUES:
            return None
        data = self.model.Buffers(buffer_index).DataAsNumpy()
        if isinstance(data, int) or len(data) > 8 * _MAX_VALUES:
            return None
        fmt = "<%di" % (len(data) // 4) if dtype == "int32" else "<%dq" % (len(data) // 8)
        return tuple(int(v) for v in struct.unpack(fmt, data.tobytes()))

    def _tensor(self, sg: Any, index: int, ntensors: int, nbuf: int) -> TensorInfo:
        if not 0 <= index < ntensors:
            raise ModelFormatError(f"{self.name}: corrupt TFLite model (tensor index {index})")
        t = sg.Tensors(index)
        nsig = self.count(t.ShapeSignatureLength(), "shape")
        if nsig:
            shape = tuple(int(d) for d in t.ShapeSignatureAsNumpy().tolist())
        else:
            nshape = self.count(t.ShapeLength(), "shape")
            shape = tuple(int(d) for d in t.ShapeAsNumpy().tolist()) if nshape else ()
        dtype = tensor_type_names().get(int(t.Type()), f"type{int(t.Type())}")
        raw_name = t.Name()
        buffer_index = int(t.Buffer())
        constant = self._is_constant(buffer_index, nbuf)
        numel = math.prod(max(d, 1) for d in shape)
        return TensorInfo(
            index=index,
            name=raw_name.decode("utf-8", "replace") if raw_name else "",
            shape=shape,
            dtype=dtype,
            is_constant=constant,
            quantization=self._quantization(t),
            values=self._small_values(buffer_index, dtype, numel) if constant else None,
        )

    def _quantization(self, t: Any) -> Quantization | None:
        q = t.Quantization()
        if q is None or self.count(q.ScaleLength(), "scale") == 0:
            return None
        nzp = self.count(q.ZeroPointLength(), "zero point", 8)
        return Quantization(
            scale=tuple(float(v) for v in q.ScaleAsNumpy().tolist()),
            zero_point=tuple(int(v) for v in q.ZeroPointAsNumpy().tolist()) if nzp else (),
            axis=int(q.QuantizedDimension()),
        )

    def _subgraph(self, si: int, codes: list[str], nbuf: int) -> Subgraph:
        sg = self.model.Subgraphs(si)
        ntensors = self.count(sg.TensorsLength(), "tensors")
        cache: dict[int, TensorInfo] = {}

        def tensor(i: int) -> TensorInfo:
            info = cache.get(i)
            if info is None:
                info = cache[i] = self._tensor(sg, i, ntensors, nbuf)
            return info

        def tensors(indices: Any, n: int) -> tuple[TensorInfo, ...]:
            # -1 marks an omitted optional input (e.g. a conv without bias).
            return tuple(tensor(int(i)) for i in indices.tolist()[:n] if int(i) >= 0) if n else ()

        ops = []
        classes1, classes2 = options_classes("BuiltinOptions"), options_classes("BuiltinOptions2")
        for oi in range(self.count(sg.OperatorsLength(), "operators")):
            o = sg.Operators(oi)
            code_index = int(o.OpcodeIndex())
            if not 0 <= code_index < len(codes):
                raise ModelFormatError(
                    f"{self.name}: corrupt TFLite model (op {oi} has opcode index {code_index})"
                )
            n_in = self.count(o.InputsLength(), "op inputs")
            n_out = self.count(o.OutputsLength(), "op outputs")
            options: dict[str, Any] = {}
            for tag, table, classes in (
                (o.BuiltinOptionsType(), o.BuiltinOptions(), classes1),
                (o.BuiltinOptions2Type(), o.BuiltinOptions2(), classes2),
            ):
                cls = classes.get(int(tag))
                if cls is not None and table is not None:
                    options.update(read_options(table, cls))
            op_type, version = codes[code_index]
            ops.append(
                cost.make_op(
                    index=oi,
                    subgraph=si,
                    op_type=op_type,
                    version=version,
                    inputs=tensors(o.InputsAsNumpy(), n_in),
                    outputs=tensors(o.OutputsAsNumpy(), n_out),
                    options=options,
                )
            )
        n_sin = self.count(sg.InputsLength(), "subgraph inputs")
        n_sout = self.count(sg.OutputsLength(), "subgraph outputs")
        raw_name = sg.Name()
        return Subgraph(
            index=si,
            name=raw_name.decode("utf-8", "replace") if raw_name else "",
            ops=tuple(ops),
            inputs=tensors(sg.InputsAsNumpy(), n_sin),
            outputs=tensors(sg.OutputsAsNumpy(), n_sout),
            num_tensors=ntensors,
        )
