"""Access to LiteRT's generated flatbuffer schema, and name tables derived from it.

tflat reads and writes .tflite files with the schema module LiteRT itself ships
(``ai_edge_litert.schema_py_generated``): no TensorFlow, and the schema follows the runtime
that runs the models. The module is imported on first use, never at tflat's import.

Reading goes through :class:`FlatBuffer` below rather than the generated accessors: those
cost several Python calls per scalar (a 300-op model took ~60 ms), and they trust every
offset. The layout of each builtin-options table is not hand-copied: :func:`option_layout`
learns it once per class by running the generated accessors against a probe, so it follows
whatever schema LiteRT ships.
"""

from __future__ import annotations

import functools
import mmap
import re
import struct
from dataclasses import dataclass
from types import ModuleType
from typing import Any


class FlatBufferError(Exception):
    """An offset or length that points outside the buffer, or a budget exceeded."""


@functools.cache
def schema() -> ModuleType:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


@functools.cache
def builtin_names() -> dict[int, str]:
    """BuiltinOperator code -> schema name, e.g. 3 -> ``CONV_2D``."""
    return _enum_names(schema().BuiltinOperator)


@functools.cache
def builtin_codes() -> dict[str, int]:
    return {name: code for code, name in builtin_names().items()}


@functools.cache
def tensor_type_names() -> dict[int, str]:
    """TensorType code -> lower-case dtype name, e.g. 0 -> ``float32``."""
    return {v: k.lower() for v, k in _enum_names(schema().TensorType).items()}


@functools.cache
def tensor_type_codes() -> dict[str, int]:
    return {name: code for code, name in tensor_type_names().items()}


@functools.cache
def enum_fields() -> dict[str, dict[int, str]]:
    """Option fields whose integer values are better shown by enum name."""
    s = schema()
    return {
        "padding": _enum_names(s.Padding),
        "fused_activation_function": _enum_names(s.ActivationFunctionType),
        "weights_format": _enum_names(s.FullyConnectedOptionsWeightsFormat),
        "mode": _enum_names(s.MirrorPadMode),
    }


@functools.cache
def options_classes(union: str) -> dict[int, type]:
    """Union tag -> options table class for ``BuiltinOptions`` or ``BuiltinOptions2``."""
    s = schema()
    out: dict[int, type] = {}
    for tag, name in _enum_names(getattr(s, union)).items():
        cls = getattr(s, name, None)
        if tag != 0 and isinstance(cls, type):
            out[tag] = cls
    return out


# "StrideH" -> stride_h, "DilationHFactor" -> dilation_h_factor (as in schema.fbs).
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


@functools.cache
def option_fields(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """The readable fields of an options table: (snake name, accessor, is_vector)."""
    names = {n for n in dir(cls) if n[:1].isupper()}
    skip = {"Init"}
    fields: list[tuple[str, str, bool]] = []
    for n in sorted(names):
        if n in skip or n.startswith("GetRootAs") or n.endswith("BufferHasIdentifier"):
            continue
        if n.endswith(("AsNumpy", "IsNone", "Length")):
            continue
        is_vector = f"{n}AsNumpy" in names and f"{n}Length" in names
        if f"{n}Length" in names and not is_vector:
            continue  # a vector of tables: nothing cost-relevant in any builtin's options
        fields.append((snake(n), n, is_vector))
    return tuple(fields)


def read_options(table: Any, cls: type) -> dict[str, Any]:
    """Every scalar and numeric-vector field of an options table, enums by name."""
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    enums = enum_fields()
    out: dict[str, Any] = {}
    for key, accessor, is_vector in option_fields(cls):
        if is_vector:
            arr = getattr(obj, f"{accessor}AsNumpy")()
            out[key] = [] if isinstance(arr, int) else [int(v) for v in arr.tolist()]
            continue
        value = getattr(obj, accessor)()
        if isinstance(value, bool | int | float):
            out[key] = enums[key].get(int(value), int(value)) if key in enums else value
        elif isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
    return out


# --- Fast, bounds-checked flatbuffer access -------------------------------------------------

_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from


class FlatBuffer:
    """Read tables, vectors and strings of one flatbuffer, checking every offset.

    A table is addressed by its position. ``budget`` caps the work the caller may do (vector
    elements walked, plus what :meth:`charge` adds): a real file stores each element once,
    so a budget proportional to the file size is never reached by a real model, while a
    hostile file whose vectors or tables all alias one another cannot make the reader loop
    quadratically or build objects out of proportion to its size.
    """

    __slots__ = ("_vt_cache", "budget", "buf", "size")

    def __init__(self, buf: bytes | mmap.mmap, budget: int) -> None:
        self.buf = buf
        self.size = len(buf)
        self.budget = budget
        self._vt_cache: dict[int, tuple[int, ...]] = {}

    def root(self) -> int:
        return self.ref(0)

    def ref(self, at: int) -> int:
        """Follow the uoffset stored at ``at``."""
        if at < 0 or at + 4 > self.size:
            raise FlatBufferError(f"offset at {at} outside the file")
        target: int = at + _U32(self.buf, at)[0]
        if target + 4 > self.size:
            raise FlatBufferError(f"offset at {at} points outside the file")
        return target

    def _vtable(self, table: int) -> tuple[int, ...]:
        """The field offsets of a table (0 for an absent field); vtables are often shared."""
        if table < 0 or table + 4 > self.size:
            raise FlatBufferError(f"table at {table} outside the file")
        vt = table - _I32(self.buf, table)[0]
        cached = self._vt_cache.get(vt)
        if cached is not None:
            return cached
        if vt < 0 or vt + 4 > self.size:
            raise FlatBufferError(f"vtable of table at {table} outside the file")
        vt_size = _U16(self.buf, vt)[0]
        if vt_size < 4 or vt + vt_size > self.size:
            raise FlatBufferError(f"vtable of table at {table} has a bad size")
        offsets: tuple[int, ...] = struct.unpack_from(f"<{(vt_size - 4) // 2}H", self.buf, vt + 4)
        self._vt_cache[vt] = offsets
        return offsets

    def field(self, table: int, slot: int, width: int = 4) -> int:
        """Position of field ``slot`` (0-based) of a table, or 0 when the field is absent."""
        offsets = self._vtable(table)
        if slot >= len(offsets) or not offsets[slot]:
            return 0
        pos = table + offsets[slot]
        if pos + width > self.size:
            raise FlatBufferError(f"field {slot} of table at {table} outside the file")
        return pos

    def scalar(self, table: int, slot: int, unpack: Any, width: int, default: Any) -> Any:
        pos = self.field(table, slot, width)
        return unpack(self.buf, pos)[0] if pos else default

    def u8(self, table: int, slot: int, default: int = 0) -> int:
        pos = self.field(table, slot, 1)
        return int(_U8(self.buf, pos)[0]) if pos else default

    def i32(self, table: int, slot: int, default: int = 0) -> int:
        pos = self.field(table, slot, 4)
        return int(_I32(self.buf, pos)[0]) if pos else default

    def u32(self, table: int, slot: int, default: int = 0) -> int:
        pos = self.field(table, slot, 4)
        return int(_U32(self.buf, pos)[0]) if pos else default

    def table(self, table: int, slot: int) -> int:
        """Position of a sub-table, or 0 when absent."""
        pos = self.field(table, slot)
        return self.ref(pos) if pos else 0

    def fields(self, table: int, slots: tuple[int, ...]) -> list[int]:
        """Positions of several fields of one table (0 where absent), one vtable lookup.

        A position is only known to be inside the file; reading past its end raises
        ``struct.error``, which the reader reports as a corrupt model.
        """
        offsets = self._vtable(table)
        n = len(offsets)
        out = []
        for slot in slots:
            off = offsets[slot] if slot < n else 0
            if off and table + off >= self.size:
                raise FlatBufferError(f"field {slot} of table at {table} outside the file")
            out.append(table + off if off else 0)
        return out

    def vector_at(self, pos: int, elem_bytes: int, walk: bool = True) -> tuple[int, int]:
        """(first element, length) of the vector whose offset is stored at ``pos``.

        ``walk=False`` for a vector whose length alone is wanted (weight data): it is still
        checked against the file, but not charged to the budget.
        """
        start = self.ref(pos)
        n: int = _U32(self.buf, start)[0]
        if start + 4 + n * elem_bytes > self.size:
            raise FlatBufferError(f"vector of {n} elements at {start} runs past the file")
        if walk:
            self.budget -= n
            if self.budget < 0:
                raise FlatBufferError("vectors reference more elements than the file can hold")
        return start + 4, n

    def numbers_at(self, pos: int, code: str, elem_bytes: int) -> tuple[Any, ...]:
        start, n = self.vector_at(pos, elem_bytes)
        return struct.unpack_from(f"<{n}{code}", self.buf, start) if n else ()

    def string_at(self, pos: int) -> str:
        start, n = self.vector_at(pos, 1)
        return self.buf[start : start + n].decode("utf-8", "replace") if n else ""

    def vector(self, table: int, slot: int, elem_bytes: int, walk: bool = True) -> tuple[int, int]:
        """(first element, length) of a vector field; (0, 0) when absent."""
        pos = self.field(table, slot)
        return self.vector_at(pos, elem_bytes, walk) if pos else (0, 0)

    def charge(self, units: int) -> None:
        """Charge the budget for an object built from the file (an op, a tensor)."""
        self.budget -= units
        if self.budget < 0:
            raise FlatBufferError("the model describes more than the file can hold")

    def tables(self, table: int, slot: int) -> list[int]:
        """Positions of the tables of a vector-of-tables field."""
        start, n = self.vector(table, slot, 4)
        if not n:
            return []
        rel = struct.unpack_from(f"<{n}I", self.buf, start)
        out = [start + 4 * i + r for i, r in enumerate(rel)]
        if max(out) + 4 > self.size:
            raise FlatBufferError(f"a table of the vector at {start} is outside the file")
        return out

    def numbers(self, table: int, slot: int, code: str, elem_bytes: int) -> tuple[Any, ...]:
        """A numeric vector field (struct code ``i``, ``q``, ``f``, ``B``, ...) as a tuple."""
        pos = self.field(table, slot)
        return self.numbers_at(pos, code, elem_bytes) if pos else ()

    def string(self, table: int, slot: int) -> str:
        pos = self.field(table, slot)
        return self.string_at(pos) if pos else ""


@dataclass(frozen=True)
class OptionField:
    """Where one field of an options table lives and how to read it."""

    key: str
    slot: int
    kind: str  # "scalar", "vector" or "string"
    code: str  # struct code of the scalar or vector element
    width: int
    default: Any
    is_bool: bool


class _Probe:
    """Stands in for a flatbuffers ``Table`` to record what a generated accessor reads."""

    Pos = 0
    Bytes = b""

    def __init__(self, present: bool) -> None:
        self.present = present
        self.slot = -1
        self.kind = ""
        self.flags: Any = None

    def Offset(self, vtable_offset: int) -> int:
        self.slot = (vtable_offset - 4) // 2
        return 4 if self.present else 0

    def Get(self, flags: Any, off: int) -> int:
        self.kind, self.flags = "scalar", flags
        return 0

    def GetVectorAsNumpy(self, flags: Any, off: int) -> Any:
        import numpy as np

        self.kind, self.flags = "vector", flags
        return np.zeros(0)

    def String(self, off: int) -> bytes:
        self.kind = "string"
        return b""


@functools.cache
def slot_of(cls_name: str, accessor: str) -> int:
    """The vtable slot a generated accessor reads (``Model.Subgraphs`` -> 2)."""
    cls = getattr(schema(), cls_name)
    obj = cls()
    probe = _Probe(False)
    obj._tab = probe
    method = getattr(obj, accessor)
    try:
        method()
    except TypeError:  # element accessors take an index
        method(0)
    if probe.slot < 0:
        raise RuntimeError(f"cannot locate {cls_name}.{accessor} in LiteRT's schema")
    return probe.slot


@functools.cache
def option_layout(cls: type) -> tuple[OptionField, ...]:
    """The readable fields of a generated options class, learned by probing its accessors."""
    out: list[OptionField] = []
    for key, accessor, is_vector in option_fields(cls):
        name = f"{accessor}AsNumpy" if is_vector else accessor
        obj = cls()
        default_probe, probe = _Probe(False), _Probe(True)
        try:
            obj._tab = default_probe
            default = getattr(obj, name)()
            obj._tab = probe
            value = getattr(obj, name)()
        except Exception:  # an accessor the probe cannot model is skipped, not fatal
            continue
        if probe.slot < 0 or probe.kind not in ("scalar", "vector", "string"):
            continue
        code, width = "", 0
        if probe.flags is not None:
            code = probe.flags.packer_type.format.lstrip("<")
            width = int(probe.flags.bytewidth)
        if probe.kind == "vector":
            default = ()
        elif probe.kind == "string":
            default = ""
        out.append(
            OptionField(key, probe.slot, probe.kind, code, width, default, isinstance(value, bool))
        )
    return tuple(out)


def read_options_fast(fb: FlatBuffer, table: int, cls: type) -> dict[str, Any]:
    """Every scalar, numeric-vector and string field of an options table, enums by name."""
    enums = enum_fields()
    out: dict[str, Any] = {}
    for f in option_layout(cls):
        if f.kind == "scalar":
            pos = fb.field(table, f.slot, f.width)
            value: Any = struct.unpack_from("<" + f.code, fb.buf, pos)[0] if pos else f.default
            if f.is_bool:
                value = bool(value)
            elif f.key in enums:
                value = enums[f.key].get(int(value), int(value))
        elif f.kind == "vector":
            value = [int(v) for v in fb.numbers(table, f.slot, f.code, f.width)]
        else:
            value = fb.string(table, f.slot)
        out[f.key] = value
    return out
