"""The reader against LiteRT's own interpreter, on real models.

Every vendored model (fp32, fp16 weights, int8; detector, segmenter, audio, keyword spotter,
regressor) is checked op by op: types, tensor indices, shapes, dtypes and quantization must
equal what ``ai_edge_litert`` reports. Models fetched by ``scripts/fetch_models.py`` (found in
``TFLAT_MODEL_CACHE`` or the default cache) are checked the same way when present.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tflat
from tflat.model.ops import Graph

MODELS = Path(__file__).parent / "models"

VENDORED = {
    "face_detection_short_range.tflite": (
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
    ),
    "hand_recrop.tflite": "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d",
    "hey_jarvis.tflite": "21a7976add39ee24ec96c63d96b7aaa18e24d1d9824b963e451da8feb4b78b77",
    "nmp.tflite": "3db297d54af8e01c6e5618245c956b1d71b6a2b978cb2dedb527173186552676",
    "selfie_segmentation.tflite": (
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
    ),
    "sine_float.tflite": "ee939863195ca37ce063b18e14fb82aa0d98db6596ba41095757f6b560da1070",
}


def _cached_models() -> list[Path]:
    root = os.environ.get("TFLAT_MODEL_CACHE")
    if root is None:
        from platformdirs import user_cache_dir

        root = os.path.join(user_cache_dir("tflat"), "models")
    return sorted(Path(root).glob("**/*.tflite")) if Path(root).is_dir() else []


ALL_MODELS = [MODELS / name for name in VENDORED] + _cached_models()


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path))


def _litert_name(name: str) -> str:
    """LiteRT lists a custom op by its bare custom code; tflat names it ``CUSTOM:<code>``."""
    from tflat.model.schema import builtin_codes

    return name if name in builtin_codes() else f"CUSTOM:{name}"


def test_vendored_models_unchanged() -> None:
    for name, digest in VENDORED.items():
        assert hashlib.sha256((MODELS / name).read_bytes()).hexdigest() == digest, name
    assert sum(p.stat().st_size for p in MODELS.iterdir()) < 1_000_000


@pytest.mark.parametrize("path", ALL_MODELS, ids=lambda p: p.name)
def test_ops_equal_litert(path: Path) -> None:
    assert_ops_equal_litert(path)


@pytest.mark.parametrize("path", ALL_MODELS, ids=lambda p: p.name)
def test_tensors_equal_litert(path: Path) -> None:
    assert_tensors_equal_litert(path)


@pytest.mark.parametrize("arch", ["mobilenetv2", "resnet18"])
@pytest.mark.parametrize("weights", ["float32", "float16"])
def test_tflat_written_classifiers_equal_litert(tmp_path: Path, arch: str, weights: str) -> None:
    """Classification CNNs written by tflat's own generator read back as LiteRT sees them."""
    zoo = pytest.importorskip("tflat.model.zoo")
    path = tmp_path / f"{arch}_{weights}.tflite"
    path.write_bytes(zoo.build_model(arch, width=0.25, input_size=64, classes=10, weights=weights))
    assert_ops_equal_litert(path)
    assert_tensors_equal_litert(path)


def assert_ops_equal_litert(path: Path) -> None:
    graph = tflat.read_model(path)
    details = _interpreter(path)._get_ops_details()
    assert [op.type for op in graph.ops] == [_litert_name(d["op_name"]) for d in details]
    assert Counter(op.type for op in graph.ops) == Counter(
        _litert_name(d["op_name"]) for d in details
    )
    for op, d in zip(graph.ops, details, strict=True):
        assert op.index == d["index"]
        assert [t.index for t in op.inputs] == [int(i) for i in d["inputs"] if i >= 0]
        assert [t.index for t in op.outputs] == [int(i) for i in d["outputs"]]


def assert_tensors_equal_litert(path: Path) -> None:
    graph = tflat.read_model(path)
    lite = {d["index"]: d for d in _interpreter(path).get_tensor_details()}
    seen = {t.index: t for op in graph.ops for t in (*op.inputs, *op.outputs)}
    assert seen, "no tensors read"
    for index, t in seen.items():
        d = lite[index]
        assert t.name == d["name"]
        # The file's signature is kept as stored; the resolved shape is checked against
        # LiteRT after an invoke in tests/test_shapes.py.
        assert t.shape_signature == tuple(int(v) for v in d["shape_signature"]), t.name
        if t.dtype in ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool"):
            assert np.dtype(t.dtype) == np.dtype(d["dtype"]), t.name
        scales = d["quantization_parameters"]["scales"]
        if t.quantization is None:
            assert len(scales) == 0, t.name
        else:
            assert np.allclose(t.quantization.scale, scales), t.name
            assert list(t.quantization.zero_point) == [
                int(v) for v in d["quantization_parameters"]["zero_points"]
            ], t.name
            assert t.quantization.axis == d["quantization_parameters"]["quantized_dimension"]


def test_precisions_are_covered() -> None:
    """The vendored set spans fp32, fp16-weight and int8 models."""

    def weight_dtypes(name: str) -> set[str]:
        g = tflat.read_model(MODELS / name)
        return {t.dtype for op in g.ops for t in op.inputs if t.is_constant}

    assert "float16" in weight_dtypes("face_detection_short_range.tflite")
    assert "float16" not in weight_dtypes("hand_recrop.tflite")
    assert "float32" in weight_dtypes("hand_recrop.tflite")
    int8 = tflat.read_model(MODELS / "hey_jarvis.tflite")
    convs = [op for op in int8.ops if op.type == "CONV_2D"]
    assert convs and all(op.inputs[1].dtype == "int8" for op in convs)
    assert all(op.inputs[1].quantization is not None for op in convs)


def test_fp16_weights_are_dequantized_constants() -> None:
    g = tflat.read_model(MODELS / "face_detection_short_range.tflite")
    deq = [op for op in g.ops if op.type == "DEQUANTIZE"]
    assert deq and all(op.inputs[0].is_constant and op.inputs[0].dtype == "float16" for op in deq)
    # The conv reads the dequantized filter: not a constant of its own, so 0 weight bytes.
    produced = {op.outputs[0].index for op in deq}
    conv = next(op for op in g.ops if op.type == "CONV_2D" and op.inputs[1].index in produced)
    assert not conv.inputs[1].is_constant and conv.inputs[1].dtype == "float32"


def test_custom_op_is_named_by_code_and_costed() -> None:
    g = tflat.read_model(MODELS / "selfie_segmentation.tflite")
    custom = [op for op in g.ops if op.type.startswith("CUSTOM:")]
    assert [op.type for op in custom] == ["CUSTOM:Convolution2DTransposeBias"]
    assert custom[0].known and custom[0].flops > 0 and custom[0].kernel is not None


def test_second_subgraph_is_read_and_listed() -> None:
    """microWakeWord models keep streaming state in resource variables that a CALL_ONCE
    initialises from a second subgraph: both subgraphs are read."""
    g = tflat.read_model(MODELS / "hey_jarvis.tflite")
    assert len(g.subgraphs) == 2
    main, init = g.subgraphs
    call_once = [op for op in main.ops if op.type == "CALL_ONCE"]
    assert len(call_once) == 1
    assert call_once[0].options["init_subgraph_index"] == init.index == 1
    assert all(op.subgraph == 1 for op in init.ops) and init.ops
    assert Counter(op.type for op in init.ops) == {"VAR_HANDLE": 6, "ASSIGN_VARIABLE": 6}
    # The init subgraph assigns exactly the variables the main subgraph reads.
    names = {op.options["shared_name"] for op in main.ops if op.type == "VAR_HANDLE"}
    assert names == {op.options["shared_name"] for op in init.ops if op.type == "VAR_HANDLE"}
    assert len(g.all_ops) == len(main.ops) + len(init.ops)
    assert g.summary()["subgraphs"] == 2
    assert {o["subgraph"] for o in g.to_dict()["ops"]} == {0, 1}


def test_options_read_with_schema_names() -> None:
    g = tflat.read_model(MODELS / "face_detection_short_range.tflite")
    conv = next(op for op in g.ops if op.type == "CONV_2D")
    assert {"stride_h", "stride_w", "padding", "dilation_h_factor", "dilation_w_factor"} <= set(
        conv.options
    )
    assert conv.stride == (conv.options["stride_h"], conv.options["stride_w"])
    assert conv.padding in ("SAME", "VALID")
    pool = next(op for op in g.ops if op.type == "MAX_POOL_2D")
    assert pool.kernel == (pool.options["filter_height"], pool.options["filter_width"])
    total = next(op for op in tflat.read_model(MODELS / "nmp.tflite").ops if op.type == "SUM")
    assert total.options["axis"] == list(total.inputs[1].values or ())
    assert total.options["axis"] and "keep_dims" in total.options


def test_bytes_and_path_give_the_same_graph() -> None:
    path = MODELS / "hand_recrop.tflite"
    a, b = tflat.read_model(path), tflat.read_model(path.read_bytes())
    assert isinstance(a, Graph)
    assert a.subgraphs == b.subgraphs


def with_custom_op(path: Path, code: str) -> bytes:
    """The model at ``path`` rewritten so its first operator code is the custom op ``code``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = 32
    model.operatorCodes[0].customCode = code
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_model_with_unknown_op_still_reads() -> None:
    g = tflat.read_model(with_custom_op(MODELS / "sine_float.tflite", "TflatTestOp"))
    assert [op.type for op in g.ops] == ["CUSTOM:TflatTestOp"] * 3
    assert not any(op.known for op in g.ops) and all(op.flops == 0 for op in g.ops)
    assert g.summary()["unknown_ops"] == ["CUSTOM:TflatTestOp"]
    assert all(op.to_dict()["known"] is False for op in g.ops)


def test_op_code_is_max_of_deprecated_and_builtin() -> None:
    """Codes above 127 live only in ``builtin_code`` (``deprecated_builtin_code`` holds 127)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from tflat.model.schema import builtin_codes

    model = schema.ModelT.InitFromPackedBuf((MODELS / "sine_float.tflite").read_bytes(), 0)
    model.operatorCodes[0].builtinCode = builtin_codes()["GELU"]  # 150
    model.operatorCodes[0].deprecatedBuiltinCode = 127
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    assert {op.type for op in tflat.read_model(bytes(builder.Output())).ops} == {"GELU"}
    model.operatorCodes[0].builtinCode = 0  # old files: only the deprecated field is set
    model.operatorCodes[0].deprecatedBuiltinCode = builtin_codes()["FULLY_CONNECTED"]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    assert {op.type for op in tflat.read_model(bytes(builder.Output())).ops} == {"FULLY_CONNECTED"}


def test_field_slots_follow_litert_schema() -> None:
    """The reader's vtable slots, learned from LiteRT's accessors, match schema.fbs."""
    from tflat.model.schema import option_layout, schema, slot_of

    assert slot_of("Model", "Subgraphs") == 2
    assert slot_of("Tensor", "ShapeSignature") == 7
    assert slot_of("Operator", "BuiltinOptions2") == 12
    layout = {f.key: f for f in option_layout(schema().Conv2DOptions)}
    assert layout["dilation_h_factor"].slot == 5 and layout["dilation_h_factor"].default == 1
    assert layout["padding"].code == "b" and layout["stride_w"].code == "i"
