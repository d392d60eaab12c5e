"""Pricing: the contract every pricer keeps (one suite over all of them), the registry's
routing and its hook for further pricers, and composition into an estimate.

Real parts only: the shipped phone predictors, a calibrated-style CPU predictor fitted here on
kernels of real models, real .tflite files written by tflat's own writer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tflat.cpu.features import kernel_rows
from tflat.cpu.predictor import CpuPredictor
from tflat.cpu.regressor import TrainingRow, fit_models
from tflat.cpu.xnnpack import partition as xnnpack_partition
from tflat.gpu.kernel import Kernel
from tflat.model import Graph, read_model
from tflat.pricing.analytic import AnalyticPricer
from tflat.pricing.base import (
    Basis,
    EdgePricer,
    PartitionEdge,
    Price,
    Pricer,
    PricingContext,
)
from tflat.pricing.compose import compose, estimate_with, partition_edges
from tflat.pricing.cpu import CpuPricer
from tflat.pricing.learned import CpuLearnedPricer, GpuLearnedPricer
from tflat.pricing.predictors import load_predictor
from tflat.pricing.registry import FreePricer, PricerRegistry, registry_of

MODELS = Path(__file__).parent / "models"
VENDORED = sorted(MODELS.glob("*.tflite"))


@pytest.fixture(autouse=True)
def _own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFLAT_DB", f"sqlite:///{tmp_path / 'default.db'}")


def cpu_predictor() -> CpuPredictor:
    """A CPU predictor fitted on the XNNPACK kernels of the vendored models, labelled with a
    simple work model (the pricer's contract, not its accuracy, is under test here)."""
    rows = []
    for path in VENDORED:
        graph = read_model(path)
        kernels = xnnpack_partition(graph)
        for k, (op_type, f) in zip(kernels, kernel_rows(graph, kernels), strict=True):
            if k.kind == "free":
                continue
            ms = 2e-10 * f["flops"] + 1e-8 * (f["in_bytes"] + f["out_bytes"]) + 0.002
            rows.append(TrainingRow(op_type, k.kind, f, ms))
    models = fit_models(rows)
    spread = {key: (0.8, 1.3) for key in models}
    return CpuPredictor("test-cpu", models, invoke_overhead_ms=0.05,
                        fallback_overhead_ms=0.01, spread=spread)  # fmt: skip


_CPU = cpu_predictor()


def gpu(device: str) -> GpuLearnedPricer:
    predictor = load_predictor(device)
    assert not isinstance(predictor, CpuPredictor)
    return GpuLearnedPricer(predictor)


def section(device: str, name: str) -> Mapping[str, Any]:
    """A shipped bundle's ``pricing.<name>`` section."""
    return dict(load_predictor(device).bundle["pricing"][name])


def learned_only(device: str) -> PricerRegistry:
    """The registry of a shipped phone without its pricing sections."""
    return PricerRegistry(gpu(device))


class Bytes(Pricer):
    """A size-aware analytic pricer (launch + bytes / bandwidth), made from a bundle section
    as the registry's hook makes every plugged-in pricer."""

    basis = Basis.ANALYTIC

    def __init__(self, launch_ms: float, gb_per_s: float) -> None:
        self.launch_ms, self.gb_per_s = launch_ms, gb_per_s

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bytes:
        return cls(float(data["launch_ms"]), float(data["gb_per_s"]))

    def price(self, ctx: PricingContext, kernels: Sequence[Kernel]) -> list[Price]:
        out = []
        for k in kernels:
            op = ctx.ops_by_index[k.main_op]
            nbytes = sum(t.nbytes for t in (*op.activations, *op.outputs))
            ms = self.launch_ms + nbytes / (self.gb_per_s * 1e6)
            out.append(Price(ms, ms / 2, ms * 2, Basis.ANALYTIC, f"{nbytes} bytes"))
        return out


class Copies(EdgePricer):
    """GPU<->CPU copies: a sync plus bytes over a bus."""

    def __init__(self, sync_ms: float, gb_per_s: float) -> None:
        self.sync_ms, self.gb_per_s = sync_ms, gb_per_s

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Copies:
        return cls(float(data["sync_ms"]), float(data["gb_per_s"]))

    def price_edges(self, ctx: PricingContext, edges: Sequence[PartitionEdge]) -> list[Price]:
        out = []
        for e in edges:
            ms = self.sync_ms + e.nbytes / (self.gb_per_s * 1e6)
            out.append(Price(ms, ms, 2 * ms, Basis.CPU, "copy"))
        return out


#: Every Pricer implementation, by name: (factory, the kernels it is asked to price).
PRICERS: dict[str, tuple[Callable[[], Pricer], Callable[[Kernel], bool]]] = {
    "free": (FreePricer, lambda k: k.kind == "free"),
    "gpu-learned-pixel4": (lambda: gpu("pixel4"), lambda k: True),
    "gpu-learned-iphonexs": (lambda: gpu("iphonexs"), lambda k: True),
    "cpu-learned": (lambda: CpuLearnedPricer(_CPU), lambda k: True),
    "analytic-bytes": (lambda: Bytes(0.003, 20.0), lambda k: k.kind != "free"),
    "analytic-pixel4": (lambda: AnalyticPricer.from_dict(section("pixel4", "analytic")),
                        lambda k: k.on_gpu and k.kind != "free"),
    "analytic-a03s": (lambda: AnalyticPricer.from_dict(section("a03s", "analytic")),
                      lambda k: k.on_gpu and k.kind != "free"),
    "cpu-pixel4": (lambda: CpuPricer.from_dict(section("pixel4", "cpu")), lambda k: not k.on_gpu),
    "cpu-iphone7": (lambda: CpuPricer.from_dict(section("iphone7", "cpu")),
                    lambda k: not k.on_gpu),
}  # fmt: skip


def _context(pricer: Pricer, graph: Graph) -> PricingContext:
    kernels = pricer.kernels(graph) if isinstance(pricer, (GpuLearnedPricer, CpuLearnedPricer)) \
        else gpu("pixel4").kernels(graph)  # fmt: skip
    return PricingContext(graph, kernels, {op.index: op for op in graph.ops})


@pytest.mark.parametrize("name", sorted(PRICERS))
@pytest.mark.parametrize("path", VENDORED, ids=lambda p: p.stem)
def test_pricer_contract(name: str, path: Path) -> None:
    """One price per kernel, in order; finite; an ordered interval; a basis; pure."""
    make, takes = PRICERS[name]
    pricer = make()
    ctx = _context(pricer, read_model(path))
    kernels = [k for k in ctx.kernels if takes(k)]
    prices = pricer.price(ctx, kernels)
    assert len(prices) == len(kernels)
    for p in prices:
        assert isinstance(p, Price) and isinstance(p.basis, Basis)
        assert all(math.isfinite(x) for x in (p.ms, p.low_ms, p.high_ms))
        assert 0.0 <= p.low_ms <= p.ms <= p.high_ms
    for k, p in zip(kernels, prices, strict=True):
        if k.kind == "free" and name != "analytic-bytes":
            assert p.basis == Basis.FREE and p.ms == 0.0
    assert pricer.price(ctx, kernels) == prices  # pure: same input, same output
    # a kernel's price does not depend on which others are asked with it
    if kernels:
        assert pricer.price(ctx, kernels[-1:]) == prices[-1:]


def test_free_pricer_refuses_a_kernel_that_is_not_free() -> None:
    graph = read_model(MODELS / "hand_recrop.tflite")
    pricer = gpu("pixel4")
    ctx = PricingContext(graph, pricer.kernels(graph), {op.index: op for op in graph.ops})
    busy = [k for k in ctx.kernels if k.kind != "free"][:1]
    with pytest.raises(ValueError):
        FreePricer().price(ctx, busy)


@pytest.mark.parametrize("device", ["pixel4", "s10", "mi8se", "a03s", "iphone7", "iphonexs"])
@pytest.mark.parametrize("path", VENDORED, ids=lambda p: p.stem)
def test_estimate_keeps_the_predictors_figures(device: str, path: Path) -> None:
    """The learned pricer changes no number of its predictor: kernel by kernel, and the
    total's interval where every price is learned (an extrapolated one adds its own wider
    bounds); op-order and kernel-order sums of the total agree to rounding."""
    predictor = load_predictor(device)
    graph = read_model(path)
    gp = predictor.predict_graph(graph)
    est = estimate_with(graph, learned_only(device))
    assert [k.latency_ms for k in est.kernels] == [t.latency_ms for t in gp.kernel_times]
    assert [k.low_ms for k in est.kernels] == [t.low_ms for t in gp.kernel_times]
    if "extrapolated" not in {k.basis for k in est.kernels}:
        assert (est.total_low_ms, est.total_high_ms) == (gp.total_low_ms, gp.total_high_ms)
    else:
        assert est.total_low_ms <= gp.total_low_ms and est.total_high_ms >= gp.total_high_ms
    assert est.total_ms == pytest.approx(gp.total_ms, rel=1e-12)
    assert est.overhead_ms == gp.overhead_ms
    assert est.precision == "fp16"


@pytest.mark.parametrize("path", VENDORED, ids=lambda p: p.stem)
def test_cpu_estimate_keeps_the_predictors_figures(path: Path) -> None:
    graph = read_model(path)
    gp = _CPU.predict_graph(graph)
    est = estimate_with(graph, _CPU)
    assert [k.latency_ms for k in est.kernels] == [t.latency_ms for t in gp.kernel_times]
    assert (est.total_low_ms, est.total_high_ms) == (gp.total_low_ms, gp.total_high_ms)
    assert est.total_ms == pytest.approx(gp.total_ms, rel=1e-12)
    assert est.precision == "fp32"
    own = {k.index: k for k in est.kernels}
    for k in est.kernels:
        if k.basis == "extrapolated":
            assert "pooled model kind:" in k.basis_note
        if not k.on_gpu and k.kind != "free":
            assert own[k.index].basis == "cpu"


@pytest.mark.parametrize("sections", [False, True], ids=["learned-only", "shipped"])
def test_gpu_bases_say_what_a_price_rests_on(sections: bool) -> None:
    """Without sections the learned pricer answers for every kind (rough figures from its
    whole-model fit, no copies); with the shipped ones the analytic, CPU and copy pricers do."""
    graph = read_model(MODELS / "hey_jarvis.tflite")
    est = estimate_with(graph, registry_of(load_predictor("pixel4")) if sections
                        else learned_only("pixel4"))  # fmt: skip
    by_kind: dict[str, set[str]] = {}
    for k in est.kernels:
        by_kind.setdefault(k.kind, set()).add(k.basis)
    # its one convolution is 1x5 on a tiny input: outside what the square USC kernels cover
    assert by_kind["conv2d"] == {"extrapolated"}
    [conv] = [k for k in est.kernels if k.kind == "conv2d"]
    assert "non-square kernel (1 by 5)" in conv.basis_note and "log2_flops_eff" in conv.basis_note
    assert by_kind["depthwise_conv2d"] == {"extrapolated"}  # 1x5 .. 1x21 depthwise
    assert "learned" in by_kind["fully_connected"]
    assert by_kind["free"] == {"free"}
    assert by_kind["cpu_fallback"] == {"cpu"}
    assert by_kind["elementwise"] == {"analytic"}
    analytic = [k for k in est.kernels if k.basis == "analytic"]
    cpu = [k for k in est.kernels if k.basis == "cpu"]
    if sections:
        assert all("MB moved" in k.basis_note for k in analytic)
        assert all("priced on the CPU" in k.basis_note for k in cpu)
        assert est.transfer_ms > 0
        assert est.basis_ms["cpu"] == pytest.approx(est.cpu_ms + est.transfer_ms)
    else:
        assert all("whole-model fit" in k.basis_note for k in analytic)
        assert est.cpu_ms == pytest.approx(est.basis_ms["cpu"])  # no copies: cpu is compute
        assert est.transfer_ms == 0.0
    assert any("learned from measured kernels" in w and "cpu_fallback" in w for w in est.warnings)


def _fallback_model(tmp_path: Path) -> Graph:
    from tflat.model.writer import GraphBuilder

    b = GraphBuilder(seed=1)
    x = b.input((1, 32, 32, 16))
    y = b.conv2d(x, 16, 3, activation="relu")
    z = b._activation_like(y.shape, y, "zeros")  # ZEROS_LIKE: the GPU delegate refuses it
    b._op("ZEROS_LIKE", [y], [z])
    b.output(b.conv2d(b.add(y, z), 16, 1))
    path = tmp_path / "fallback.tflite"
    path.write_bytes(b.to_bytes())
    return read_model(path)


def test_partition_edges_cross_sides_once_per_tensor(tmp_path: Path) -> None:
    graph = _fallback_model(tmp_path)
    kernels = gpu("pixel4").kernels(graph)
    edges = partition_edges(graph, kernels)
    side = {k.index: k.on_gpu for k in kernels}
    # only the largest partition (the add and the 1x1 conv) runs on the GPU: the first conv
    # and the ZEROS_LIKE run on the CPU, and both their outputs go up to the add
    assert [e.to_gpu for e in edges] == [True, True]
    for e in edges:
        assert e.src_kernel is not None and e.dst_kernel is not None
        assert side[e.src_kernel] != side[e.dst_kernel] and side[e.dst_kernel] == e.to_gpu
        assert e.nbytes == 32 * 32 * 16 * 4


def test_sections_plug_pricers_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle's optional "pricing" sections replace the learned pricer's rough answers:
    kinds without a regressor go to the analytic section's pricer, copies at partition edges
    are priced and counted with the CPU kernels they serve; rows still add up."""
    here = {"analytic": f"{__name__}:Bytes", "edges": f"{__name__}:Copies"}
    monkeypatch.setattr(PricerRegistry, "SECTIONS", here)
    predictor = load_predictor("pixel4")
    graph = _fallback_model(tmp_path)
    plain = estimate_with(graph, learned_only("pixel4"))
    sections = {"analytic": {"launch_ms": 0.004, "gb_per_s": 10},
                "edges": {"sync_ms": 0.05, "gb_per_s": 5}}  # fmt: skip
    bundle = {**predictor.bundle, "pricing": sections}
    registry = PricerRegistry.from_bundle(GpuLearnedPricer(predictor), bundle)
    est = compose(graph, registry)
    assert est.transfer_ms == pytest.approx(2 * (0.05 + 65536 / 5e6))
    assert est.basis_ms["cpu"] == pytest.approx(est.cpu_ms + est.transfer_ms)
    assert sum(est.basis_ms.values()) == pytest.approx(est.total_ms - est.overhead_ms)
    assert est.total_ms == sum(layer.latency_ms for layer in est.layers) + est.overhead_ms
    adds = [k for k in est.kernels if k.kind == "elementwise"]
    assert adds and all(k.basis == "analytic" and "bytes" in k.basis_note for k in adds)
    # what no section replaces keeps the learned figures
    same = [(a.latency_ms, b.latency_ms) for a, b in zip(plain.kernels, est.kernels, strict=True)
            if a.kind == "conv2d"]  # fmt: skip
    assert same and all(a == b for a, b in same)
    assert est.total_high_ms > plain.total_high_ms


def test_a_section_without_a_pricer_is_a_clear_error() -> None:
    from tflat.errors import PredictorError

    predictor = load_predictor("pixel4")
    bundle = {**predictor.bundle, "pricing": {"no_such_pricer": {}}}
    with pytest.raises(PredictorError, match="no_such_pricer"):
        PricerRegistry.from_bundle(GpuLearnedPricer(predictor), bundle)


def test_without_sections_the_registry_routes_to_the_learned_pricer() -> None:
    registry = learned_only("pixel4")
    graph = read_model(MODELS / "hey_jarvis.tflite")
    for k in registry.kernels(graph):
        pricer = registry.pricer_for(k)
        assert pricer is (registry.free if k.kind == "free" else registry.learned)


def test_another_precision_moves_every_gpu_price_whoever_priced_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp32 math on a phone measured in fp16: every GPU kernel's price moves (learned ones
    become extrapolated, an analytic section's stays analytic, both say so in their note),
    CPU kernels and the copies at partition edges keep theirs, the rows still add up."""
    here = {"analytic": f"{__name__}:Bytes", "edges": f"{__name__}:Copies"}
    monkeypatch.setattr(PricerRegistry, "SECTIONS", here)
    predictor = load_predictor("pixel4")
    sections = {"analytic": {"launch_ms": 0.004, "gb_per_s": 10},
                "edges": {"sync_ms": 0.05, "gb_per_s": 5}}  # fmt: skip
    registry = PricerRegistry.from_bundle(
        GpuLearnedPricer(predictor), {**predictor.bundle, "pricing": sections}
    )
    graph = _fallback_model(tmp_path)
    base, fp32 = compose(graph, registry), compose(graph, registry, "fp32")
    assert (base.precision, fp32.precision, fp32.measured_precision) == ("fp16", "fp32", "fp16")
    moved = []
    for a, b in zip(base.kernels, fp32.kernels, strict=True):
        if a.on_gpu and a.kind != "free":
            # a kernel all launch (as the learned predictor splits it) keeps its time
            moved.append(b.latency_ms / a.latency_ms)
            assert a.latency_ms <= b.latency_ms <= 2 * a.latency_ms
            assert b.basis == ("analytic" if a.basis == "analytic" else "extrapolated")
            assert "fp32 math extrapolated from fp16" in b.basis_note
        else:
            assert (b.latency_ms, b.transfer_ms, b.basis) == (a.latency_ms, a.transfer_ms, a.basis)
    # on the GPU: the add and the 1x1 conv (only the largest partition is delegated)
    assert len(moved) >= 2 and max(moved) > 1.2 and fp32.basis_ms["learned"] == 0.0
    assert fp32.total_ms == sum(layer.latency_ms for layer in fp32.layers) + fp32.overhead_ms
    assert sum(fp32.basis_ms.values()) == pytest.approx(fp32.total_ms - fp32.overhead_ms)
    assert base.total_low_ms <= fp32.total_low_ms <= fp32.total_ms <= fp32.total_high_ms
    assert fp32.warnings[0].startswith("fp32 math is extrapolated from fp16 measurements")


def test_a_predictor_that_cannot_split_its_times_prices_its_own_precision_only() -> None:
    from tflat.errors import PredictorError, SpecError

    graph = read_model(MODELS / "hand_recrop.tflite")
    own = estimate_with(graph, _CPU)
    assert estimate_with(graph, _CPU, precision="fp32").total_ms == own.total_ms
    assert own.precision_basis == "learned"
    with pytest.raises(PredictorError, match="test-cpu computes in fp32 only"):
        estimate_with(graph, _CPU, precision="fp16")
    with pytest.raises(SpecError, match="fp16 or fp32"):
        estimate_with(graph, load_predictor("pixel4"), precision="fp8")
