"""``tflat.estimate``: real models, real GPU rules, real bundled predictors.

The invariants users rely on: every op appears exactly once (never dropped), a kernel's time
sits on its main op, fused ops show their kernel and 0 ms, and the rows add up to the total.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tflat.errors import ModelFormatError, PredictorError
from tflat.estimation import BASES, Estimate, Role
from tflat.gpu import partition
from tflat.model import Graph, read_model
from tflat.model.ops import Subgraph
from tflat.pricing.compose import estimate, estimate_with

MODELS = Path(__file__).parent / "models"
VENDORED = sorted(MODELS.glob("*.tflite"))


@pytest.fixture(autouse=True)
def _own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Device lookups may open the default database: never the user's one in tests."""
    monkeypatch.setenv("TFLAT_DB", f"sqlite:///{tmp_path / 'default.db'}")


@pytest.fixture(scope="module")
def pixel4():  # type: ignore[no-untyped-def]
    from tflat.pricing.predictors import load_predictor

    return load_predictor("pixel4")


def check_invariants(graph: Graph, est: Estimate) -> None:
    main = [layer for layer in est.layers if layer.subgraph == 0]
    # Every op of the main subgraph exactly once, in file order; other subgraphs listed too.
    assert [layer.index for layer in main] == [op.index for op in graph.ops]
    assert len(est.layers) == len(graph.all_ops)
    assert [layer.type for layer in main] == [op.type for op in graph.ops]
    # Rows add up to the total (the same sum, in the same order, so exactly).
    assert est.total_ms == sum(layer.latency_ms for layer in est.layers) + est.overhead_ms
    assert est.total_ms == pytest.approx(sum(k.latency_ms for k in est.kernels) + est.overhead_ms)
    assert est.total_low_ms <= est.total_ms <= est.total_high_ms
    assert sum(layer.share for layer in est.layers) == pytest.approx(
        1 - est.overhead_ms / est.total_ms
    )
    # Each kernel's time is on its main op; fused ops carry 0 ms and name their kernel.
    by_index = {layer.index: layer for layer in main}
    for k in est.kernels:
        head = by_index[k.op_indices[0]]
        assert head.kernel is not None and head.kernel.index == k.index
        assert head.latency_ms == k.latency_ms
        assert head.low_ms <= head.latency_ms <= head.high_ms
        for oi in k.op_indices[1:]:
            fused = by_index[oi]
            assert fused.kernel is not None and fused.kernel.index == k.index
            assert fused.latency_ms == 0.0
            assert fused.role in (Role.FUSED, Role.FREE)
    check_bases(est)


def check_bases(est: Estimate) -> None:
    """Every kernel says what its price rests on, and the split adds up."""
    priced = est.total_ms - est.overhead_ms
    assert set(est.basis_ms) == set(BASES)
    assert sum(est.basis_ms.values()) == pytest.approx(priced, rel=1e-12, abs=1e-12)
    assert {k.basis for k in est.kernels} <= set(BASES)
    assert all(k.basis == "free" for k in est.kernels if k.kind == "free")
    kernel_basis = {k.index: k.basis for k in est.kernels}
    for layer in est.layers:
        expected = kernel_basis[layer.kernel.index] if layer.kernel is not None else None
        assert layer.basis == expected
    parts = est.partitions
    assert [i for p in parts for i in p.kernel_indices] == [k.index for k in est.kernels]
    assert sum(p.ms for p in parts) == pytest.approx(priced, rel=1e-12, abs=1e-12)
    learned = est.basis_ms["learned"] / priced if priced > 0 else 1.0
    basis_warnings = [w for w in est.warnings if "is learned from measured kernels" in w]
    assert len(basis_warnings) == (1 if learned < 0.9 else 0)
    assert len(est.warnings) == len(basis_warnings)  # nothing else went wrong


@pytest.mark.parametrize("path", VENDORED, ids=lambda p: p.stem)
def test_every_op_appears_and_rows_add_up(path: Path, pixel4) -> None:  # type: ignore[no-untyped-def]
    graph = read_model(path)
    est = estimate_with(graph, pixel4)
    check_invariants(graph, est)
    assert est.device == "pixel4"
    assert est.model == path.stem
    assert est.total_ms > est.overhead_ms > 0
    # The kernels are the GPU partition's, one for one.
    kernels = partition(graph)
    assert [k.op_indices for k in est.kernels] == [k.op_indices for k in kernels]


def test_fused_activation_shows_its_kernel(pixel4) -> None:  # type: ignore[no-untyped-def]
    graph = read_model(MODELS / "face_detection_short_range.tflite")
    est = estimate_with(graph, pixel4)
    fused = [layer for layer in est.layers if layer.role is Role.FUSED]
    assert any(layer.type == "RELU" for layer in fused)
    for layer in fused:
        assert layer.note.startswith("fused into ")
    # fp16 weights: their constant DEQUANTIZE ops cost nothing.
    deq = [layer for layer in est.layers if layer.type == "DEQUANTIZE"]
    assert deq and all(layer.role is Role.FREE and layer.latency_ms == 0 for layer in deq)


def test_estimate_accepts_a_path_or_a_graph() -> None:
    path = MODELS / "hand_recrop.tflite"
    by_path = estimate(path, device="pixel4")
    by_graph = estimate(read_model(path), device="pixel4")
    assert by_path.total_ms == by_graph.total_ms
    assert by_path.layers == by_graph.layers


def test_other_subgraphs_are_listed_not_dropped(pixel4) -> None:  # type: ignore[no-untyped-def]
    graph = read_model(MODELS / "hand_recrop.tflite")
    body = graph.subgraphs[0]
    extra = Subgraph(
        index=1,
        name="body",
        ops=tuple(dataclasses.replace(op, subgraph=1) for op in body.ops[:5]),
        inputs=body.inputs,
        outputs=body.outputs,
        num_tensors=body.num_tensors,
    )
    two = dataclasses.replace(graph, subgraphs=(body, extra))
    est = estimate_with(two, pixel4)
    check_invariants(two, est)
    others = [layer for layer in est.layers if layer.subgraph == 1]
    assert len(others) == 5
    assert all(layer.role is Role.NOT_ESTIMATED and "subgraph 1" in layer.note for layer in others)
    assert est.total_ms == estimate_with(graph, pixel4).total_ms


def _model_with_unsupported_op(tmp_path: Path) -> Path:
    from tflat.model.writer import GraphBuilder

    b = GraphBuilder(seed=1)
    x = b.input((1, 32, 32, 16))
    y = b.conv2d(x, 16, 3, activation="relu")
    # ZEROS_LIKE: not taken by the GPU delegate. The builder has no public method for it.
    z = b._activation_like(y.shape, y, "zeros")
    b._op("ZEROS_LIKE", [y], [z])
    w = b.conv2d(b.add(y, z), 16, 1)
    b.output(w)
    path = tmp_path / "fallback.tflite"
    path.write_bytes(b.to_bytes())
    return path


def test_unsupported_op_is_flagged_and_costed(tmp_path: Path, pixel4) -> None:  # type: ignore[no-untyped-def]
    graph = read_model(_model_with_unsupported_op(tmp_path))
    est = estimate_with(graph, pixel4)
    check_invariants(graph, est)
    flagged = est.fallback_layers
    # ZEROS_LIKE splits the graph; the delegate takes only the largest partition (the add and
    # the 1x1 conv after it), so the first conv runs on the CPU too (gpu/support.py)
    assert [layer.type for layer in flagged] == ["CONV_2D", "ZEROS_LIKE"]
    conv, zl = flagged
    assert "largest partition" in conv.note
    assert not zl.on_gpu and zl.role is Role.KERNEL
    assert zl.kernel is not None and zl.kernel.kind == "cpu_fallback"
    assert zl.latency_ms > 0
    # both CPU kernels' outputs go up to the add: the copies are counted on their rows
    assert est.transfer_ms > 0
    assert est.cpu_ms + est.transfer_ms == pytest.approx(zl.latency_ms + conv.latency_ms)


def test_unknown_device_names_the_known_ones() -> None:
    with pytest.raises(PredictorError) as err:
        estimate(MODELS / "hand_recrop.tflite", device="nokia3310")
    assert "pixel4" in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelFormatError):
        estimate(bad, device="pixel4")


def test_kernels_without_a_model_are_flagged_not_silent() -> None:
    """A GPU kernel whose kind no regressor covers gets an analytic price (the device's
    launch, bandwidth and throughput rates): its layer says so instead of looking like a
    model's."""
    from tflat.pricing.predictors import load_predictor
    from tflat.report.estimate_text import flag_text

    predictor = load_predictor("pixel4")
    est = estimate_with(read_model(MODELS / "hey_jarvis.tflite"), predictor)
    timed = [x for x in est.layers if x.role is Role.KERNEL and x.on_gpu and x.kernel]
    assert timed
    for layer in timed:
        assert layer.kernel is not None
        assert layer.modelled == predictor.covers(layer.kernel.kind)
    unmodelled = [x for x in timed if not x.modelled]
    assert {x.type for x in unmodelled} >= {"STRIDED_SLICE"}
    for layer in unmodelled:
        assert "no model" in flag_text(layer) and "MB moved" in layer.note
        assert layer.basis == "analytic" and layer.latency_ms > 0
