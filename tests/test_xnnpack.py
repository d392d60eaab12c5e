"""The XNNPACK rules: what LiteRT's CPU delegate takes, fuses and folds, on real models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflat import read_model
from tflat.cpu.delegates import partition
from tflat.cpu.xnnpack import delegate_partitions, load_rules
from tflat.cpu.xnnpack import partition as xnn_partition
from tflat.gpu import KINDS
from tflat.model.writer import GraphBuilder

MODELS = Path(__file__).parent / "models"
REAL = sorted(MODELS.glob("*.tflite"))


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_op_is_in_exactly_one_kernel(path: Path) -> None:
    graph = read_model(path)
    kernels = partition(graph, rules="xnnpack")
    seen = [i for k in kernels for i in k.op_indices]
    assert sorted(seen) == [op.index for op in graph.ops]
    assert all(k.kind in KINDS for k in kernels)
    assert [k.index for k in kernels] == list(range(len(kernels)))


def test_partition_by_rules_name_selects_these_rules() -> None:
    graph = read_model(MODELS / "hand_recrop.tflite")
    assert partition(graph, rules="xnnpack") == xnn_partition(graph)


def test_fp16_weights_are_free_and_relu_is_fused_into_its_conv() -> None:
    graph = read_model(MODELS / "face_detection_short_range.tflite")
    kernels = partition(graph, rules="xnnpack")
    by_main = {k.main_op: k for k in kernels}
    dequant = [op for op in graph.ops if op.type == "DEQUANTIZE"]
    assert dequant and all(by_main[op.index].kind == "free" for op in dequant)
    relus = [op for op in graph.ops if op.type == "RELU"]
    fused = [k for k in kernels if len(k.op_indices) > 1]
    # every standalone RELU of this model follows a conv or an add read by nothing else
    assert relus and all(op.index not in by_main for op in relus)
    assert all("RELU fused as the output clamp" in k.note for k in fused)
    assert {graph.ops[k.main_op].type for k in fused} <= {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD"}
    assert all(k.on_gpu for k in kernels)  # everything runs in the delegate
    assert delegate_partitions(kernels) == 1


def test_ops_xnnpack_does_not_take_fall_back_and_split_the_delegate() -> None:
    graph = read_model(MODELS / "nmp.tflite")
    kernels = partition(graph, rules="xnnpack")
    fallback = [k for k in kernels if k.kind == "cpu_fallback"]
    types = {graph.ops[k.main_op].type for k in fallback}
    assert {"PACK", "MIRROR_PAD"} <= types
    assert all(not k.on_gpu and "XNNPACK" in k.note for k in fallback)
    assert delegate_partitions(kernels) > 1
    shape = [k for k in kernels if graph.ops[k.main_op].type == "SHAPE"]
    assert shape and all(k.kind == "free" and not k.on_gpu for k in shape)


def test_zero_spatial_pad_becomes_the_padding_of_the_next_conv() -> None:
    from tflat.model.zoo import build_model

    graph = read_model(build_model("mobilenet", width=0.25, input_size=64))
    kernels = partition(graph, rules="xnnpack")
    pads = [op for op in graph.ops if op.type == "PAD"]
    owner = {i: k for k in kernels for i in k.op_indices}
    assert pads
    for op in pads:
        k = owner[op.index]
        assert graph.ops[k.main_op].type in ("CONV_2D", "DEPTHWISE_CONV_2D")
        assert "PAD fused as the input padding" in k.note


def test_channel_pad_stays_a_kernel_of_its_own() -> None:
    # BlazeFace pads channels before its residual adds: not a convolution's padding
    graph = read_model(MODELS / "face_detection_short_range.tflite")
    kernels = partition(graph, rules="xnnpack")
    pads = [k for k in kernels if graph.ops[k.main_op].type == "PAD"]
    assert len(pads) == 11 and all(k.kind == "pad" and len(k.op_indices) == 1 for k in pads)


def _conv_relu(*, second_reader: bool) -> bytes:
    b = GraphBuilder(seed=1)
    x = b.input((1, 16, 16, 8))
    y = b.conv2d(x, 8, 3)
    z = b.unary("RELU", y)
    if second_reader:
        b.output(z, y)
    else:
        b.output(z)
    return b.to_bytes()


def test_relu_is_not_fused_when_its_input_is_read_elsewhere() -> None:
    alone = partition(read_model(_conv_relu(second_reader=False)), rules="xnnpack")
    shared = partition(read_model(_conv_relu(second_reader=True)), rules="xnnpack")
    assert [len(k.op_indices) for k in alone] == [2]
    assert [len(k.op_indices) for k in shared] == [1, 1]
    assert [k.kind for k in shared] == ["conv2d", "elementwise"]


def test_rules_are_data_with_known_kinds() -> None:
    rules = load_rules()
    assert rules.name == "xnnpack"
    assert {kind for kind, _ in rules.delegated.values()} <= set(KINDS)
    assert rules.fusable_activations <= set(rules.delegated)
    assert "TANH" not in rules.supported_fused_activations


def test_hybrid_depthwise_is_refused_and_hybrid_conv_is_taken() -> None:
    """Dynamic-range ops: XNNPACK quantizes a CONV_2D's input at run time (int8 GEMM) but
    refuses a DEPTHWISE_CONV_2D with float input and int8 weights (mixed types)."""
    from tflat.model.formats import build_in_format

    graph = read_model(build_in_format("mobilenet", "dynamic", width=0.25, input_size=64))
    kernels = partition(graph, rules="xnnpack")
    by_type: dict[str, set[bool]] = {}
    for k in kernels:
        by_type.setdefault(graph.ops[k.main_op].type, set()).add(k.on_gpu)
    assert by_type["CONV_2D"] == {True}
    assert by_type["DEPTHWISE_CONV_2D"] == {False}
    refused = [k for k in kernels if graph.ops[k.main_op].type == "DEPTHWISE_CONV_2D"]
    assert all("int8 weights" in k.note for k in refused)
    fp32 = read_model(build_in_format("mobilenet", "fp32", width=0.25, input_size=64))
    assert all(k.on_gpu for k in partition(fp32, rules="xnnpack"))
