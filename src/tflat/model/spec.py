"""Op specs: what one benchmark model must contain, as plain data with a stable hash.

A spec names an op kind (the schema name, ``CONV_2D``) and a flat dict of parameters. Specs
are normalized on creation (defaults filled in, names and types checked), so two specs that
describe the same model have the same ``spec_hash`` however they were written. Specs are also
read back *from* models (:func:`spec_from_op`): that is how a written model is checked
against its spec, and how real models seed the ``prior`` plan. Shapes are NHWC, batch 1.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tflat.errors import SpecError
from tflat.model.ops import Graph, Op

_REQUIRED = object()

_ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")
_PADDINGS = ("same", "valid")
_DTYPES = ("float32", "float16", "int8")
_BROADCASTS = ("none", "channel", "scalar")
_IMAGE = {"input_h": _REQUIRED, "input_w": _REQUIRED, "cin": _REQUIRED}
_WINDOW = {"stride": 1, "padding": "same"}

#: Every parameter of each op kind, with its default (or required).
KIND_PARAMS: dict[str, dict[str, Any]] = {
    "CONV_2D": {
        **_IMAGE, "cout": _REQUIRED, "kernel_h": _REQUIRED, "kernel_w": _REQUIRED, **_WINDOW,
        "dilation": 1, "groups": 1, "activation": "none", "dtype": "float32",
    },
    "DEPTHWISE_CONV_2D": {
        **_IMAGE, "depth_multiplier": 1, "kernel_h": _REQUIRED, "kernel_w": _REQUIRED,
        **_WINDOW, "dilation": 1, "activation": "none", "dtype": "float32",
    },
    "TRANSPOSE_CONV": {
        **_IMAGE, "cout": _REQUIRED, "kernel_h": _REQUIRED, "kernel_w": _REQUIRED, **_WINDOW,
        "activation": "none", "bias": True, "dtype": "float32",
    },
    "FULLY_CONNECTED": {
        "batch": 1, "cin": _REQUIRED, "cout": _REQUIRED, "activation": "none", "bias": True,
        "dtype": "float32",
    },
    "MAX_POOL_2D": {
        **_IMAGE, "kernel_h": _REQUIRED, "kernel_w": _REQUIRED, **_WINDOW,
        "activation": "none", "dtype": "float32",
    },
    "AVERAGE_POOL_2D": {
        **_IMAGE, "kernel_h": _REQUIRED, "kernel_w": _REQUIRED, **_WINDOW,
        "activation": "none", "dtype": "float32",
    },
    "MEAN": {**_IMAGE, "keep_dims": True, "dtype": "float32"},
    "CONCATENATION": {
        "input_h": _REQUIRED, "input_w": _REQUIRED, "cins": _REQUIRED, "activation": "none",
        "dtype": "float32",
    },
    "ADD": {**_IMAGE, "broadcast": "none", "activation": "none", "dtype": "float32"},
    "MUL": {**_IMAGE, "broadcast": "none", "activation": "none", "dtype": "float32"},
    "RELU": {**_IMAGE, "dtype": "float32"},
    "RELU6": {**_IMAGE, "dtype": "float32"},
    "HARD_SWISH": {**_IMAGE, "dtype": "float32"},
    "LOGISTIC": {**_IMAGE, "dtype": "float32"},
    "TANH": {**_IMAGE, "dtype": "float32"},
    "PAD": {
        **_IMAGE, "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0,
        "dtype": "float32",
    },
    "RESIZE_BILINEAR": {
        **_IMAGE, "output_h": _REQUIRED, "output_w": _REQUIRED, "align_corners": False,
        "half_pixel_centers": False, "dtype": "float32",
    },
    "SOFTMAX": {"batch": 1, "cin": _REQUIRED, "dtype": "float32"},
    "RESHAPE": {**_IMAGE, "shape": None, "dtype": "float32"},
}  # fmt: skip

# CONV_2D and DEPTHWISE_CONV_2D always have a bias: LiteRT's kernels refuse them without one.
#: Kinds with constant weights (the only ones where ``dtype = "float16"`` means something).
WEIGHTED_KINDS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"})
_STRINGS = {
    "padding": _PADDINGS,
    "activation": _ACTIVATIONS,
    "dtype": _DTYPES,
    "broadcast": _BROADCASTS,
}
_BOOLS = {"bias", "keep_dims", "align_corners", "half_pixel_centers"}
_LISTS = {"cins", "shape"}
_NON_NEGATIVE = {"pad_top", "pad_bottom", "pad_left", "pad_right"}


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of a convolution or pool along one axis (TFLite's rule)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def transpose_conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    return size * stride if padding == "same" else (size - 1) * stride + kernel


@dataclass(frozen=True)
class OpSpec:
    """One op to benchmark: ``kind`` (schema op name) and its normalized ``params``.

    ``OpSpec("CONV_2D", {...})`` fills defaults and checks every value; an invalid spec raises
    :class:`SpecError` naming it. ``spec_hash`` is the first 16 hex digits of the sha256 of
    the canonical JSON of kind and params.
    """

    kind: str
    params: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", str(self.kind).upper())
        object.__setattr__(self, "params", _normalize(self.kind, self.params))
        _validate(self.kind, self.params)

    def __hash__(self) -> int:
        return hash(self.spec_hash)

    @property
    def spec_hash(self) -> str:
        text = json.dumps(
            {"kind": self.kind, "params": dict(self.params)}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def label(self) -> str:
        """A short human name for messages: kind, hash and the main shape."""
        p = self.params
        shape = "x".join(str(p[k]) for k in ("input_h", "input_w", "cin") if k in p)
        return f"{self.kind}[{self.spec_hash}]{' ' + shape if shape else ''}"

    @property
    def weight_count(self) -> int:
        """Number of constant weight elements the model will hold (biases left out)."""
        p = self.params
        if self.kind == "CONV_2D":
            return int(p["kernel_h"] * p["kernel_w"] * (p["cin"] // p["groups"]) * p["cout"])
        if self.kind == "DEPTHWISE_CONV_2D":
            return int(p["kernel_h"] * p["kernel_w"] * p["cin"] * p["depth_multiplier"])
        if self.kind == "TRANSPOSE_CONV":
            return int(p["kernel_h"] * p["kernel_w"] * p["cin"] * p["cout"])
        if self.kind == "FULLY_CONNECTED":
            return int(p["cin"] * p["cout"])
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec_hash": self.spec_hash, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpSpec:
        if "kind" not in data:
            raise SpecError(f"op spec without 'kind': {dict(data)}")
        return cls(str(data["kind"]), dict(data.get("params", {})))


def _normalize(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    table = KIND_PARAMS.get(kind)
    if table is None:
        raise SpecError(f"unknown op kind {kind!r}; known: {', '.join(sorted(KIND_PARAMS))}")
    given = dict(raw)
    if "kernel" in given and "kernel_h" in table:  # a square kernel, as grids write it
        k = given.pop("kernel")
        given.setdefault("kernel_h", k)
        given.setdefault("kernel_w", k)
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise SpecError(f"{kind}: unknown parameter(s) {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for key, default in table.items():
        value = given.get(key, default)
        if value is _REQUIRED:
            raise SpecError(f"{kind}: missing parameter {key!r} in {given}")
        out[key] = _coerce(kind, key, value)
    if kind == "RESHAPE" and out["shape"] is None:
        out["shape"] = [1, out["input_h"] * out["input_w"] * out["cin"]]
    return out


def _int(kind: str, key: str, value: Any) -> int:
    if isinstance(value, float) and not math.isfinite(value):  # int() of them raises
        raise SpecError(f"{kind}: parameter {key}={value!r} is not an integer")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise SpecError(f"{kind}: parameter {key}={value!r} is not an integer")
    return int(value)


def _coerce(kind: str, key: str, value: Any) -> Any:
    if key in _STRINGS:
        text = str(value).lower()
        if text not in _STRINGS[key]:
            raise SpecError(f"{kind}: {key}={value!r}, expected one of {', '.join(_STRINGS[key])}")
        return text
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise SpecError(f"{kind}: parameter {key}={value!r} is not true/false")
        return value
    if key in _LISTS:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise SpecError(f"{kind}: parameter {key}={value!r} is not a list")
        return [_int(kind, key, v) for v in value]
    return _int(kind, key, value)


def _validate(kind: str, p: Mapping[str, Any]) -> None:
    name = f"{kind} {dict(p)}"
    for key, value in p.items():
        values = value if isinstance(value, list) else [value]
        floor = 0 if key in _NON_NEGATIVE else 1
        if key in _BOOLS or key in _STRINGS:
            continue
        if any(v < floor for v in values):
            raise SpecError(f"invalid spec {name}: {key} must be >= {floor}")
    if p.get("dtype") == "float16" and kind not in WEIGHTED_KINDS:
        raise SpecError(f"invalid spec {name}: dtype float16 (fp16 weights) needs a weighted op")
    if "kernel_h" in p:
        for axis in ("h", "w"):
            size, k = p[f"input_{axis}"], p[f"kernel_{axis}"]
            if kind == "TRANSPOSE_CONV":
                out = transpose_conv_output_size(size, k, p["stride"], p["padding"])
            else:
                out = conv_output_size(size, k, p["stride"], p.get("dilation", 1), p["padding"])
                effective = (k - 1) * p.get("dilation", 1) + 1
                if p["padding"] == "valid" and effective > size:
                    raise SpecError(
                        f"invalid spec {name}: kernel {effective} (dilated) larger than input "
                        f"{axis} {size} with valid padding"
                    )
            if out <= 0:
                raise SpecError(f"invalid spec {name}: output {axis} would be {out}")
    if kind == "CONV_2D" and (p["cin"] % p["groups"] or p["cout"] % p["groups"]):
        raise SpecError(
            f"invalid spec {name}: groups {p['groups']} do not divide cin {p['cin']} "
            f"and cout {p['cout']}"
        )
    if kind == "CONCATENATION" and not 2 <= len(p["cins"]) <= 4:
        raise SpecError(f"invalid spec {name}: concatenation takes 2 to 4 inputs")
    if kind == "RESHAPE" and math.prod(p["shape"]) != p["input_h"] * p["input_w"] * p["cin"]:
        raise SpecError(f"invalid spec {name}: shape {p['shape']} has a different element count")
    if kind == "RESIZE_BILINEAR" and p["align_corners"] and p["half_pixel_centers"]:
        raise SpecError(f"invalid spec {name}: align_corners and half_pixel_centers exclude")


# --- reading a spec back from a model ------------------------------------------------------


def _producer(graph: Graph | None, tensor_index: int) -> Op | None:
    if graph is None:
        return None
    for op in graph.ops:
        if any(t.index == tensor_index for t in op.outputs):
            return op
    return None


def _dtype_of(op: Op, graph: Graph | None, weight_pos: int | None) -> str:
    data = op.activations[0] if op.activations else op.inputs[0]
    if data.dtype == "int8":
        return "int8"
    if weight_pos is not None and len(op.inputs) > weight_pos:
        w = op.inputs[weight_pos]
        src = None if w.is_constant else _producer(graph, w.index)
        if src is not None and src.type == "DEQUANTIZE" and src.inputs[0].dtype == "float16":
            return "float16"
    if data.dtype != "float32":
        raise SpecError(f"op {op.index} {op.type}: input dtype {data.dtype} is not supported")
    return "float32"


def _image(op: Op, shape: tuple[int, ...]) -> dict[str, int]:
    if len(shape) != 4 or shape[0] != 1:
        raise SpecError(f"op {op.index} {op.type}: input shape {list(shape)} is not 1xHxWxC")
    return {"input_h": shape[1], "input_w": shape[2], "cin": shape[3]}


def _square(op: Op, pair: tuple[int, int] | None, what: str) -> int:
    if pair is None or pair[0] != pair[1]:
        raise SpecError(f"op {op.index} {op.type}: {what} {pair} is not the same on h and w")
    return pair[0]


def spec_from_op(op: Op, graph: Graph | None = None) -> OpSpec:
    """The spec an op of a read model fulfils (``graph`` lets fp16 weights be recognised).

    Raises :class:`SpecError` for ops a spec cannot describe (unsupported kind, batch > 1,
    strides that differ on h and w, ...).
    """
    if op.type not in KIND_PARAMS:
        raise SpecError(f"op {op.index} {op.type}: no op spec for this kind")
    try:
        return OpSpec(op.type, _params_of(op, graph))
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        # a real model's op with inputs or options this reading does not expect
        raise SpecError(f"op {op.index} {op.type}: not describable as a spec ({exc})") from exc


def _kernel(op: Op) -> dict[str, int]:
    if op.kernel is None:
        raise SpecError(f"op {op.index} {op.type}: no kernel size")
    return {"kernel_h": op.kernel[0], "kernel_w": op.kernel[1]}


def _params_of(op: Op, graph: Graph | None) -> dict[str, Any]:
    kind = op.type
    p: dict[str, Any] = {}
    acts = op.activations
    first = acts[0] if acts else op.inputs[0]
    act = op.activation.lower()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = op.inputs[1]
        p.update(_image(op, first.shape))
        p.update(_kernel(op))
        p.update(
            stride=_square(op, op.stride, "stride"), dilation=_square(op, op.dilation, "dilation")
        )
        p.update(padding=str(op.padding).lower(), activation=act)
        if kind == "CONV_2D":
            p.update(cout=w.shape[0], groups=op.groups)
        else:
            p["depth_multiplier"] = max(w.shape[3] // max(p["cin"], 1), 1)
        p["dtype"] = _dtype_of(op, graph, 1)
    elif kind == "TRANSPOSE_CONV":
        data = op.inputs[2]
        w = op.inputs[1]
        p.update(_image(op, data.shape))
        p.update(_kernel(op), cout=w.shape[0])
        p.update(stride=_square(op, op.stride, "stride"), padding=str(op.padding).lower())
        p.update(activation=act, bias=len(op.inputs) > 3)
        p["dtype"] = "int8" if data.dtype == "int8" else _dtype_of(op, graph, 1)
    elif kind == "FULLY_CONNECTED":
        w = op.inputs[1]
        cin = w.shape[1]
        p.update(batch=max(first.numel // max(cin, 1), 1), cin=cin, cout=w.shape[0])
        p.update(activation=act, bias=len(op.inputs) > 2, dtype=_dtype_of(op, graph, 1))
    elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        p.update(_image(op, first.shape))
        p.update(_kernel(op))
        p.update(stride=_square(op, op.stride, "stride"), padding=str(op.padding).lower())
        p.update(activation=act, dtype=_dtype_of(op, graph, None))
    elif kind == "MEAN":
        p.update(_image(op, first.shape))
        axes = sorted(a % 4 for a in op.options.get("axis", []))
        if axes != [1, 2]:
            raise SpecError(f"op {op.index} MEAN: axes {axes} are not the spatial axes [1, 2]")
        p.update(keep_dims=bool(op.options.get("keep_dims")), dtype=_dtype_of(op, graph, None))
    elif kind == "CONCATENATION":
        if int(op.options.get("axis", -1)) % len(first.shape) != len(first.shape) - 1:
            raise SpecError(f"op {op.index} CONCATENATION: not along channels")
        img = _image(op, first.shape)
        p.update(input_h=img["input_h"], input_w=img["input_w"])
        p.update(cins=[t.shape[-1] for t in op.inputs], activation=act)
        p["dtype"] = _dtype_of(op, graph, None)
    elif kind in ("ADD", "MUL"):
        a, b = op.inputs[0], op.inputs[1]
        big, small = (a, b) if a.numel >= b.numel else (b, a)
        p.update(_image(op, big.shape))
        if small.shape == big.shape:
            p["broadcast"] = "none"
        elif small.numel == 1:
            p["broadcast"] = "scalar"
        elif small.numel == big.shape[-1] and small.shape[-1] == big.shape[-1]:
            p["broadcast"] = "channel"
        else:
            raise SpecError(f"op {op.index} {kind}: broadcast {list(small.shape)} not supported")
        p.update(activation=act, dtype=_dtype_of(op, graph, None))
    elif kind == "PAD":
        p.update(_image(op, first.shape))
        pads = list(op.options.get("paddings", []))
        if len(pads) != 8 or pads[:2] != [0, 0] or pads[6:] != [0, 0]:
            raise SpecError(f"op {op.index} PAD: paddings {pads} are not spatial only")
        p.update(pad_top=pads[2], pad_bottom=pads[3], pad_left=pads[4], pad_right=pads[5])
        p["dtype"] = _dtype_of(op, graph, None)
    elif kind == "RESIZE_BILINEAR":
        p.update(_image(op, first.shape))
        out = op.outputs[0].shape
        p.update(output_h=out[1], output_w=out[2])
        p.update(
            align_corners=bool(op.options.get("align_corners")),
            half_pixel_centers=bool(op.options.get("half_pixel_centers")),
            dtype=_dtype_of(op, graph, None),
        )
    elif kind == "SOFTMAX":
        cin = first.shape[-1]
        p.update(batch=max(first.numel // max(cin, 1), 1), cin=cin)
        p["dtype"] = _dtype_of(op, graph, None)
    elif kind == "RESHAPE":
        p.update(_image(op, first.shape))
        p.update(shape=list(op.outputs[0].shape), dtype=_dtype_of(op, graph, None))
    else:  # unary activations
        p.update(_image(op, first.shape))
        p["dtype"] = _dtype_of(op, graph, None)
    return p


def check_graph(graph: Graph, spec: OpSpec) -> None:
    """Raise :class:`SpecError` unless ``graph`` holds exactly one ``spec.kind`` op fulfilling
    ``spec`` (its parameters read back from the file, never from a file name)."""
    main = [op for op in graph.ops if op.type == spec.kind]
    if len(main) != 1:
        raise SpecError(f"{spec.label}: model has {len(main)} {spec.kind} ops, expected 1")
    got = spec_from_op(main[0], graph)
    if dict(got.params) != dict(spec.params):
        diff = sorted(k for k in spec.params if got.params.get(k) != spec.params[k])
        detail = ", ".join(
            f"{k}: read {got.params.get(k)!r}, spec {spec.params[k]!r}" for k in diff
        )
        raise SpecError(f"{spec.label}: model does not match its spec ({detail})")
