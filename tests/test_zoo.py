"""Zoo networks: op for op the graphs the USC study measured, and runnable in LiteRT."""

from __future__ import annotations

import ast
import functools
import re

import numpy as np
import pytest

from tflat import Graph, SpecError, read_model
from tflat.datasets.usc import data_file, default_folder, read_csv
from tflat.model.zoo import USC_MODELS, build_model, parse_name, round_channels

FAST = [
    "mobilenet_w1",
    "mobilenetv2_w1",
    "mobilenetv3_large_w1",
    "resnet18",
    "squeezenet_v1_1",
    "densenet121",
    "mobilenet_wd4",
    "mobilenetv2_wd4",
    "mobilenetv3_large_w7d20",
]
SLOW = [m for m in USC_MODELS if m not in FAST]


@functools.cache
def _csv(name: str) -> tuple[dict[str, str], ...]:
    """A USC file's rows: TFLAT_USC_DIR's copy when set, else the packaged one."""
    path = data_file(default_folder(), name)
    assert path is not None, f"{name} is neither in TFLAT_USC_DIR nor packaged"
    return tuple(read_csv(path))


@functools.cache
def _graph(name: str) -> tuple[Graph, int]:
    data = build_model(name)
    return read_model(data), len(data)


def _check_against_usc(name: str) -> None:
    rows = [r for r in _csv("tflite_cnn_ops_gpu.csv") if r["model"] == name]
    assert rows, name
    graph, size = _graph(name)
    for row in rows:
        f = ast.literal_eval(row["feature"])
        # the kernel name carries the node index of the op: convolution_2d_5_linked_:_relu_6
        first = row["pixel4|gpu|kernel"].split("_linked_")[0]
        match = re.search(r"_(\d+)$", first)
        assert match, first
        op = graph.ops[int(match.group(1))]
        where = f"{name} node {match.group(1)} ({first})"
        assert op.type == row["operation"], where
        x = op.activations[0]
        assert x.shape[-1] == int(f["Input_channel"]), where
        if op.type != "FULLY_CONNECTED":
            assert x.shape[1] == int(f["Input_shape"]), where
        if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
            assert op.outputs[0].shape[1] == int(f["Output_shape"]), where
            assert op.kernel == (int(f["Kernel"]),) * 2, where
            assert op.stride == (int(f["Stride"]),) * 2, where
        if op.type in ("CONV_2D", "FULLY_CONNECTED", "CONCATENATION"):
            assert op.outputs[0].shape[-1] == int(f["Filter"]), where
    e2e = {r["model"]: r for r in _csv("tflite_cnn_e2e.csv")}
    if name in e2e:  # the same weights make the same file size, within headers and names
        assert abs(size - int(e2e[name]["size"])) / int(e2e[name]["size"]) < 0.01
        # FLOPs conventions differ a little (element-wise ops), so only within 3 %
        flops = sum(op.flops for op in graph.ops)
        assert abs(flops - int(e2e[name]["FLOPS"])) / int(e2e[name]["FLOPS"]) < 0.03


@pytest.mark.parametrize("name", FAST)
def test_zoo_matches_usc_rows_op_for_op(name: str) -> None:
    _check_against_usc(name)


@pytest.mark.parametrize(
    "name", ["mobilenet_w1", "mobilenetv3_large_w1", "squeezenet_v1_1", "densenet121"]
)
def test_training_counts_the_unlisted_kernels_the_partition_makes(name: str) -> None:
    """The whole-model term is fitted on what the USC rows omit (node-id gaps) and applied to
    what the partition of a real graph leaves unlisted: both must count the same kernels."""
    from tflat.datasets.usc import load_usc
    from tflat.gpu import partition
    from tflat.predict.features import LISTED_KINDS
    from tflat.predict.train import model_parts

    data = load_usc()
    ops = [r for r in data.ops_for("pixel4") if r.model == name]
    (mp,) = model_parts(ops, [], "adreno")
    kernels = partition(_graph(name)[0], rules="tflite_gpu", gpu_family="adreno")
    unlisted = [k for k in kernels if k.kind != "free" and k.kind not in LISTED_KINDS]
    merged = [k for k in kernels if "merged as padding" in k.note]
    assert (mp.unlisted_ops, mp.merged_pads) == (len(unlisted), len(merged))
    assert len(mp.shapes) == len(kernels) - len(unlisted) - sum(k.kind == "free" for k in kernels)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_zoo_width_variants_match_usc_rows(name: str) -> None:
    _check_against_usc(name)


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_wd4",
        "mobilenetv2_wd4",
        "mobilenetv3_large_w7d20",
        "resnet18_wd4",
        "squeezenet_v1_1",
        "densenet121",
    ],
)
def test_zoo_models_run_in_litert(name: str) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=build_model(name, input_size=96, classes=10))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.ones(inp["shape"], dtype=np.float32))
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert out.shape == (1, 10) and np.isfinite(out).all()


def test_fp16_zoo_model_dequantizes_every_weight() -> None:
    graph = read_model(build_model("mobilenet_wd4", input_size=64, weights="float16"))
    deq = [op for op in graph.ops if op.type == "DEQUANTIZE"]
    convs = [
        op for op in graph.ops if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    ]
    assert len(deq) == 2 * len(convs)  # weights and bias
    assert all(op.inputs[0].dtype == "float16" for op in deq)


def test_names_and_widths() -> None:
    assert parse_name("mobilenetv2_wd2") == ("mobilenetv2", 0.5)
    assert parse_name("mobilenetv3_large_w7d20") == ("mobilenetv3_large", 0.35)
    assert parse_name("resnet18") == ("resnet18", 1.0)
    with pytest.raises(SpecError, match="unknown zoo model"):
        parse_name("vgg16")
    with pytest.raises(SpecError, match="no width variants"):
        build_model("densenet121", width=0.5)
    assert [round_channels(c) for c in (18, 30, 5.6, 120)] == [24, 32, 8, 120]
