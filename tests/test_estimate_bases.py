"""What an estimate rests on, end to end through ``tflat.estimate`` on the shipped phones:
the targets of issue 17 on real .tflite files written with tflat's own builder."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import tflat
from pricing_graphs import add_graph, conv_cumsum_conv, nonsquare_conv, save, transformer_bits
from tflat.model.layers import GraphBuilder

DEVICES = sorted(tflat.USC_DEVICES)


def check_sums(est: tflat.Estimate) -> None:
    """basis_ms adds up to total - overhead, and the rows to the total."""
    assert sum(est.basis_ms.values()) == pytest.approx(est.total_ms - est.overhead_ms)
    assert est.total_ms == pytest.approx(sum(x.latency_ms for x in est.layers) + est.overhead_ms)
    data = est.to_dict()
    assert data["basis_ms"] == est.basis_ms and data["transfer_ms"] == est.transfer_ms
    assert {k["basis"] for k in data["kernels"]} <= set(est.basis_ms)


def test_an_add_costs_what_its_size_says(tmp_path: Path) -> None:
    small, big = (tflat.estimate(add_graph(tmp_path, hw), "pixel4") for hw in (7, 112))
    for est in (small, big):
        check_sums(est)
        [k] = est.kernels
        assert k.basis == "analytic" and "MB moved" in k.basis_note
    assert big.kernels[0].latency_ms >= 10 * small.kernels[0].latency_ms


@pytest.mark.parametrize("device", DEVICES)
def test_a_refused_op_runs_on_the_cpu_with_its_copies(tmp_path: Path, device: str) -> None:
    graph = conv_cumsum_conv(tmp_path)
    est = tflat.estimate(graph, device)
    check_sums(est)
    types = {x.index: x.type for x in est.layers}
    [cumsum] = [k for k in est.kernels if types[k.op_indices[0]] == "CUMSUM"]
    assert cumsum.basis == "cpu" and not cumsum.on_gpu
    assert cumsum.latency_ms - cumsum.transfer_ms > 0
    assert est.transfer_ms > 0 and est.cpu_ms > 0
    assert est.basis_ms["cpu"] == pytest.approx(est.cpu_ms + est.transfer_ms)
    assert [p.on_gpu for p in est.partitions] == [True, False]


def test_a_non_square_convolution_is_extrapolated_with_a_wider_interval(tmp_path: Path) -> None:
    est = tflat.estimate(nonsquare_conv(tmp_path), "pixel4")
    check_sums(est)
    convs = [k for k in est.kernels if k.kind == "conv2d"]
    assert len(convs) == 2
    band = math.log(1.2)  # the shipped extrapolation band is wider than the learned one
    for k in convs:
        assert k.basis == "extrapolated"
        assert "non-square kernel (1 by 7)" in k.basis_note and "1x1 convolution" in k.basis_note
        assert math.log(k.high_ms / k.latency_ms) >= band and k.latency_ms > 0
    assert est.basis_ms["learned"] == 0.0
    assert any("extrapolated" in w for w in est.warnings)


def test_a_size_past_the_data_is_extrapolated_and_names_the_feature(tmp_path: Path) -> None:
    """A convolution on a 512x512 image: more output pixels than any USC kernel had."""
    b = GraphBuilder(seed=0)
    b.output(b.conv2d(b.input((1, 512, 512, 8)), 16, 3, activation="relu"))
    inside = GraphBuilder(seed=0)
    inside.output(inside.conv2d(inside.input((1, 56, 56, 64)), 64, 3, activation="relu"))
    far = tflat.estimate(save(b, tmp_path / "big.tflite"), "pixel4")
    near = tflat.estimate(save(inside, tmp_path / "near.tflite"), "pixel4")
    [k] = far.kernels
    assert k.basis == "extrapolated" and "log2_pixels_out" in k.basis_note and ">" in k.basis_note
    assert near.kernels[0].basis == "learned" and not near.kernels[0].basis_note
    spread = far.total_high_ms / far.total_low_ms
    assert spread > near.total_high_ms / near.total_low_ms  # its own wider band in the total


def test_little_learned_time_warns_with_the_kinds(tmp_path: Path) -> None:
    est = tflat.estimate(transformer_bits(tmp_path), "pixel4")
    check_sums(est)
    [warning] = [w for w in est.warnings if "is learned" in w]
    assert warning.startswith("only 0 % of the time")
    for kind in ("batch_matmul", "softmax", "reduce"):
        assert re.search(rf"{kind} \d+ % \(analytic\)", warning)
    assert est.basis_ms["analytic"] > 0
