"""Weight formats and GPU math precision, on models the tests write in each format.

Every file here is written by tflat's own writer (tflat.model.formats), no TensorFlow: the same
network, same seed, as fp32, fp16 weights, full int8 (float or int8 I/O), dynamic-range and
weight-only int8. What the delegate does with each is in gpu/rules/tflite_gpu_precision.toml.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import tflat
from tflat.errors import PredictorError, SpecError
from tflat.gpu import partition
from tflat.gpu.kernel import read_rules
from tflat.gpu.precision import (
    PrecisionFacts,
    TimeParts,
    factor_bounds,
    fold_constant_weights,
    load_precision_facts,
    time_factor,
)
from tflat.model.formats import FORMATS, build_in_format
from tflat.predict import BUNDLED_DEVICES
from tflat.predict.shapes import ops_by_index, shape_from_kernel
from tflat.pricing.compose import estimate_with
from tflat.pricing.predictors import load_predictor

#: Small networks (width 0.25 where the architecture has widths, 96x96) keep the suite fast.
NETWORKS = {"mobilenet": 0.25, "mobilenetv2": 0.25, "resnet18": 0.25, "squeezenet_v1_1": 1.0}
DEVICES = tuple(BUNDLED_DEVICES)


@pytest.fixture(autouse=True)
def _own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFLAT_DB", f"sqlite:///{tmp_path / 'tflat.db'}")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("formats")
    out = {}
    for arch, width in NETWORKS.items():
        for fmt in FORMATS:
            path = root / f"{arch}_{fmt}.tflite"
            path.write_bytes(build_in_format(arch, fmt, width=width, input_size=96, seed=3))
            out[arch, fmt] = path
    return out


def _total(path: Path, device: str, precision: str | None = None) -> float:
    return tflat.estimate(path, device=device, precision=precision).total_ms


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_runs_in_litert(fmt: str, files: dict[tuple[str, str], Path]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(files["mobilenetv2", fmt]), num_threads=1)
    it.allocate_tensors()
    src = it.get_input_details()[0]
    it.set_tensor(src["index"], np.ones(src["shape"], src["dtype"]))
    it.invoke()
    dst = it.get_output_details()[0]
    assert dst["dtype"] == (np.int8 if fmt == "int8_io" else np.float32)
    assert np.isfinite(it.get_tensor(dst["index"]).astype(np.float32)).all()


def test_the_formats_store_weights_as_users_ship_them(files: dict[tuple[str, str], Path]) -> None:
    def weight_types(fmt: str, op_type: str) -> set[str]:
        g = tflat.read_model(files["mobilenet", fmt])
        return {op.inputs[1].dtype for op in g.ops if op.type == op_type}

    assert weight_types("fp32", "CONV_2D") == {"float32"}
    assert weight_types("dynamic", "CONV_2D") == {"int8"}  # hybrid: read as int8
    assert weight_types("int8", "CONV_2D") == {"int8"}
    fp16 = tflat.read_model(files["mobilenet", "fp16"])
    deq = [op for op in fp16.ops if op.type == "DEQUANTIZE"]
    assert deq and {op.inputs[0].dtype for op in deq} == {"float16"}
    io = tflat.read_model(files["mobilenet", "int8_io"])
    assert io.inputs[0].dtype == io.outputs[0].dtype == "int8"


def test_fold_makes_dequantized_weights_constant(files: dict[tuple[str, str], Path]) -> None:
    g = tflat.read_model(files["mobilenetv2", "fp16"])
    assert not all(op.inputs[1].is_constant for op in g.ops if op.type == "CONV_2D")
    folded = fold_constant_weights(g)
    assert [op.index for op in folded.ops] == [op.index for op in g.ops]
    assert all(op.inputs[1].is_constant for op in folded.ops if op.type == "CONV_2D")
    # a runtime DEQUANTIZE (the int8 model's last op) is not weights: untouched
    q = tflat.read_model(files["mobilenetv2", "int8"])
    assert fold_constant_weights(q) is q
    last = q.ops[-1]
    assert last.type == "DEQUANTIZE" and not last.outputs[0].is_constant


@pytest.mark.parametrize("arch", NETWORKS)
def test_fp16_weights_run_the_fp32_program(arch: str, files: dict[tuple[str, str], Path]) -> None:
    """The delegate folds fp16 weights at load: same kernels, same features, same time."""
    g32, g16 = (tflat.read_model(files[arch, f]) for f in ("fp32", "fp16"))
    predictor = load_predictor("pixel4")

    def shapes(g: tflat.Graph) -> list[object]:
        g = fold_constant_weights(g)
        by = ops_by_index(g)
        return [
            shape_from_kernel(g, k.op_indices, k.kind, k.name, by, predictor.gpu_family)
            for k in partition(g, gpu_family=predictor.gpu_family)
            if k.kind != "free"
        ]

    assert shapes(g16) == shapes(g32)
    for device in DEVICES:
        assert _total(files[arch, "fp16"], device) == pytest.approx(
            _total(files[arch, "fp32"], device), rel=0.02
        )
    deq = [k for k in partition(g16) if k.name == "dequantize"]
    assert deq and all(k.kind == "free" for k in deq)


@pytest.mark.parametrize("arch", NETWORKS)
def test_full_int8_runs_in_float_plus_its_edges(
    arch: str, files: dict[tuple[str, str], Path]
) -> None:
    for device in DEVICES:
        fp32 = _total(files[arch, "fp32"], device)
        for fmt in ("int8", "int8_io"):
            assert 0.98 <= _total(files[arch, fmt], device) / fp32 <= 1.3, (device, fmt)


def test_int8_edges_are_priced_by_size(files: dict[tuple[str, str], Path]) -> None:
    facts = load_precision_facts()
    float_io = tflat.estimate(files["mobilenetv2", "int8"], device="pixel4")
    int8_io = tflat.estimate(files["mobilenetv2", "int8_io"], device="pixel4")
    fp32 = tflat.estimate(files["mobilenetv2", "fp32"], device="pixel4")
    # float I/O: QUANTIZE and DEQUANTIZE are element-wise GPU kernels of their own
    edges = [k for k in float_io.kernels if k.name in ("elementwise",) and k.on_gpu]
    ends = {float_io.layers[i].type for k in edges for i in k.op_indices}
    assert {"QUANTIZE", "DEQUANTIZE"} <= ends and all(k.latency_ms > 0 for k in edges)
    assert float_io.cpu_io_ms == 0.0
    # int8 I/O: the CPU (de)quantizes the input and the output at every inference
    g = tflat.read_model(files["mobilenetv2", "int8_io"])
    elements = sum(t.numel for t in (*g.inputs, *g.outputs))
    assert int8_io.cpu_io_ms == pytest.approx(elements * facts.cpu_ns_per_element * 1e-6)
    assert int8_io.overhead_ms == pytest.approx(fp32.overhead_ms + int8_io.cpu_io_ms)
    assert json.loads(json.dumps(int8_io.to_dict()))["cpu_io_ms"] == int8_io.cpu_io_ms


def test_int8_weights_are_converted_for_a_convolution(files: dict[tuple[str, str], Path]) -> None:
    """int8 weights behind a DEQUANTIZE: a constant GPU tensor; a CONV_2D takes it as runtime
    weights (a converter kernel every run and a dynamic-weights convolution), a depthwise
    convolution reads it as it is (free)."""
    g = tflat.read_model(files["mobilenet", "int8_weights"])
    by = {op.index: op for op in g.ops}
    kernels = partition(fold_constant_weights(g))
    readers = {t.index: op.type for op in g.ops for t in op.inputs}
    for k in kernels:
        op = by[k.main_op]
        if op.type != "DEQUANTIZE":
            continue
        reader = readers[op.outputs[0].index]
        if reader in ("CONV_2D", "FULLY_CONNECTED"):
            assert (k.kind, k.name, k.on_gpu) == ("other", "converter_to_conv_weights", True)
        else:
            assert k.kind == "free", reader
    convs = [k for k in kernels if by[k.main_op].type in ("CONV_2D", "FULLY_CONNECTED")]
    assert convs and all(k.name.startswith("convolution_dynamic") for k in convs)
    fp32 = partition(tflat.read_model(files["mobilenet", "fp32"]))
    assert not any(k.name == "convolution_dynamic" for k in fp32)


def test_hybrid_ops_run_on_the_gpu_up_to_the_version_limit(
    files: dict[tuple[str, str], Path],
) -> None:
    g = tflat.read_model(files["mobilenet", "dynamic"])
    by = {op.index: op for op in g.ops}
    kernels = partition(fold_constant_weights(g))
    for k in kernels:
        op = by[k.main_op]
        if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert k.on_gpu, (op.type, op.version)
    fc = next(k for k in kernels if by[k.main_op].type == "FULLY_CONNECTED")
    assert by[fc.main_op].version == 12
    assert fc.kind == "cpu_fallback" and "version 12 > 9" in fc.note
    # the per-tensor hybrid FULLY_CONNECTED (version 3) is within the limit
    ops = tuple(
        dataclasses.replace(op, version=3) if op.index == fc.main_op else op for op in g.ops
    )
    g3 = dataclasses.replace(g, subgraphs=(dataclasses.replace(g.subgraphs[0], ops=ops),))
    assert next(k for k in partition(g3) if k.main_op == fc.main_op).on_gpu


def test_int16_dequantize_runs_on_the_cpu(files: dict[tuple[str, str], Path]) -> None:
    g = tflat.read_model(files["mobilenetv2", "int8"])
    last = g.ops[-1]
    src = dataclasses.replace(last.inputs[0], dtype="int16")
    ops = (*g.ops[:-1], dataclasses.replace(last, inputs=(src,)))
    g16 = dataclasses.replace(g, subgraphs=(dataclasses.replace(g.subgraphs[0], ops=ops),))
    k = next(k for k in partition(g16) if k.main_op == last.index)
    assert k.kind == "cpu_fallback" and "int16" in k.note


@pytest.mark.parametrize("device", DEVICES)
def test_fp32_math_is_never_faster_and_says_so(
    device: str, files: dict[tuple[str, str], Path]
) -> None:
    path = files["mobilenetv2", "fp32"]
    fp16 = tflat.estimate(path, device=device)
    fp32 = tflat.estimate(path, device=device, precision="fp32")
    assert (fp16.precision, fp16.precision_basis) == ("fp16", "learned")
    assert (fp32.precision, fp32.measured_precision, fp32.precision_basis) == (
        "fp32",
        "fp16",
        "extrapolated",
    )
    # (this 96x96, width-0.25 network is small enough that some kernels lie outside the USC
    # data's range whatever the precision: only the precision warning tells them apart)
    assert any("math is extrapolated" in w for w in fp32.warnings)
    assert not any("math is extrapolated" in w for w in fp16.warnings)
    assert fp32.total_ms > fp16.total_ms
    assert fp32.total_ms <= 2 * fp16.total_ms
    assert fp32.total_low_ms <= fp32.total_ms <= fp32.total_high_ms
    for a, b in zip(fp16.kernels, fp32.kernels, strict=True):
        assert b.latency_ms >= a.latency_ms
        if not a.on_gpu:
            assert b.latency_ms == a.latency_ms  # the CPU computes in fp32 anyway
    data = fp32.to_dict()
    assert (data["precision"], data["precision_basis"]) == ("fp32", "extrapolated")
    assert tflat.estimate(path, device=device, precision="fp16").total_ms == fp16.total_ms


def test_time_factor_follows_where_the_time_goes() -> None:
    def f(parts: TimeParts) -> float:
        return time_factor(parts, "fp16", "fp32", "adreno")

    assert f(TimeParts(launch=1.0)) == 1.0
    assert f(TimeParts(memory=1.0)) == 2.0  # 4-byte instead of 2-byte elements
    assert f(TimeParts(arithmetic=1.0)) == load_precision_facts().alu_speedup("adreno")
    mixed = f(TimeParts(launch=1.0, arithmetic=1.0, memory=1.0, serial=1.0))
    assert 1.0 < mixed < 2.0
    assert time_factor(TimeParts(memory=1.0), "fp32", "fp16") == 0.5
    assert factor_bounds("fp16", "fp32") == (1.0, 2.0)
    assert factor_bounds("fp16", "fp16") == (1.0, 1.0)
    with pytest.raises(SpecError, match="fp16 or fp32"):
        time_factor(TimeParts(launch=1.0), "fp16", "fp64")


def test_precision_facts_are_data() -> None:
    facts = load_precision_facts()
    assert facts.storage_bytes == {"fp16": 2, "fp32": 4}
    assert facts.default_measured == "fp16"
    assert "float16" in facts.folded_dtypes and "int8" in facts.constant_dtypes
    data = read_rules("tflite_gpu_precision")
    broken = {k: v for k, v in data.items() if k != "weights"}
    with pytest.raises(SpecError, match="malformed"):
        PrecisionFacts.from_dict(broken)


def test_bundles_state_the_precision_they_were_measured_in() -> None:
    for device in DEVICES:
        predictor = load_predictor(device)
        assert predictor.card.precision == predictor.precision == "fp16"
        assert "16-bit" in predictor.card.provenance["precision_source"]
    bundle = dict(load_predictor("pixel4").bundle)
    bundle.pop("precision")
    assert tflat.Predictor(bundle).precision == load_precision_facts().default_measured
    with pytest.raises(PredictorError, match="precision"):
        tflat.Predictor({**bundle, "precision": "int4"})


def test_estimate_with_an_unknown_precision_is_bad_input(
    files: dict[tuple[str, str], Path],
) -> None:
    predictor = load_predictor("pixel4")
    graph = tflat.read_model(files["mobilenet", "fp32"])
    with pytest.raises(SpecError, match="fp16 or fp32"):
        estimate_with(graph, predictor, precision="bf16")
