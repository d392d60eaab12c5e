"""Precision as users ship it: weight formats, quantized models and the GPU's math precision.

What the TFLite GPU delegate does with each (the facts and their sources are data in
``rules/tflite_gpu_precision.toml``):

* constant weights behind a DEQUANTIZE are constant float weights once the delegate is built:
  :func:`fold_constant_weights` marks them so, and the partition makes fp16 ones free and int8
  ones a weights converter where a convolution takes them as runtime weights;
* a full-int8 model runs in float on the GPU; its int8 graph inputs and outputs are converted
  on the CPU at every inference (:func:`cpu_io_tensors`, :func:`cpu_io_ms`);
* op versions above a parser's limit (a newer int8 or hybrid variant) run on the CPU
  (:meth:`PrecisionFacts.refuses`);
* fp16 or fp32 math: :func:`time_factor` turns a kernel's time measured in one precision into
  the other's, from where its time goes (launch, arithmetic, bytes, serial steps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tflat.errors import SpecError
from tflat.gpu.kernel import Kernel, read_rules
from tflat.model.ops import Graph, Op, TensorInfo


@dataclass(frozen=True)
class PrecisionFacts:
    """See ``rules/tflite_gpu_precision.toml`` for what each field means and its source."""

    precisions: tuple[str, ...]
    default_measured: str
    storage_bytes: Mapping[str, int]
    alu_speedup_fp16: Mapping[str, float]
    folded_dtypes: frozenset[str]
    constant_dtypes: frozenset[str]
    converted_by: frozenset[str]
    refused_dequantize_dtypes: frozenset[str]
    cpu_io_dtypes: frozenset[str]
    cpu_ns_per_element: float
    max_version: Mapping[str, int]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrecisionFacts:
        try:
            weights, quant = data["weights"], data["quantized"]
            facts = cls(
                precisions=tuple(str(p) for p in data["precisions"]),
                default_measured=str(data["default_measured"]),
                storage_bytes={str(k): int(v) for k, v in data["storage_bytes"].items()},
                alu_speedup_fp16={str(k): float(v) for k, v in data["alu_speedup_fp16"].items()},
                folded_dtypes=frozenset(weights["folded_dtypes"]),
                constant_dtypes=frozenset(weights["constant_dtypes"]),
                converted_by=frozenset(weights["converted_by"]),
                refused_dequantize_dtypes=frozenset(weights["refused_dtypes"]),
                cpu_io_dtypes=frozenset(quant["cpu_io_dtypes"]),
                cpu_ns_per_element=float(quant["cpu_ns_per_element"]),
                max_version={str(k): int(v) for k, v in data["max_version"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecError(f"GPU precision rules are malformed: {exc!r}") from exc
        if facts.default_measured not in facts.precisions or set(facts.storage_bytes) != set(
            facts.precisions
        ):
            raise SpecError("GPU precision rules: precisions and storage_bytes disagree")
        return facts

    def check(self, precision: str) -> str:
        """``precision`` if the delegate has it, else a one-line :class:`SpecError`."""
        if precision not in self.precisions:
            known = " or ".join(self.precisions)
            raise SpecError(f"precision must be {known}, not {precision!r}")
        return precision

    def alu_speedup(self, gpu_family: str) -> float:
        family = gpu_family.split(":", 1)[0]
        return self.alu_speedup_fp16.get(family, self.alu_speedup_fp16.get("default", 1.0))

    def refuses(self, op: Op) -> str:
        """Why the delegate refuses ``op`` for its version or its types ("" if it does not)."""
        limit = self.max_version.get(op.type)
        if limit is not None and op.version > limit:
            return f"version {op.version} > {limit}, the delegate's limit for {op.type}"
        if op.type == "DEQUANTIZE" and op.inputs:
            dtype = op.inputs[0].dtype
            if dtype in self.refused_dequantize_dtypes:
                return f"{dtype} DEQUANTIZE is not supported by the delegate"
        return ""

    def weights_role(self, op: Op) -> str:
        """What becomes of a DEQUANTIZE of a constant: "folded" into its consumers' weights,
        a "constant" GPU tensor, or "" (not a DEQUANTIZE of a constant)."""
        if op.type != "DEQUANTIZE" or len(op.inputs) != 1 or not op.inputs[0].is_constant:
            return ""
        if op.inputs[0].dtype in self.folded_dtypes:
            return "folded"
        if op.inputs[0].dtype in self.constant_dtypes:
            return "constant"
        return ""


@lru_cache(maxsize=1)
def load_precision_facts() -> PrecisionFacts:
    return PrecisionFacts.from_dict(read_rules("tflite_gpu_precision"))


def fold_constant_weights(graph: Graph, facts: PrecisionFacts | None = None) -> Graph:
    """``graph`` as the delegate holds it once built: the output of a DEQUANTIZE of a constant
    (fp16 or int8 weights) is a constant float tensor for every op that reads it. Ops, their
    order and indices do not change; the DEQUANTIZE stays (the partition says what it costs)."""
    facts = facts or load_precision_facts()
    subgraphs = []
    changed = False
    for sg in graph.subgraphs:
        made = {t.index for op in sg.ops if facts.weights_role(op) for t in op.outputs}
        if not made:
            subgraphs.append(sg)
            continue
        changed = True
        ops = tuple(_with_constants(op, made) for op in sg.ops)
        subgraphs.append(dataclasses.replace(sg, ops=ops))
    return dataclasses.replace(graph, subgraphs=tuple(subgraphs)) if changed else graph


def _with_constants(op: Op, made: set[int]) -> Op:
    if not any(t.index in made for t in op.inputs):
        return op  # a DEQUANTIZE's own output: nothing reads its constness
    # vars() + the constructor: several times faster than dataclasses.replace, and estimate
    # folds every conv of an fp16 model on every call
    inputs = tuple(
        TensorInfo(**(vars(t) | {"is_constant": True})) if t.index in made else t for t in op.inputs
    )
    return Op(**(vars(op) | {"inputs": inputs}))


def cpu_io_tensors(
    graph: Graph, kernels: Sequence[Kernel], facts: PrecisionFacts | None = None
) -> tuple[TensorInfo, ...]:
    """The graph's int8/uint8 inputs and outputs that a kernel the delegate runs reads or
    writes: the delegate converts them to and from float on the CPU at every inference (a
    kernel on the CPU takes the int8 tensor as it is)."""
    facts = facts or load_precision_facts()
    io = [t for t in (*graph.inputs, *graph.outputs) if t.dtype in facts.cpu_io_dtypes]
    if not io:
        return ()
    on_gpu = {i for k in kernels if k.on_gpu for i in k.op_indices}
    touched = {t.index for op in graph.ops if op.index in on_gpu for t in (*op.inputs, *op.outputs)}
    return tuple(t for t in io if t.index in touched)


def cpu_io_ms(
    graph: Graph, kernels: Sequence[Kernel], facts: PrecisionFacts | None = None
) -> float:
    """Milliseconds the CPU spends (de)quantizing the int8 graph inputs and outputs of one
    inference (:func:`cpu_io_tensors`)."""
    facts = facts or load_precision_facts()
    elements = sum(t.numel for t in cpu_io_tensors(graph, kernels, facts))
    return elements * facts.cpu_ns_per_element * 1e-6


@dataclass(frozen=True)
class TimeParts:
    """Where one kernel's time goes (ms, or any shares of it): a fixed launch, arithmetic,
    bytes moved and serial loop steps (the columns of the predictor's analytic term)."""

    launch: float = 0.0
    arithmetic: float = 0.0
    memory: float = 0.0
    serial: float = 0.0

    @property
    def total(self) -> float:
        return self.launch + self.arithmetic + self.memory + self.serial


def time_factor(
    parts: TimeParts,
    measured: str,
    wanted: str,
    gpu_family: str = "default",
    facts: PrecisionFacts | None = None,
) -> float:
    """How many times the kernel's ``measured``-precision time it takes in ``wanted``.

    Bytes scale with the tensor element size of each precision, arithmetic and serial loop
    steps with the ALU rate (fp16 :meth:`PrecisionFacts.alu_speedup` times fp32's), the launch
    not at all. So fp32 is never faster than fp16: at most twice as slow, for a kernel that
    is all bytes and arithmetic, and not slower at all for one that is all launch."""
    facts = facts or load_precision_facts()
    facts.check(measured)
    facts.check(wanted)
    if measured == wanted or parts.total <= 0:
        return 1.0
    memory = facts.storage_bytes[wanted] / facts.storage_bytes[measured]
    speedup = facts.alu_speedup(gpu_family)
    alu = {"fp16": 1.0, "fp32": speedup}
    arithmetic = alu[wanted] / alu[measured]
    scaled = parts.launch + arithmetic * (parts.arithmetic + parts.serial) + memory * parts.memory
    return scaled / parts.total


def factor_bounds(
    measured: str, wanted: str, gpu_family: str = "default", facts: PrecisionFacts | None = None
) -> tuple[float, float]:
    """The least and the most :func:`time_factor` can be for any kernel: how far an estimate
    extrapolated to the other precision may be off by where the time really goes."""
    facts = facts or load_precision_facts()
    ends = [
        time_factor(TimeParts(launch=1.0), measured, wanted, gpu_family, facts),
        time_factor(TimeParts(memory=1.0), measured, wanted, gpu_family, facts),
        time_factor(TimeParts(arithmetic=1.0), measured, wanted, gpu_family, facts),
    ]
    return min(ends), max(ends)


@dataclass(frozen=True)
class PrecisionMove:
    """How kernels' times measured in one math precision move to another: each kernel's
    :func:`time_factor` by kernel index (1 for a kernel not listed), and the least and most
    any kernel's factor can be (:func:`factor_bounds`: how far off a factor may be, by where
    the kernel's time really goes)."""

    measured: str
    wanted: str
    factors: Mapping[int, float]
    least: float = 1.0
    most: float = 1.0

    def factor(self, kernel_index: int) -> float:
        return self.factors.get(kernel_index, 1.0)


def precision_move(
    parts: Mapping[int, TimeParts],
    measured: str,
    wanted: str,
    gpu_family: str = "default",
    facts: PrecisionFacts | None = None,
) -> PrecisionMove:
    """The :class:`PrecisionMove` of kernels whose time goes where ``parts`` says."""
    facts = facts or load_precision_facts()
    factors = {i: time_factor(p, measured, wanted, gpu_family, facts) for i, p in parts.items()}
    least, most = factor_bounds(measured, wanted, gpu_family, facts)
    return PrecisionMove(measured, wanted, factors, least, most)
