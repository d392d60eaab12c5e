"""Access to LiteRT's generated flatbuffer schema, and name tables derived from it.

tflat reads and writes .tflite files with the schema module LiteRT itself ships
(``ai_edge_litert.schema_py_generated``): no TensorFlow, and the schema follows the runtime
that runs the models. The module is imported on first use, never at tflat's import.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType
from typing import Any


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


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


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
