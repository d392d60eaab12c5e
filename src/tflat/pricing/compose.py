"""The one place that composes prices into an :class:`~tflat.estimation.Estimate`.

Graph --loaded--> weights as the runtime holds them --partition--> kernels --registry--> a
:class:`~tflat.pricing.base.Price` per kernel --partition edges--> copies --precision--> GPU
prices in the math asked for (:mod:`tflat.pricing.precision`) --compose--> per layer, per
kernel, per partition, total.

Checked here: one price per kernel; the layer rows add up to the total; ``basis_ms`` adds up
to ``total - overhead``. A mismatch is a warning on the estimate (and in the log), never a
silently corrected figure.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tflat.errors import PredictorError
from tflat.estimation import Estimate, KernelEstimate, KernelRef, LayerEstimate, Role
from tflat.model.ops import Graph, Op
from tflat.pricing.base import Basis, PartitionEdge, Price, PricingContext
from tflat.pricing.precision import check_precision, in_precision

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.shapes import InputShapes
    from tflat.pricing.registry import PricerRegistry

log = logging.getLogger(__name__)

#: Below this share of the time (overhead excluded) resting on learned prices, an estimate
#: warns and names the kinds that make up the rest.
LEARNED_SHARE_WARNING = 0.9
#: From this share of the time (overhead excluded) priced with rates borrowed from other phones
#: (a transferred phone's CPU, copies and unmeasured GPU kinds), an estimate warns.
BORROWED_SHARE_WARNING = 0.05


def estimate(
    path_or_graph: str | os.PathLike[str] | Graph,
    device: str = "pixel4",
    db_url: str | None = None,
    input_shapes: InputShapes | None = None,
    precision: str | None = None,
) -> Estimate:
    """Estimate a model (a .tflite path or a read :class:`Graph`) on ``device``, in the GPU
    math ``precision`` ("fp16" or "fp32"; default: the one the device's data was measured in,
    the other one is extrapolated and says so).

    ``input_shapes`` sets the model's input shapes, as :func:`~tflat.model.reader.read_model`
    takes them (needed for an input with a dynamic height or width; a path only).
    Raises :class:`~tflat.errors.ModelFormatError` for an unreadable model and
    :class:`~tflat.errors.PredictorError` for a device without a predictor.
    """
    from tflat.pricing.registry import registry_for

    graph = _as_graph(path_or_graph, input_shapes)
    return compose(graph, registry_for(device, db_url), precision)


def estimate_with(graph: Graph, predictor: object, precision: str | None = None) -> Estimate:
    """Estimate ``graph`` with an already loaded predictor (or a
    :class:`~tflat.pricing.registry.PricerRegistry`): no database or file access."""
    from tflat.pricing.registry import PricerRegistry, registry_of

    registry = predictor if isinstance(predictor, PricerRegistry) else registry_of(predictor)
    return compose(graph, registry, precision)


def _as_graph(
    path_or_graph: str | os.PathLike[str] | Graph, input_shapes: InputShapes | None = None
) -> Graph:
    if isinstance(path_or_graph, Graph):
        if input_shapes:
            raise TypeError("input_shapes applies to a path; read the Graph with them instead")
        return path_or_graph
    from tflat.model import read_model

    return read_model(path_or_graph, input_shapes=input_shapes)


def compose(graph: Graph, registry: PricerRegistry, precision: str | None = None) -> Estimate:
    """Partition ``graph``, price every kernel with its pricer and every partition edge, move
    the GPU prices to ``precision`` when the device's data was measured in the other one, and
    map the prices onto the graph's ops. Never drops an op."""
    learned = registry.learned
    wanted = check_precision(learned, precision)
    graph = learned.loaded(graph)
    kernels = registry.kernels(graph)
    ops_by_index = {op.index: op for op in graph.ops}
    ctx = PricingContext(graph, kernels, ops_by_index, precision=learned.precision)
    prices: dict[int, Price] = {}
    for pricer, group in registry.route(kernels):
        got = pricer.price(ctx, group)
        if len(got) != len(group):
            raise ValueError(f"{type(pricer).__name__} gave {len(got)} prices for {len(group)}")
        prices.update(zip((k.index for k in group), got, strict=True))
    transfers = _transfers(ctx, registry)
    overhead_ms = float(learned.overhead_ms(ctx))
    low, high = _total_interval(kernels, prices, transfers, registry, overhead_ms)
    if not all(math.isfinite(x) for x in (overhead_ms, low, high)):
        raise PredictorError(  # every price was finite: a bundle from outside overflows the sum
            f"the {registry.device} predictor gives {graph.name} a total of {low}..{high} ms "
            f"(overhead {overhead_ms} ms): not a time (a damaged or hostile predictor bundle?)"
        )
    warnings: list[str] = []
    if wanted != ctx.precision:
        base_ms = sum(p.ms for p in prices.values()) + sum(t.ms for t in transfers.values())
        moved = in_precision(ctx, learned, prices, (low, high), base_ms + overhead_ms, wanted)
        prices, low, high = moved.prices, moved.low_ms, moved.high_ms
        warnings.append(moved.warning)
    rows = [_kernel_row(k, prices[k.index], transfers.get(k.index)) for k in kernels]
    owner = _owners(kernels, ops_by_index, warnings)
    from tflat.model.shapes import unresolved_warnings

    warnings.extend(unresolved_warnings(graph.ops))
    by_kernel = {k.index: (k, r) for k, r in zip(kernels, rows, strict=True)}
    drafts = [_main_row(op, owner.get(op.index), by_kernel, ops_by_index, warnings)
              for op in graph.ops]  # fmt: skip
    drafts += [_other_subgraph_row(op) for sg in graph.subgraphs[1:] for op in sg.ops]
    total_ms = sum(d["latency_ms"] for d in drafts) + overhead_ms
    _check_sums(total_ms, overhead_ms, rows, warnings)
    for w in warnings:
        log.warning("%s: %s", graph.name, w)
    # what the figures rest on is the estimate's to show, not a fault to log
    warnings += _basis_warning(kernels, rows, total_ms - overhead_ms)
    warnings += _borrowed_warning(registry, kernels, rows, total_ms - overhead_ms)
    layers = tuple(
        LayerEstimate(**d, share=(d["latency_ms"] / total_ms if total_ms > 0 else 0.0))
        for d in drafts
    )
    return Estimate(
        model=graph.name,
        device=registry.device,
        layers=layers,
        overhead_ms=overhead_ms,
        total_ms=total_ms,
        total_low_ms=low,
        total_high_ms=high,
        interval=learned.interval,
        kernels=tuple(rows),
        total_flops=sum(op.flops for op in graph.ops),
        warnings=tuple(warnings),
        precision=wanted,
        measured_precision=ctx.precision,
        cpu_io_ms=float(learned.cpu_io_ms(ctx)),
    )


def partition_edges(graph: Graph, kernels: Sequence[Kernel]) -> list[PartitionEdge]:
    """Tensors written by a kernel on one side (delegate or CPU) and read by a kernel on the
    other, once per tensor and reading side. Free kernels sit on no side: a reshape passes its
    input through, so a tensor reshaped on the way from one side to the other is still copied
    (once, at its producer's size)."""
    side: dict[int, tuple[int, bool]] = {}  # op index -> (kernel index, on the delegate)
    passes: dict[int, int] = {}  # tensor written by a free op -> the tensor it passes on
    for k in kernels:
        if k.kind != "free":
            side.update((i, (k.index, k.on_gpu)) for i in k.op_indices)
    by_index = {op.index: op for op in graph.ops}
    for k in kernels:
        for op in (by_index[i] for i in k.op_indices if k.kind == "free" and i in by_index):
            if op.activations:
                passes.update((t.index, op.activations[0].index) for t in op.outputs)
    producer: dict[int, tuple[int, bool, int]] = {}  # tensor -> (kernel, side, nbytes)
    for op in graph.ops:
        if op.index in side:
            producer.update((t.index, (*side[op.index], t.nbytes)) for t in op.outputs)
    edges: dict[tuple[int, bool], PartitionEdge] = {}
    for op in graph.ops:
        if op.index not in side:
            continue
        dst, dst_gpu = side[op.index]
        for t in op.activations:
            source, hops = t.index, 0
            while source in passes and hops < len(passes):
                source, hops = passes[source], hops + 1
            src = producer.get(source)
            if src is None or src[1] == dst_gpu or (source, dst_gpu) in edges:
                continue
            edges[(source, dst_gpu)] = PartitionEdge(source, src[2], dst_gpu, src[0], dst)
    return list(edges.values())


def _transfers(ctx: PricingContext, registry: PricerRegistry) -> dict[int, Price]:
    """Kernel index -> the copies it pays (on the CPU side of each edge), when the device
    prices edges."""
    if registry.edges is None:
        return {}
    edges = partition_edges(ctx.graph, ctx.kernels)
    got = registry.edges.price_edges(ctx, edges)
    if len(got) != len(edges):
        raise ValueError(f"edge pricer gave {len(got)} prices for {len(edges)} edges")
    out: dict[int, Price] = {}
    for edge, p in zip(edges, got, strict=True):
        cpu_side = edge.src_kernel if edge.to_gpu else edge.dst_kernel
        if cpu_side is None:
            continue
        before = out.get(cpu_side, Price.free())
        out[cpu_side] = Price(before.ms + p.ms, before.low_ms + p.low_ms,
                              before.high_ms + p.high_ms, Basis.CPU)  # fmt: skip
    return out


def _total_interval(
    kernels: Sequence[Kernel],
    prices: Mapping[int, Price],
    transfers: Mapping[int, Price],
    registry: PricerRegistry,
    overhead_ms: float,
) -> tuple[float, float]:
    """The learned predictor's interval of its own part and the overhead (its way: a ratio of
    the total, or deviations in quadrature), widened by every other price's interval in full
    (errors of one basis move together: a rate fitted too low prices every kernel of that
    basis too low)."""
    learned = registry.learned
    mine: list[Price] = []
    others: list[Price] = list(transfers.values())
    for k in kernels:
        p = prices[k.index]
        ours = registry.pricer_for(k) is learned and learned.in_total_band(p)
        (mine if ours else others).append(p)
    low, high = registry.learned.total_interval(
        sum(p.ms for p in mine) + overhead_ms, overhead_ms, mine
    )
    return float(low + sum(p.low_ms for p in others)), float(high + sum(p.high_ms for p in others))


def _kernel_row(kernel: Kernel, price: Price, transfer: Price | None) -> KernelEstimate:
    copy = transfer or Price.free()
    note = price.note if price.basis == Basis.ANALYTIC and price.note else kernel.note
    return KernelEstimate(
        index=kernel.index,
        name=kernel.name,
        kind=kernel.kind,
        op_indices=tuple(kernel.op_indices),
        on_gpu=kernel.on_gpu,
        latency_ms=float(price.ms + copy.ms),
        low_ms=float(price.low_ms + copy.low_ms),
        high_ms=float(price.high_ms + copy.high_ms),
        note=note,
        basis=str(price.basis),
        basis_note=price.note,
        transfer_ms=float(copy.ms),
    )


def _owners(
    kernels: Sequence[Kernel], ops_by_index: Mapping[int, Op], warnings: list[str]
) -> dict[int, tuple[int, bool]]:
    """Op index -> (kernel index, is its main op); ops claimed twice or unknown are warned."""
    owner: dict[int, tuple[int, bool]] = {}
    for kernel in kernels:
        for pos, oi in enumerate(kernel.op_indices):
            if oi not in ops_by_index:
                warnings.append(f"kernel {kernel.index} names op {oi}, not in the model")
            elif oi in owner:
                warnings.append(f"op {oi} is in kernels {owner[oi][0]} and {kernel.index}")
            else:
                owner[oi] = (kernel.index, pos == 0)
    return owner


def _shape(op: Op) -> tuple[int, ...]:
    return tuple(op.outputs[0].shape) if op.outputs else ()


def _unpriced(op: Op, note: str) -> dict[str, Any]:
    """The row of an op no kernel prices (outside the main subgraph, or in no kernel)."""
    return {
        "index": op.index,
        "type": op.type,
        "output_shape": _shape(op),
        "flops": op.flops,
        "known": op.known,
        "subgraph": op.subgraph,
        "kernel": None,
        "role": Role.NOT_ESTIMATED,
        "latency_ms": 0.0,
        "low_ms": 0.0,
        "high_ms": 0.0,
        "on_gpu": False,
        "fallback": False,
        "note": note,
    }


def _main_row(
    op: Op,
    owned: tuple[int, bool] | None,
    by_kernel: Mapping[int, tuple[Kernel, KernelEstimate]],
    ops_by_index: Mapping[int, Op],
    warnings: list[str],
) -> dict[str, Any]:
    if owned is None:
        warnings.append(f"op {op.index} ({op.type}) is in no kernel: not estimated")
        return _unpriced(op, "in no kernel of the GPU partition: not estimated")
    kernel, row = by_kernel[owned[0]]
    base = _unpriced(op, row.note) | {
        "kernel": KernelRef(index=kernel.index, name=kernel.name, kind=kernel.kind),
        "on_gpu": kernel.on_gpu,
        "fallback": not kernel.on_gpu,
        "basis": row.basis,
    }
    free = kernel.kind == "free"
    if owned[1]:
        return base | {
            "role": Role.FREE if free else Role.KERNEL,
            "latency_ms": row.latency_ms,
            "low_ms": row.low_ms,
            "high_ms": row.high_ms,
            "modelled": row.basis != Basis.ANALYTIC,
        }
    main = ops_by_index.get(kernel.op_indices[0])
    main_text = f"{main.type} #{main.index}" if main is not None else f"#{kernel.op_indices[0]}"
    return base | {"role": Role.FREE if free else Role.FUSED, "note": f"fused into {main_text}"}


def _other_subgraph_row(op: Op) -> dict[str, Any]:
    return _unpriced(op, f"in subgraph {op.subgraph}: only the main subgraph is estimated")


def _check_sums(
    total_ms: float, overhead_ms: float, rows: Sequence[KernelEstimate], warnings: list[str]
) -> None:
    kernel_sum = sum(r.latency_ms for r in rows)
    if not math.isclose(total_ms - overhead_ms, kernel_sum, rel_tol=1e-9, abs_tol=1e-9):
        warnings.append(
            f"layer rows add up to {total_ms - overhead_ms:.6g} ms, kernels to {kernel_sum:.6g} ms"
        )


def _basis_warning(
    kernels: Sequence[Kernel], rows: Sequence[KernelEstimate], priced_ms: float
) -> list[str]:
    """A warning naming the kinds that are not learned, when learned prices hold less than
    :data:`LEARNED_SHARE_WARNING` of the time (overhead excluded)."""
    if priced_ms <= 0:
        return []
    learned = sum(r.latency_ms for r in rows if r.basis == Basis.LEARNED)
    if learned >= LEARNED_SHARE_WARNING * priced_ms:
        return []
    rest: dict[tuple[str, str], float] = {}
    for k, r in zip(kernels, rows, strict=True):
        if r.basis not in (Basis.LEARNED, Basis.FREE):
            rest[(k.kind, r.basis)] = rest.get((k.kind, r.basis), 0.0) + r.latency_ms
    named = sorted(rest.items(), key=lambda item: -item[1])
    parts = ", ".join(f"{kind} {_percent(ms / priced_ms)} ({basis})"
                      for (kind, basis), ms in named)  # fmt: skip
    return [
        f"only {100 * learned / priced_ms:.0f} % of the time (overhead excluded) is learned "
        f"from measured kernels of the same kind; the rest: {parts}"
    ]


def _borrowed_warning(
    registry: PricerRegistry,
    kernels: Sequence[Kernel],
    rows: Sequence[KernelEstimate],
    priced_ms: float,
) -> list[str]:
    """A warning when :data:`BORROWED_SHARE_WARNING` or more of the time (overhead excluded)
    rests on rates borrowed from other phones (a section's ``borrowed_from``)."""
    lenders: set[str] = set()
    ms = 0.0
    for k, r in zip(kernels, rows, strict=True):
        pricer = registry.pricer_for(k)
        own = tuple(getattr(getattr(pricer, "params", None), "borrowed_from", ()))
        edges = tuple(getattr(getattr(registry.edges, "params", None), "borrowed_from", ()))
        part = (r.latency_ms - r.transfer_ms if own else 0.0) + (r.transfer_ms if edges else 0.0)
        if part > 0:
            ms += part
            lenders.update(own if own and r.latency_ms > r.transfer_ms else edges)
    if priced_ms <= 0 or ms < BORROWED_SHARE_WARNING * priced_ms:
        return []
    return [
        f"{_percent(ms / priced_ms)} of the time (overhead excluded) is priced with rates "
        f"borrowed from source phones ({', '.join(sorted(lenders))}), not measured on "
        f"{registry.device} (its CPU ops, GPU<->CPU copies, GPU kinds nobody measured)"
    ]


def _percent(share: float) -> str:
    """A share as a whole percentage; a kind too small to round to 1 % still shows."""
    return f"{100 * share:.0f} %" if share >= 0.005 else "<1 %"
