"""GPU delegate rules and partition, on real .tflite files and the USC kernel names."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

import tflat
from tflat.datasets.usc import load_usc
from tflat.gpu import load_gpu_rules, partition, winograd_chosen

MODELS = sorted((Path(__file__).parent / "models").glob("*.tflite"))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_op_in_exactly_one_kernel(path: Path) -> None:
    graph = tflat.read_model(path)
    kernels = partition(graph, gpu_family="adreno")
    covered = Counter(i for k in kernels for i in k.op_indices)
    assert sorted(covered) == sorted(op.index for op in graph.ops)
    assert all(n == 1 for n in covered.values())
    assert [k.index for k in kernels] == list(range(len(kernels)))


def test_activation_links_into_conv() -> None:
    graph = tflat.read_model(MODELS[0])
    by_index = {op.index: op for op in graph.ops}
    linked = [k for k in partition(graph) if len(k.op_indices) > 1 and k.kind == "conv2d"]
    assert linked, "a conv followed by its activation must become one kernel"
    k = linked[0]
    assert by_index[k.op_indices[0]].type == "CONV_2D"
    assert "linked" in k.note and "_linked_" in k.name


def test_constant_dequantize_is_free() -> None:
    graph = tflat.read_model(Path(__file__).parent / "models" / "face_detection_short_range.tflite")
    kernels = partition(graph)
    deq = [k for k in kernels if graph.ops[k.op_indices[0]].type == "DEQUANTIZE"]
    assert deq and all(k.kind == "free" for k in deq)


def test_unsupported_op_falls_back_to_cpu() -> None:
    graph = tflat.read_model(MODELS[0])
    ops = list(graph.ops)
    ops[-1] = dataclasses.replace(ops[-1], type="CUSTOM:NotOnGpu")
    sg = dataclasses.replace(graph.subgraphs[0], ops=tuple(ops))
    g2 = dataclasses.replace(graph, subgraphs=(sg, *graph.subgraphs[1:]))
    last = next(k for k in partition(g2) if ops[-1].index in k.op_indices)
    assert last.kind == "cpu_fallback" and not last.on_gpu and "not supported" in last.note


def test_rules_are_data() -> None:
    rules = load_gpu_rules()
    assert "CONV_2D" in rules.supported and "RELU" in rules.linkable
    assert rules.winograd_thresholds("adreno") == (128, 32)
    assert rules.winograd_thresholds("mali") == (32, 16)  # default section


def test_winograd_rule_reproduces_usc_kernel_names() -> None:
    families = {"pixel4": "adreno", "mi8se": "adreno", "s10": "mali", "a03s": "powervr",
                "iphone7": "apple", "iphonexs": "apple"}  # fmt: skip
    usc = load_usc()
    for dev, fam in families.items():
        rows = [r for r in usc.ops_for(dev) if r.operation == "CONV_2D"]
        assert rows
        for r in rows:
            f = r.feature
            k, s = f["Kernel"], f["Stride"]
            chosen = winograd_chosen(
                kernel=(k, k), stride=(s, s), dilation=(1, 1), groups=f["Group"],
                cin=f["Input_channel"], cout=f["Filter"], out_h=f["Output_shape"],
                out_w=f["Output_shape"], gpu_family=fam,
            )  # fmt: skip
            assert chosen == ("winograd" in r.kernel_name), (dev, r.model, f, r.kernel_name)


def test_conv_constants_rule_explains_the_adreno_first_conv_jump() -> None:
    """On Adreno a conv with <= 32 filters and small weights keeps them in constant memory:
    the Pixel 4's 3x3 stride-2 convs from RGB take < 0.1 ms up to 32 filters, 0.3 ms above."""
    from tflat.gpu.partition import conv_constants_chosen

    usc = load_usc()
    rows = [r for r in usc.ops_for("pixel4") if r.operation == "CONV_2D"
            and r.feature["Input_channel"] == 3 and r.feature["Kernel"] == 3]  # fmt: skip
    assert len({r.feature["Filter"] for r in rows}) >= 4
    for r in rows:
        f = r.feature
        args = {"kernel": (3, 3), "groups": 1, "cin": 3, "cout": f["Filter"]}
        chosen = conv_constants_chosen(**args, gpu_family="adreno")
        assert chosen == (r.latency_ms < 0.1), (r.model, f, r.latency_ms)
        assert not conv_constants_chosen(**args, gpu_family="mali")  # Adreno's choice only
