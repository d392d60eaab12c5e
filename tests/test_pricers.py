"""The analytic, CPU and copy pricers against what each should know (sizes, refused ops,
partition edges) on real .tflite files written with tflat's builder, and the shipped bundles'
pricing sections. (The Pricer contract suite in test_pricing.py runs over them too.)"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pricing_graphs import add_graph, conv_cumsum_conv, conv_reshape_cumsum, transformer_bits
from tflat.errors import PredictorError
from tflat.gpu import partition
from tflat.model.ops import Graph
from tflat.predict.bundles import BUNDLED_DEVICES, bundled_text
from tflat.pricing.analytic import AnalyticPricer
from tflat.pricing.base import Basis, Price, PricingContext
from tflat.pricing.compose import partition_edges
from tflat.pricing.cpu import CpuPricer
from tflat.pricing.edges import TransferPricer

DEVICES = sorted(BUNDLED_DEVICES)


def bundle(device: str) -> dict[str, Any]:
    text = bundled_text(device)
    assert text is not None
    data: dict[str, Any] = json.loads(text)
    return data


def context(graph: Graph, device: str) -> PricingContext:
    b = bundle(device)
    kernels = partition(graph, rules=b["rules"], gpu_family=b["gpu_family"])
    return PricingContext(graph, kernels, {op.index: op for op in graph.ops})


def check_prices(prices: list[Price], n: int, basis: Basis) -> None:
    assert len(prices) == n
    for p in prices:
        assert p.basis == basis
        assert all(math.isfinite(v) for v in (p.ms, p.low_ms, p.high_ms))
        assert 0 < p.low_ms <= p.ms <= p.high_ms
        assert p.note


@pytest.mark.parametrize("device", DEVICES)
def test_contract_edges(tmp_path: Path, device: str) -> None:
    pricer = TransferPricer.from_dict(bundle(device)["pricing"]["edges"])
    ctx = context(conv_cumsum_conv(tmp_path), device)
    edges = partition_edges(ctx.graph, ctx.kernels)
    check_prices(pricer.price_edges(ctx, edges), len(edges), Basis.CPU)


@pytest.mark.parametrize("which", ["analytic", "cpu", "edges"])
def test_bad_sections_are_refused_with_the_problem(which: str) -> None:
    cls: Any = {"analytic": AnalyticPricer, "cpu": CpuPricer, "edges": TransferPricer}[which]
    good = bundle("pixel4")["pricing"][which]
    with pytest.raises(PredictorError, match="malformed"):
        cls.from_dict({k: v for k, v in good.items() if k != "log_interval" or which == "edges"}
                      | {"ms_per_mb": "fast"})  # fmt: skip
    with pytest.raises(PredictorError, match="ms_per_mb"):
        cls.from_dict(good | {"ms_per_mb": -1.0})
    with pytest.raises(PredictorError, match="log_interval"):
        cls.from_dict(good | {"log_interval": [0.2, 0.5]})  # must hold the central price


def test_add_cost_follows_its_size(tmp_path: Path) -> None:
    pricer = AnalyticPricer.from_dict(bundle("pixel4")["pricing"]["analytic"])
    ms = {}
    for hw in (7, 112):
        ctx = context(add_graph(tmp_path, hw), "pixel4")
        [price] = pricer.price(ctx, ctx.kernels)
        ms[hw] = price.ms
    assert ms[112] >= 10 * ms[7]
    # the small one is launch-bound: near the measured floor of a kernel, not free
    assert 0.003 < ms[7] < 0.05


def test_fp32_moves_twice_the_bytes(tmp_path: Path) -> None:
    pricer = AnalyticPricer.from_dict(bundle("pixel4")["pricing"]["analytic"])
    ctx = context(add_graph(tmp_path, 112), "pixel4")
    fp32 = PricingContext(ctx.graph, ctx.kernels, ctx.ops_by_index, precision="fp32")
    assert pricer.price(fp32, ctx.kernels)[0].ms > 1.5 * pricer.price(ctx, ctx.kernels)[0].ms


@pytest.mark.parametrize("device", ["pixel4", "iphonexs"])
def test_cumsum_runs_on_the_cpu_with_copies(tmp_path: Path, device: str) -> None:
    graph = conv_cumsum_conv(tmp_path)
    ctx = context(graph, device)
    cumsum = next(k for k in ctx.kernels if graph.ops[k.main_op].type == "CUMSUM")
    assert cumsum.kind == "cpu_fallback" and not cumsum.on_gpu
    [price] = CpuPricer.from_dict(bundle(device)["pricing"]["cpu"]).price(ctx, [cumsum])
    assert price.basis == Basis.CPU and price.ms > 0
    edges = partition_edges(graph, ctx.kernels)
    transfer = TransferPricer.from_dict(bundle(device)["pricing"]["edges"])
    assert sum(p.ms for p in transfer.price_edges(ctx, edges)) > 0
    # the first conv's output goes down to the CPU; both delegates take only their largest
    # partition (here the first conv: a tie goes to the earlier one), so the second conv
    # runs on the CPU after the CUMSUM: one copy, no upload
    assert [(e.src_kernel, e.to_gpu) for e in edges] == [(0, False)]
    assert edges[0].nbytes == 56 * 56 * 32 * 4


def test_a_copy_crosses_a_reshape(tmp_path: Path) -> None:
    """A free kernel passes its input on: conv -> RESHAPE -> CUMSUM copies the conv's output
    once, paid by the CUMSUM (not by the free reshape)."""
    graph = conv_reshape_cumsum(tmp_path)
    ctx = context(graph, "pixel4")
    kinds = [k.kind for k in ctx.kernels]
    assert kinds == ["conv2d", "free", "cpu_fallback"]
    [edge] = partition_edges(graph, ctx.kernels)
    assert (edge.src_kernel, edge.dst_kernel, edge.to_gpu) == (0, 2, False)
    assert edge.nbytes == 28 * 28 * 32 * 4


def test_transformer_kinds_are_priced_analytically(tmp_path: Path) -> None:
    ctx = context(transformer_bits(tmp_path), "pixel4")
    kinds = {k.kind for k in ctx.kernels}
    assert {"reduce", "batch_matmul", "softmax", "elementwise"} <= kinds
    pricer = AnalyticPricer.from_dict(bundle("pixel4")["pricing"]["analytic"])
    gpu = [k for k in ctx.kernels if k.kind != "free"]
    by_kind = dict(zip((k.kind for k in gpu), pricer.price(ctx, gpu), strict=True))
    # 3 x 197 x 197 x 64 x 2 FLOPs in three launches cost more than a softmax over its output
    assert by_kind["batch_matmul"].ms > by_kind["softmax"].ms > 0


def test_every_bundle_carries_sourced_pricing_sections() -> None:
    for device in DEVICES:
        pricing = bundle(device)["pricing"]
        assert set(pricing) == {"analytic", "cpu", "edges"}
        assert bundle(device)["training_range"]["extrapolation"]["provenance"]["date"]
        prov = bundle(device)["provenance"]["pricing"]
        assert prov["fitted_by"] == "scripts/fit_pricing.py" and prov["date"]
        assert "qed-usc" in prov["source"]["source"]
        assert pricing["analytic"]["gpu_family"] == bundle(device)["gpu_family"]
        cpu = pricing["cpu"]
        # one big core: slower than its GPU on a convolution, faster than 1 GFLOP/s
        assert 1.0 < cpu["ms_per_gflop_dense"] < 1000.0
