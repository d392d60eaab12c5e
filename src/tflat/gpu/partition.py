"""Partition a graph into the kernels the TFLite GPU delegate runs.

The delegate takes the ops it supports, turns a PAD into the padding of the conv or pool that
reads it, links element-wise ops into the kernel that produced their input (one kernel launch,
no round trip through memory), makes reshapes free, and picks an algorithm per convolution
(Winograd 4x4->6x6 when there is enough work). The rules come from ``rules/<name>.toml``; the
code here only applies them, so a rule change is a data change with a test beside it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tflat.errors import SpecError
from tflat.gpu.kernel import Kernel, read_rules
from tflat.gpu.precision import PrecisionFacts, load_precision_facts
from tflat.gpu.support import backend_of, delegated_ops, load_support, refusal
from tflat.model.cost import ELEMENTWISE
from tflat.model.ops import Graph, Op

log = logging.getLogger(__name__)

#: GPU families whose Winograd thresholds differ (``[winograd.<family>]`` in the rules).
GPU_FAMILIES = ("adreno", "mali", "powervr", "apple", "default")


@dataclass(frozen=True)
class GpuRules:
    """A delegate's behaviour as data: see ``rules/tflite_gpu.toml`` for the meaning of each."""

    name: str
    description: str
    supported: frozenset[str]
    linkable: frozenset[str]
    free: frozenset[str]
    free_if_constant_input: frozenset[str]
    pad_ops: frozenset[str]
    pad_merges_into: frozenset[str]
    kind: Mapping[str, str]
    kernel_name: Mapping[str, str]
    winograd: Mapping[str, tuple[int, int]]
    conv_constants: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GpuRules:
        try:
            wino = {
                str(fam): (int(v["min_tiles"]), int(v["min_slices"]))
                for fam, v in data.get("winograd", {}).items()
            }
            constants = {
                str(fam): (int(v["max_weight_bytes"]), int(v["max_dst_slices"]))
                for fam, v in data.get("conv_constants", {}).items()
            }
            return cls(
                name=str(data["name"]),
                description=str(data.get("description", "")),
                supported=frozenset(data["supported"]),
                linkable=frozenset(data["linkable"]),
                free=frozenset(data["free"]),
                free_if_constant_input=frozenset(data.get("free_if_constant_input", [])),
                pad_ops=frozenset(data.get("pad_ops", [])),
                pad_merges_into=frozenset(data.get("pad_merges_into", [])),
                kind=dict(data["kind"]),
                kernel_name=dict(data["kernel_name"]),
                winograd=wino,
                conv_constants=constants,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"GPU rules are malformed: {exc!r}") from exc

    def winograd_thresholds(self, gpu_family: str) -> tuple[int, int] | None:
        return self.winograd.get(gpu_family) or self.winograd.get("default")


@lru_cache(maxsize=4)
def load_gpu_rules(name: str = "tflite_gpu") -> GpuRules:
    """The rules shipped as ``tflat/gpu/rules/<name>.toml``."""
    return GpuRules.from_dict(read_rules(name))


def conv_constants_chosen(
    *,
    kernel: tuple[int, int],
    groups: int,
    cin: int,
    cout: int,
    gpu_family: str = "default",
    rules: GpuRules | None = None,
) -> bool:
    """Whether the delegate runs this convolution with its weights in constant memory
    (ConvConstants, Adreno's choice for small filters): ungrouped, at most ``max_dst_slices``
    output slices and weights, laid out in slices of 4, within ``max_weight_bytes`` (fp16)."""
    limits = (rules or load_gpu_rules()).conv_constants.get(gpu_family)
    if limits is None or groups != 1:
        return False
    max_bytes, max_slices = limits
    src_slices, dst_slices = math.ceil(cin / 4), math.ceil(cout / 4)
    # the delegate lays out either cout x input slices or cin x output slices, by which pads less
    dot = cout % 4 != 0 and (cin % 4 == 0 or cout * src_slices < cin * dst_slices)
    aligned = cout * src_slices * 4 if dot else cin * dst_slices * 4
    weight_bytes = aligned * kernel[0] * kernel[1] * 2
    return weight_bytes <= max_bytes and dst_slices <= max_slices


def winograd_chosen(
    *,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    cin: int,
    cout: int,
    out_h: int,
    out_w: int,
    gpu_family: str = "default",
    rules: GpuRules | None = None,
) -> bool:
    """Whether the delegate runs this convolution as Winograd 4x4->6x6.

    Only 3x3, stride 1, undilated, ungrouped; then at least ``min_tiles`` 4x4 output tiles
    and ``min_slices`` 4-channel slices on input and output.
    """
    if kernel != (3, 3) or stride != (1, 1) or dilation != (1, 1) or groups != 1:
        return False
    thresholds = (rules or load_gpu_rules()).winograd_thresholds(gpu_family)
    if thresholds is None:
        return False
    min_tiles, min_slices = thresholds
    tiles = math.ceil(out_h / 4) * math.ceil(out_w / 4)
    slices_in, slices_out = math.ceil(cin / 4), math.ceil(cout / 4)
    return tiles >= min_tiles and slices_in >= min_slices and slices_out >= min_slices


def partition(
    graph: Graph,
    rules: str | GpuRules = "tflite_gpu",
    gpu_family: str = "default",
    backend: str | None = None,
) -> tuple[Kernel, ...]:
    """The kernels the GPU delegate runs for ``graph.ops``, in execution order.

    Every op of ``graph.ops`` is in exactly one kernel. XNNPACK's partition is
    :func:`tflat.cpu.xnnpack.partition`; :func:`tflat.cpu.delegates.partition` takes either
    by the rules' name. ``backend`` (``opencl``/``metal``; default: the GPU family's) decides
    which supported ops the delegate takes (:mod:`tflat.gpu.support`).
    """
    gpu_rules = load_gpu_rules(rules) if isinstance(rules, str) else rules
    return _Partitioner(graph, gpu_rules, gpu_family, backend).run()


def _delegation(
    graph: Graph, rules: GpuRules, backend: str, facts: PrecisionFacts
) -> tuple[dict[int, str], frozenset[int]]:
    """Why each refused op is refused, and the op indices the backend runs on the GPU: an op
    type without a parser, an op version or type the delegate refuses (``facts``), a check of
    the backend (:mod:`tflat.gpu.support`), then only the partitions it takes."""
    support = load_support(backend)
    refused: dict[int, str] = {}
    for op in graph.ops:
        if op.type not in rules.supported:
            why: str | None = "no GPU kernel for this op"
        else:
            why = facts.refuses(op) or refusal(op, support)
        if why:
            refused[op.index] = why
    takes = {op.index for op in graph.ops if op.index not in refused}
    delegated = delegated_ops(graph.ops, takes, support)
    for i in takes - delegated:
        refused[i] = f"only the largest partition runs on the GPU ({backend} delegate)"
    return refused, delegated


def _spatial_reduction(op: Op) -> bool:
    """A reduction over height and width of a 4-D tensor (what the measured means are)."""
    data = op.activations
    rank = len(data[0].shape) if data else 0
    axes = {a % rank for a in op.options.get("axis", [])} if rank else set()
    return rank == 4 and bool(axes) and axes <= {1, 2}


def _hw(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 4:
        return max(shape[1], 1), max(shape[2], 1)
    return 1, 1


class _Partitioner:
    def __init__(
        self, graph: Graph, rules: GpuRules, gpu_family: str, backend: str | None = None
    ) -> None:
        self.ops = graph.ops
        self.rules = rules
        self.family = gpu_family
        self.facts = load_precision_facts()
        self.refused, self.delegated = _delegation(
            graph, rules, backend or backend_of(gpu_family), self.facts
        )
        self.graph_outputs = {t.index for t in graph.outputs}
        self.readers: dict[int, list[int]] = {}
        self.producer: dict[int, int] = {}
        for pos, op in enumerate(self.ops):
            for t in op.inputs:
                self.readers.setdefault(t.index, []).append(pos)
            for t in op.outputs:
                self.producer[t.index] = pos
        self.owner: dict[int, int] = {}  # fused op position -> main op position

    def supported(self, op: Op) -> bool:
        return op.index in self.delegated

    def is_free(self, op: Op) -> bool:
        if op.type in self.rules.free:
            return True
        if op.type not in self.rules.free_if_constant_input:
            return False
        # fp16 weights fold into their consumers; int8 ones become a constant GPU tensor,
        # free unless a convolution takes it as runtime weights (see converts_weights)
        role = self.facts.weights_role(op)
        return role == "folded" or (role == "constant" and not self.converts_weights(op))

    def converts_weights(self, op: Op) -> bool:
        """Whether ``op`` (a DEQUANTIZE of int8 weights) feeds a convolution that takes them
        as runtime weights, converted by a kernel of their own at every inference."""
        if self.facts.weights_role(op) != "constant" or not op.outputs:
            return False
        readers = self.readers.get(op.outputs[0].index, [])
        return any(self.ops[r].type in self.facts.converted_by for r in readers)

    def runtime_weights(self, op: Op) -> bool:
        """Whether a convolution's weights come from a weights converter (no Winograd)."""
        if len(op.inputs) < 2:
            return False
        src = self.producer.get(op.inputs[1].index)
        return src is not None and self.converts_weights(self.ops[src])

    def sole_reader(self, tensor_index: int) -> int | None:
        readers = self.readers.get(tensor_index, [])
        if len(readers) != 1 or tensor_index in self.graph_outputs:
            return None
        return readers[0]

    def pad_target(self, pos: int, op: Op) -> int | None:
        """The conv/pool a PAD merges into, if any."""
        if op.type not in self.rules.pad_ops or not op.outputs:
            return None
        if len(op.inputs) > 1 and op.inputs[1].values is not None:
            pads = op.inputs[1].values
            # Only spatial padding merges: batch and channel pads must be zero.
            if len(pads) == 8 and any(pads[i] for i in (0, 1, 6, 7)):
                return None
        if op.type == "PADV2" or op.type == "MIRROR_PAD":
            return None  # non-zero constant or mirrored borders are not a conv's padding
        reader = self.sole_reader(op.outputs[0].index)
        if reader is None:
            return None
        target = self.ops[reader]
        if target.type in self.rules.pad_merges_into and self.supported(target):
            return reader
        return None

    def link_target(self, pos: int, op: Op) -> int | None:
        """The kernel (main op position) an element-wise op links into, if any."""
        if op.type not in self.rules.linkable or len(op.outputs) != 1:
            return None
        out_shape = op.outputs[0].shape
        best: int | None = None
        for t in op.activations:
            src = self.producer.get(t.index)
            if src is None or self.sole_reader(t.index) != pos:
                continue
            main = self.owner.get(src, src)
            main_op = self.ops[main]
            if not self.supported(main_op) or self.is_free(main_op):
                continue
            if t.shape != out_shape:  # a broadcast operand's producer cannot take it
                continue
            if best is None or main > best:
                best = main
        return best

    def run(self) -> tuple[Kernel, ...]:
        members: dict[int, list[int]] = {}
        pads: dict[int, int] = {}
        for pos, op in enumerate(self.ops):
            if not self.supported(op) or self.is_free(op):
                continue
            target = self.pad_target(pos, op)
            if target is not None:
                pads[target] = pos
                self.owner[pos] = target
                continue
            main = self.link_target(pos, op)
            if main is not None:
                self.owner[pos] = main
                members.setdefault(main, []).append(pos)
        kernels: list[Kernel] = []
        for pos, op in enumerate(self.ops):
            if pos in self.owner:
                continue
            fused = ([pads[pos]] if pos in pads else []) + members.get(pos, [])
            kind, name, on_gpu, note = self.classify(op)
            if fused:
                linked = [self.ops[m].type for m in members.get(pos, [])]
                parts = []
                if pos in pads:
                    parts.append(f"{self.ops[pads[pos]].type} merged as padding")
                if linked:
                    parts.append("linked: " + ", ".join(linked))
                note = "; ".join(parts + ([note] if note else []))
                for m in members.get(pos, []):
                    name += f"_linked_{self.ops[m].type.lower()}"
            kernels.append(
                Kernel(
                    index=len(kernels),
                    name=name,
                    kind=kind,
                    op_indices=(op.index, *(self.ops[m].index for m in fused)),
                    on_gpu=on_gpu,
                    note=note,
                )
            )
        return tuple(kernels)

    def classify(self, op: Op) -> tuple[str, str, bool, str]:
        """(kind, kernel name, on the GPU, note) of one main op."""
        names = self.rules.kernel_name
        if not self.supported(op):
            why = self.refused.get(op.index, "in a partition the delegate does not take")
            return "cpu_fallback", f"cpu:{op.type.lower()}", False, f"not supported: {why}"
        if self.is_free(op):
            return "free", op.type.lower(), True, "no GPU work (layout only or constant weights)"
        if self.converts_weights(op):
            note = "int8 weights, dequantized at load, converted for the convolution every run"
            return "other", "converter_to_conv_weights", True, note
        kind = self.rules.kind.get(op.type)
        if kind is None:
            kind = "elementwise" if op.type in ELEMENTWISE else "other"
        if kind == "fully_connected" and self.runtime_weights(op):
            return kind, "convolution_dynamic", True, "runtime weights: no constant weights"
        out = op.outputs[0].shape if op.outputs else ()
        data = op.activations
        in_shape = data[0].shape if data else ()
        if kind == "conv2d":
            if op.groups > 1:
                kind = "grouped_conv2d"
            elif self.runtime_weights(op):
                return kind, "convolution_dynamic", True, "runtime weights: no Winograd"
            elif _hw(in_shape) == (1, 1) and (op.kernel or (1, 1)) == (1, 1):
                return "fully_connected", names["fully_connected"], True, "1x1 conv on 1x1 input"
            elif self.winograd(op):
                return kind, "convolution_winograd_4x4_6x6", True, ""
        if kind == "pool" and op.type == "AVERAGE_POOL_2D" and _hw(out) == (1, 1):
            return "mean", names["mean"], True, "global average pool runs as mean"
        if kind == "mean" and not _spatial_reduction(op):
            return "reduce", names["reduce"], True, "reduces other axes than height and width"
        return kind, names.get(kind, kind), True, ""

    def winograd(self, op: Op) -> bool:
        out = op.outputs[0].shape if op.outputs else ()
        weights = op.inputs[1].shape if len(op.inputs) > 1 else ()
        if len(out) != 4 or len(weights) != 4:
            return False
        return winograd_chosen(
            kernel=op.kernel or (1, 1),
            stride=op.stride or (1, 1),
            dilation=op.dilation or (1, 1),
            groups=op.groups,
            cin=weights[3],
            cout=weights[0],
            out_h=max(out[1], 1),
            out_w=max(out[2], 1),
            gpu_family=self.family,
            rules=self.rules,
        )
