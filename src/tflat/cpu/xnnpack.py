"""What LiteRT's XNNPACK delegate does to a graph on the CPU (:mod:`tflat.gpu`'s counterpart).

Why this exists: a whole-model estimate on the CPU is only as good as its list of what actually
runs. XNNPACK takes most float ops, folds standalone RELU/RELU6 into the output clamp of the op
before them, converts constant fp16 weights once at initialisation (their DEQUANTIZE ops cost
nothing per inference) and makes reshapes free; the ops it does not take run in TFLite's own
kernels, each such op splitting the delegated graph into one more delegate partition. The rules
are data (``rules/xnnpack.toml``); this module applies them and returns the same
:class:`~tflat.gpu.kernel.Kernel` records as :func:`tflat.gpu.partition`, with ``on_gpu`` meaning
"run by the delegate" (XNNPACK here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tflat.errors import SpecError
from tflat.gpu.kernel import read_rules

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Graph, Op

log = logging.getLogger(__name__)

RULES_NAME = "xnnpack"


#: Op-type sets every XNNPACK rules file names, and those it may leave out (with defaults).
_REQUIRED_SETS = ("activation_dtypes", "supported_fused_activations", "static_weights",
                  "fusable_activations", "fuse_into", "free")  # fmt: skip
_OPTIONAL_SETS: Mapping[str, tuple[str, ...]] = {
    "static_weight_producers": ("DEQUANTIZE",),
    "fusable_pads": (),
    "pad_fuse_into": (),
    "trivial_builtin": (),
    "hybrid_refused": (),
}


@dataclass(frozen=True)
class XnnpackRules:
    """The XNNPACK delegate's behaviour, read from ``rules/<name>.toml``."""

    name: str
    description: str
    activation_dtypes: frozenset[str]
    supported_fused_activations: frozenset[str]
    static_weights: frozenset[str]
    fusable_activations: frozenset[str]
    fuse_into: frozenset[str]
    free: frozenset[str]
    free_constant_dequantize: bool
    static_weight_producers: frozenset[str]
    fusable_pads: frozenset[str]
    pad_fuse_into: frozenset[str]
    trivial_builtin: frozenset[str]
    #: op type -> (kernel kind, XNNPACK operator name)
    delegated: Mapping[str, tuple[str, str]]
    #: dynamic-range op types (float input, int8 weights) XNNPACK refuses
    hybrid_refused: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> XnnpackRules:
        try:
            # the op-type sets: required ones raise KeyError when missing, the rest default
            sets = {
                name: frozenset(data[name] if name in data or name in _REQUIRED_SETS
                                else _OPTIONAL_SETS[name])
                for name in (*_REQUIRED_SETS, *_OPTIONAL_SETS)
            }  # fmt: skip
            return cls(
                name=str(data["name"]),
                description=str(data.get("description", "")),
                free_constant_dequantize=bool(data.get("free_constant_dequantize", True)),
                delegated={str(k): (str(v[0]), str(v[1])) for k, v in data["delegated"].items()},
                **sets,
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise SpecError(f"XNNPACK rules are malformed: {exc!r}") from exc


@lru_cache(maxsize=4)
def load_rules(name: str = RULES_NAME) -> XnnpackRules:
    """The rules shipped as ``tflat/cpu/rules/<name>.toml``."""
    return XnnpackRules.from_dict(read_rules(name, "CPU delegate", package="tflat.cpu"))


def static_tensors(
    graph: Graph, producers: frozenset[str] = frozenset({"DEQUANTIZE", "DENSIFY"})
) -> set[int]:
    """Tensors known at initialisation: constants, and what DEQUANTIZE/DENSIFY make of them
    (sparse fp16 weights are DENSIFY then DEQUANTIZE: both fold away)."""
    static = {t.index for op in graph.ops for t in op.inputs if t.is_constant}
    for op in graph.ops:
        if op.type in producers and op.inputs and op.inputs[0].index in static:
            static.update(t.index for t in op.outputs)
    return static


def _refusal(op: Op, rules: XnnpackRules, static: set[int]) -> str | None:
    """Why XNNPACK does not take ``op`` (None when it does)."""
    if op.type not in rules.delegated:
        return f"{op.type} is not supported by XNNPACK"
    if op.type in rules.static_weight_producers and op.inputs and op.inputs[0].index in static:
        return None  # folded into static weights when the delegate is built
    if op.type == "DENSIFY":
        return "DENSIFY of a runtime tensor runs in TFLite"
    dyn = [t for t in (*op.inputs, *op.outputs) if t.index not in static]
    bad = sorted({t.dtype for t in dyn if t.dtype not in rules.activation_dtypes})
    if bad:
        return f"{op.type} on {'/'.join(bad)} tensors is not supported by XNNPACK"
    if op.type in rules.hybrid_refused and _hybrid(op):
        return f"{op.type} with float input and int8 weights is not supported by XNNPACK"
    if op.activation not in rules.supported_fused_activations:
        return f"fused {op.activation} is not supported by XNNPACK"
    if op.type in rules.static_weights:
        weights = op.inputs[1:] if op.type != "TRANSPOSE_CONV" else op.inputs[1:2]
        if any(t.index not in static for t in weights):
            return f"{op.type} with runtime weights is not supported by XNNPACK"
    if any(d < 0 for t in op.inputs if t.index not in static for d in t.shape[1:]):
        return "dynamic shapes are not supported by XNNPACK"
    return None


def _hybrid(op: Op) -> bool:
    """A dynamic-range op: float activations, int8 weights."""
    return (
        len(op.inputs) > 1
        and op.inputs[0].dtype == "float32"
        and op.inputs[1].dtype in ("int8", "uint8")
    )


def partition(graph: Graph, rules: XnnpackRules | str | None = None) -> tuple[Kernel, ...]:
    """The kernels XNNPACK (and TFLite, for what it refuses) runs for ``graph.ops``.

    Every op is in exactly one kernel; ``op_indices`` lists the main op first, then the ops
    fused into it. ``on_gpu`` is True for kernels run by the delegate.
    """
    from tflat.gpu.kernel import Kernel

    if rules is None or isinstance(rules, str):
        rules = load_rules(rules or RULES_NAME)
    ops = graph.ops
    static = static_tensors(graph, rules.static_weight_producers)
    graph_outputs = {t.index for t in graph.outputs}
    readers: dict[int, int] = {}
    producer: dict[int, int] = {}
    for pos, op in enumerate(ops):
        for t in op.inputs:
            readers[t.index] = readers.get(t.index, 0) + 1
        for t in op.outputs:
            producer[t.index] = pos

    refusals = [_refusal(op, rules, static) for op in ops]
    # Standalone clamps folded into the op that produced their input, when nothing else reads it.
    fused_into: dict[int, int] = {}
    for pos, op in enumerate(ops):
        if refusals[pos] is not None or op.type not in rules.fusable_activations:
            continue
        data = op.activations
        if len(data) != 1 or data[0].index not in producer:
            continue
        src = producer[data[0].index]
        while src in fused_into:  # RELU after a fused RELU folds into the same op
            src = fused_into[src]
        src_op = ops[src]
        if (
            refusals[src] is None
            and src_op.type in rules.fuse_into
            and readers.get(data[0].index, 0) == 1
            and data[0].index not in graph_outputs
        ):
            fused_into[pos] = src
    # A zero spatial PAD becomes the padding of the convolution that alone reads it.
    reader_of: dict[int, int] = {}
    for pos, op in enumerate(ops):
        for t in op.activations:
            reader_of.setdefault(t.index, pos)
    for pos, op in enumerate(ops):
        if refusals[pos] is not None or op.type not in rules.fusable_pads or not op.outputs:
            continue
        out = op.outputs[0].index
        dst = reader_of.get(out)
        if (
            dst is not None
            and readers.get(out, 0) == 1
            and out not in graph_outputs
            and refusals[dst] is None
            and ops[dst].type in rules.pad_fuse_into
            and ops[dst].activations[:1] == op.outputs[:1]
            and _spatial_only(op)
        ):
            fused_into[pos] = dst

    kernels: list[Kernel] = []
    members: dict[int, list[int]] = {}
    for pos, owner in fused_into.items():
        members.setdefault(owner, []).append(pos)
    for pos, op in enumerate(ops):
        if pos in fused_into:
            continue
        indices = (op.index, *(ops[m].index for m in members.get(pos, [])))
        kind, name, on_delegate, note = _classify(op, rules, refusals[pos], static)
        if len(indices) > 1:
            parts = [ops[m].type for m in members[pos]]
            pads = [p for p in parts if p in rules.fusable_pads]
            clamps = [p for p in parts if p not in rules.fusable_pads]
            notes = ([f"{'+'.join(pads)} fused as the input padding"] if pads else []) + (
                [f"{'+'.join(clamps)} fused as the output clamp"] if clamps else []
            )
            note = "; ".join(notes + ([note] if note else []))
        kernels.append(
            Kernel(
                index=len(kernels),
                name=name,
                kind=kind,
                op_indices=indices,
                on_gpu=on_delegate,
                note=note,
            )
        )
    return tuple(kernels)


def _spatial_only(op: Op) -> bool:
    """A PAD whose paddings (read from its constant input) touch only height and width."""
    pads = op.options.get("paddings")
    if not isinstance(pads, list) or len(pads) != 8:
        return False
    return pads[0] == pads[1] == pads[6] == pads[7] == 0


def _classify(
    op: Op, rules: XnnpackRules, refusal: str | None, static: set[int]
) -> tuple[str, str, bool, str]:
    """(kind, kernel name, run by the delegate, note) of one unfused op."""
    if refusal is not None and op.type in rules.trivial_builtin:
        return "free", f"tflite_builtin:{op.type.lower()}", False, f"{refusal}; bookkeeping only"
    if refusal is not None:
        return "cpu_fallback", f"tflite_builtin:{op.type.lower()}", False, refusal
    kind, name = rules.delegated[op.type]
    if (
        op.type in rules.static_weight_producers
        and rules.free_constant_dequantize
        and op.inputs
        and op.inputs[0].index in static
    ):
        return "free", "weights_conversion_at_init", True, "constant weights converted once"
    if op.type in rules.free:
        return "free", name, True, "shape-only, no data moved"
    if kind == "conv2d" and op.groups > 1:
        kind = "grouped_conv2d"
    if kind in ("conv2d", "grouped_conv2d"):
        # XNNPACK runs a 1x1 stride-1 convolution as a plain GEMM, others as an indirect GEMM.
        gemm = op.kernel == (1, 1) and op.stride in (None, (1, 1))
        name = f"{name}({'gemm' if gemm else 'igemm'})"
    return kind, name, True, ""


def delegate_partitions(kernels: tuple[Kernel, ...]) -> int:
    """How many runs of consecutive delegated kernels there are (each is one delegate node)."""
    count, inside = 0, False
    for k in kernels:
        if k.kind == "free" and not k.on_gpu:
            continue
        if k.on_gpu and not inside:
            count += 1
        inside = k.on_gpu
    return count
