"""The single-op writer: every kind and dtype builds, reads back as its spec, and runs in LiteRT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tflat import SpecError, read_model
from tflat.model.spec import KIND_PARAMS, WEIGHTED_KINDS, OpSpec, check_graph, spec_from_op
from tflat.model.writer import GraphBuilder, build_spec, write_spec

IMG = {"input_h": 9, "input_w": 7, "cin": 8}

BASE_SPECS = [
    OpSpec(
        "CONV_2D",
        {**IMG, "cout": 16, "kernel": 3, "stride": 2, "padding": "valid", "activation": "relu6"},
    ),
    OpSpec("CONV_2D", {**IMG, "cout": 12, "kernel_h": 3, "kernel_w": 1, "dilation": 2}),
    OpSpec("CONV_2D", {**IMG, "cout": 16, "kernel": 3, "groups": 4}),
    OpSpec("CONV_2D", {**IMG, "cout": 16, "kernel": 2, "stride": 3}),
    OpSpec("DEPTHWISE_CONV_2D", {**IMG, "kernel": 3, "depth_multiplier": 2, "dilation": 2}),
    OpSpec("DEPTHWISE_CONV_2D", {**IMG, "kernel": 5, "stride": 2, "activation": "relu"}),
    OpSpec("TRANSPOSE_CONV", {**IMG, "cout": 4, "kernel": 3, "stride": 2}),
    OpSpec(
        "TRANSPOSE_CONV",
        {
            **IMG,
            "cout": 4,
            "kernel": 2,
            "stride": 2,
            "padding": "valid",
            "activation": "relu",
            "bias": False,
        },
    ),
    OpSpec("FULLY_CONNECTED", {"cin": 64, "cout": 10, "batch": 2}),
    OpSpec("FULLY_CONNECTED", {"cin": 64, "cout": 10, "bias": False}),
    OpSpec("MAX_POOL_2D", {**IMG, "kernel": 2, "stride": 2}),
    OpSpec("AVERAGE_POOL_2D", {**IMG, "kernel": 3, "padding": "valid", "activation": "relu"}),
    OpSpec("MEAN", IMG),
    OpSpec("MEAN", {**IMG, "keep_dims": False}),
    OpSpec("CONCATENATION", {"input_h": 5, "input_w": 5, "cins": [3, 4, 5, 6]}),
    OpSpec("CONCATENATION", {"input_h": 5, "input_w": 5, "cins": [8, 8]}),
    OpSpec("ADD", {**IMG, "activation": "relu"}),
    OpSpec("ADD", {**IMG, "broadcast": "scalar"}),
    OpSpec("MUL", {**IMG, "broadcast": "channel"}),
    *[OpSpec(k, IMG) for k in ("RELU", "RELU6", "HARD_SWISH", "LOGISTIC", "TANH")],
    OpSpec("PAD", {**IMG, "pad_top": 1, "pad_right": 2}),
    OpSpec("RESIZE_BILINEAR", {**IMG, "output_h": 18, "output_w": 14}),
    OpSpec("RESIZE_BILINEAR", {**IMG, "output_h": 5, "output_w": 4, "half_pixel_centers": True}),
    OpSpec("SOFTMAX", {"cin": 1000}),
    OpSpec("RESHAPE", IMG),
    OpSpec("RESHAPE", {**IMG, "shape": [1, 63, 8]}),
]


def _variants() -> list[OpSpec]:
    out = []
    for spec in BASE_SPECS:
        out.append(spec)
        if spec.kind in WEIGHTED_KINDS:
            out.append(OpSpec(spec.kind, {**spec.params, "dtype": "float16"}))
        out.append(OpSpec(spec.kind, {**spec.params, "dtype": "int8"}))
    return out


ALL_SPECS = _variants()


def run_litert(data: bytes) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], rng.standard_normal(d["shape"]).astype(np.float32))
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def test_every_kind_is_covered() -> None:
    assert {s.kind for s in ALL_SPECS} == set(KIND_PARAMS)


@pytest.mark.parametrize(
    "spec", ALL_SPECS, ids=lambda s: f"{s.kind}-{s.params['dtype']}-{s.spec_hash[:6]}"
)
def test_model_reads_back_as_spec_and_runs(spec: OpSpec) -> None:
    data, graph = write_spec(spec)
    main = [op for op in graph.ops if op.type == spec.kind]
    assert len(main) == 1
    assert spec_from_op(main[0], graph) == spec
    outputs = run_litert(data)
    assert [tuple(o.shape) for o in outputs] == [graph.outputs[0].shape]
    assert all(np.isfinite(o).all() for o in outputs)


def test_conv_output_shapes_follow_tflite_rules() -> None:
    spec = OpSpec(
        "CONV_2D",
        {
            "input_h": 8,
            "input_w": 8,
            "cin": 16,
            "cout": 32,
            "kernel": 5,
            "stride": 3,
            "padding": "valid",
        },
    )
    _, graph = write_spec(spec)
    assert graph.ops[0].outputs[0].shape == (1, 2, 2, 32)  # ceil((8 - 5 + 1) / 3)
    same = OpSpec("CONV_2D", {**spec.params, "padding": "same"})
    assert write_spec(same)[1].ops[0].outputs[0].shape == (1, 3, 3, 32)  # ceil(8 / 3)


@pytest.mark.parametrize(
    ("spec", "kind", "version"),
    [
        (OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3}), "CONV_2D", 1),
        (OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "groups": 2}), "CONV_2D", 6),
        (OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "dtype": "int8"}), "CONV_2D", 3),
        (OpSpec("DEPTHWISE_CONV_2D", {**IMG, "kernel": 3, "dilation": 2}), "DEPTHWISE_CONV_2D", 2),
        (OpSpec("FULLY_CONNECTED", {"cin": 8, "cout": 4, "bias": False}), "FULLY_CONNECTED", 6),
        (OpSpec("TRANSPOSE_CONV", {**IMG, "cout": 4, "kernel": 2}), "TRANSPOSE_CONV", 3),
        (OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 1, "dtype": "float16"}), "DEQUANTIZE", 3),
        (OpSpec("RELU", {**IMG, "dtype": "int8"}), "RELU", 2),
    ],
)
def test_op_versions_follow_the_options(spec: OpSpec, kind: str, version: int) -> None:
    graph = read_model(build_spec(spec))
    assert {op.version for op in graph.ops if op.type == kind} == {version}


def test_fp16_weights_are_stored_as_float16_constants() -> None:
    spec = OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "dtype": "float16"})
    graph = read_model(build_spec(spec))
    deq = [op for op in graph.ops if op.type == "DEQUANTIZE"]
    assert [op.inputs[0].dtype for op in deq] == ["float16", "float16"]
    assert all(op.inputs[0].is_constant for op in deq)
    assert graph.inputs[0].dtype == "float32"


def test_int8_model_is_quantized_inside_float_outside() -> None:
    spec = OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "dtype": "int8"})
    graph = read_model(build_spec(spec))
    assert [op.type for op in graph.ops] == ["QUANTIZE", "CONV_2D", "DEQUANTIZE"]
    conv = graph.ops[1]
    assert conv.inputs[1].dtype == "int8" and conv.inputs[2].dtype == "int32"
    assert conv.inputs[1].quantization is not None
    assert len(conv.inputs[1].quantization.scale) == 8  # per output channel
    assert graph.inputs[0].dtype == graph.outputs[0].dtype == "float32"


def test_weights_are_seeded_by_the_spec() -> None:
    spec = OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3})
    assert build_spec(spec) == build_spec(OpSpec("CONV_2D", dict(spec.params)))
    other = OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "activation": "relu"})
    assert build_spec(spec)[-2000:] != build_spec(other)[-2000:]


def test_add_and_relu_compute_what_they_say() -> None:
    b = GraphBuilder()
    x, y = b.input((1, 4, 4, 3)), b.input((1, 1, 1, 3))
    b.output(b.unary("RELU", b.add(x, y)))
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=b.to_bytes())
    interp.allocate_tensors()
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    c = rng.standard_normal((1, 1, 1, 3)).astype(np.float32)
    ins = interp.get_input_details()
    interp.set_tensor(ins[0]["index"], a)
    interp.set_tensor(ins[1]["index"], c)
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, np.maximum(a + c, 0), rtol=1e-6)


def test_spec_hash_is_stable_and_fills_defaults() -> None:
    short = OpSpec("conv_2d", {**IMG, "cout": 8, "kernel": 3})
    full = OpSpec(
        "CONV_2D",
        {
            **IMG,
            "cout": 8,
            "kernel_h": 3,
            "kernel_w": 3,
            "stride": 1,
            "dilation": 1,
            "padding": "SAME",
            "groups": 1,
            "activation": "none",
            "dtype": "float32",
        },
    )
    assert short == full and short.spec_hash == full.spec_hash
    assert len(short.spec_hash) == 16 and int(short.spec_hash, 16) >= 0
    assert OpSpec.from_dict(short.to_dict()) == short
    assert OpSpec("CONV_2D", {**IMG, "cout": 16, "kernel": 3}).spec_hash != short.spec_hash


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("CONV_2D", {**IMG, "cout": 8, "kernel": 9, "padding": "valid"}, "larger than input"),
        ("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "dilation": 4, "padding": "valid"}, "larger"),
        ("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "groups": 3}, "groups 3 do not divide"),
        ("CONV_2D", {**IMG, "cout": 0, "kernel": 3}, "cout must be >= 1"),
        ("CONV_2D", {**IMG, "kernel": 3}, "missing parameter 'cout'"),
        ("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "filters": 2}, "unknown parameter"),
        ("CONV_2D", {**IMG, "cout": 8, "kernel": 3, "padding": "full"}, "padding='full'"),
        ("CONV_2D", {**IMG, "cout": 8.5, "kernel": 3}, "not an integer"),
        ("CONCATENATION", {"input_h": 4, "input_w": 4, "cins": [8]}, "2 to 4 inputs"),
        ("RESHAPE", {**IMG, "shape": [1, 5]}, "element count"),
        ("RELU", {**IMG, "dtype": "float16"}, "needs a weighted op"),
        ("CONV_3D", {}, "unknown op kind"),
    ],
)
def test_invalid_specs_are_refused_by_name(kind: str, params: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        OpSpec(kind, params)
    assert "\n" not in str(info.value)
    if kind != "CONV_3D" and "missing" not in message and "unknown" not in message:
        assert kind in str(info.value)


def test_check_graph_refuses_a_model_of_another_spec() -> None:
    spec = OpSpec("CONV_2D", {**IMG, "cout": 8, "kernel": 3})
    graph = read_model(build_spec(spec))
    wrong = OpSpec("CONV_2D", {**IMG, "input_h": 7, "input_w": 9, "cout": 8, "kernel": 3})
    with pytest.raises(SpecError, match=r"input_h: read 9, spec 7"):
        check_graph(graph, wrong)
    with pytest.raises(SpecError, match="0 DEPTHWISE_CONV_2D ops"):
        check_graph(graph, OpSpec("DEPTHWISE_CONV_2D", {**IMG, "kernel": 3}))


conv_params = st.fixed_dictionaries(
    {
        "input_h": st.integers(1, 40),
        "input_w": st.integers(1, 40),
        "cin": st.sampled_from([1, 2, 3, 4, 8, 12]),
        "cout": st.sampled_from([4, 8, 12, 24]),
        "kernel_h": st.integers(1, 5),
        "kernel_w": st.integers(1, 5),
        "stride": st.integers(1, 3),
        "dilation": st.integers(1, 3),
        "padding": st.sampled_from(["same", "valid"]),
        "groups": st.sampled_from([1, 2, 4]),
        "dtype": st.sampled_from(["float32", "float16", "int8"]),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_params)
def test_any_valid_conv_reads_back_and_runs(params: dict) -> None:
    try:
        spec = OpSpec("CONV_2D", params)
    except SpecError:
        return  # an invalid draw: refused up front, which is what the spec promises
    data, graph = write_spec(spec)
    assert spec_from_op(next(op for op in graph.ops if op.type == "CONV_2D"), graph) == spec
    run_litert(data)
