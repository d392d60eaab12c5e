"""Which ops a GPU delegate backend (Android OpenCL, iOS Metal) actually takes.

An op type with a parser (``rules/tflite_gpu.toml``'s ``supported``) is still refused when its
tensors, inputs or options fail the delegate's checks, and a backend may delegate only some of
the partitions it could take. The facts are data (``rules/tflite_gpu_support.toml``, with the
source file of each); this module reads them and answers per op and per graph:

* :func:`refusal` -- why the delegate refuses one op (``None``: it takes it);
* :func:`delegated_ops` -- the op indices a backend runs on the GPU, after TFLite's grouping of
  supported ops into partitions and the backend's partition limit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tflat.errors import SpecError
from tflat.gpu.kernel import read_rules
from tflat.model.ops import Op

BACKENDS = ("opencl", "metal")


@dataclass(frozen=True)
class Check:
    """One per-op check of the delegate (see the data file for the rule names)."""

    ops: frozenset[str]
    rule: str
    value: Any
    why: str


@dataclass(frozen=True)
class BackendSupport:
    """A backend's support facts: tensor rules, per-op checks, partition limit."""

    backend: str
    activation_dtypes: frozenset[str]
    bool_output_ops: frozenset[str]
    bool_input_ops: frozenset[str]
    max_rank: int
    checks: tuple[Check, ...]
    max_delegated_partitions: int
    refused: frozenset[str]


_RULES = frozenset(
    {"inputs", "one_side_broadcast", "runtime_inputs", "max_runtime_inputs", "constant_input",
     "runtime_input", "input_rank_in", "options_zero", "option_equals", "depth_multiplier",
     "batch_one", "grouped_slices"}
)  # fmt: skip


def backend_of(gpu_family: str) -> str:
    """The delegate backend a GPU family uses (``apple`` -> ``metal``, else ``opencl``)."""
    table: Mapping[str, str] = _data().get("family_backend", {})
    family = gpu_family.split(":", 1)[0]
    return str(table.get(family, table.get("default", "opencl")))


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return read_rules("tflite_gpu_support", "delegate support")


@lru_cache(maxsize=4)
def load_support(backend: str) -> BackendSupport:
    """The support facts of ``backend`` (``opencl`` or ``metal``); bad data -> SpecError."""
    data = _data()
    try:
        tensors = data["tensors"]
        section = data["backend"][backend]
        checks = []
        for c in data.get("check", []):
            if c["rule"] not in _RULES:
                raise SpecError(f"delegate support: unknown rule {c['rule']!r}")
            checks.append(Check(frozenset(c["ops"]), str(c["rule"]), c.get("value"), str(c["why"])))
        return BackendSupport(
            backend=backend,
            activation_dtypes=frozenset(tensors["activation_dtypes"]),
            bool_output_ops=frozenset(tensors.get("bool_output_ops", [])),
            bool_input_ops=frozenset(tensors.get("bool_input_ops", [])),
            max_rank=int(tensors["max_rank"]),
            checks=tuple(checks),
            max_delegated_partitions=int(section["max_delegated_partitions"]),
            refused=frozenset(section.get("refused", [])),
        )
    except KeyError as exc:
        raise SpecError(
            f"delegate support data has no {exc.args[0]!r} (backend {backend})"
        ) from exc


def refusal(op: Op, support: BackendSupport) -> str | None:
    """Why ``support``'s backend refuses ``op`` (an op type it has a parser for), or None."""
    if op.type in support.refused:
        return f"{op.type} is not taken by the {support.backend} delegate"
    for t in (*op.inputs, *op.outputs):
        if len(t.shape) > support.max_rank:
            return f"a tensor of rank {len(t.shape)} (at most {support.max_rank})"
    for t in op.activations:
        if t.dtype not in support.activation_dtypes and not (
            t.dtype == "bool" and op.type in support.bool_input_ops
        ):
            return f"an input tensor of type {t.dtype}"
    for t in op.outputs:
        if t.dtype not in support.activation_dtypes and not (
            t.dtype == "bool" and op.type in support.bool_output_ops
        ):
            return f"an output tensor of type {t.dtype}"
    for check in support.checks:
        if op.type in check.ops and not _passes(op, check):
            return check.why
    return None


def _passes(op: Op, check: Check) -> bool:
    rule, value = check.rule, check.value
    runtime = op.activations
    if rule == "inputs":
        return len(op.inputs) == int(value)
    if rule == "runtime_inputs":
        return len(runtime) == int(value)
    if rule == "max_runtime_inputs":
        return len(runtime) <= int(value)
    if rule == "constant_input":
        i = int(value)
        return len(op.inputs) > i and op.inputs[i].is_constant
    if rule == "runtime_input":
        i = int(value)
        return len(op.inputs) > i and not op.inputs[i].is_constant
    if rule == "input_rank_in":
        return bool(op.inputs) and len(op.inputs[0].shape) in set(value)
    if rule == "options_zero":
        return not any(op.options.get(k) for k in value)
    if rule == "option_equals":
        key, want = value
        got = op.options.get(key, want)
        return bool(got == want) if not isinstance(want, float) else abs(float(got) - want) < 1e-6
    if rule == "depth_multiplier":
        cin = op.inputs[0].shape[-1] if op.inputs and op.inputs[0].shape else 1
        return (op.depth_multiplier or 1) == 1 or cin == 1
    if rule == "batch_one":
        out = op.outputs[0].shape if op.outputs else ()
        return len(out) < 4 or max(out[0], 1) == 1
    if rule == "grouped_slices":
        return op.groups <= 1 or _group_channels_ok(op)
    return _one_side_broadcast(op)


def _group_channels_ok(op: Op) -> bool:
    weights = op.inputs[1].shape if len(op.inputs) > 1 else ()
    if len(weights) != 4:
        return True
    per_group_in, per_group_out = weights[3], weights[0] // max(op.groups, 1)
    return per_group_in % 4 == 0 and per_group_out % 4 == 0


def _one_side_broadcast(op: Op) -> bool:
    if len(op.inputs) != 2:
        return True
    # a dynamic dimension (-1) is 1 at run time, as the batch of an export
    a = tuple(max(d, 1) for d in op.inputs[0].shape)
    b = tuple(max(d, 1) for d in op.inputs[1].shape)
    if len(a) != len(b):
        return True
    a_smaller = any(x < y for x, y in zip(a, b, strict=True))
    b_smaller = any(y < x for x, y in zip(a, b, strict=True))
    return not (a_smaller and b_smaller)


def delegated_ops(
    ops: Sequence[Op], takes: Collection[int], support: BackendSupport
) -> frozenset[int]:
    """The op indices the backend runs on the GPU: ``takes`` (ops it could take), grouped into
    partitions as TFLite's PartitionGraphIntoIndependentNodeSubsets does (a greedy sweep that
    keeps adding ready ops of the current kind), then the largest ``max_delegated_partitions``
    of them (0: all; ties: the earlier partition, as a stable sort keeps it)."""
    subsets = partition_subsets(ops, takes)
    gpu = [s for s in subsets if s[0] in takes]
    limit = support.max_delegated_partitions
    if limit > 0:
        gpu = sorted(gpu, key=len, reverse=True)[:limit]
    return frozenset(i for s in gpu for i in s)


def partition_subsets(ops: Sequence[Op], takes: Collection[int]) -> list[tuple[int, ...]]:
    """Ops (by index) in the node subsets TFLite forms: each subset holds ops of one kind
    (taken by the delegate or not) whose inputs come from earlier subsets or the graph."""
    producer = {t.index: op.index for op in ops for t in op.outputs}
    needs = {op.index: {producer[t.index] for t in op.inputs if t.index in producer} for op in ops}
    done: set[int] = set()
    subsets: list[tuple[int, ...]] = []
    while len(done) < len(ops):
        kind: bool | None = None
        subset: list[int] = []
        grew = True
        while grew:
            grew = False
            for op in ops:
                i = op.index
                if i in done or not needs[i] <= done:
                    continue
                mine = i in takes
                if kind is None:
                    kind = mine
                if mine == kind:
                    subset.append(i)
                    done.add(i)
                    grew = True
        if not subset:  # a cycle cannot happen in a valid model; never loop forever
            raise SpecError("ops depend on each other in a cycle")
        subsets.append(tuple(subset))
    return subsets
