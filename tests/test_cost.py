"""FLOPs and normalized options, checked against computations that do not use tflat's code.

Convolution FLOPs are recomputed from the tensor shapes LiteRT reports after allocating the
model (``2 * output elements * filter elements / output channels``, one formula for dense and
depthwise convs), and the stride, padding and dilation tflat read must reproduce the output
size LiteRT computed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import tflat
from tflat.model.cost import make_op
from tflat.model.ops import TensorInfo

MODELS = Path(__file__).parent / "models"
CONV_MODELS = [
    "face_detection_short_range.tflite",
    "selfie_segmentation.tflite",
    "hand_recrop.tflite",
    "nmp.tflite",
    "hey_jarvis.tflite",
]


def _litert_shapes(path: Path) -> dict[int, tuple[int, ...]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return {d["index"]: tuple(int(v) for v in d["shape"]) for d in interp.get_tensor_details()}


def _out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // stride)
    return -(-(size - (k - 1) * dilation) // stride)


@pytest.mark.parametrize("name", CONV_MODELS)
def test_conv_flops_equal_independent_count(name: str) -> None:
    assert_conv_flops_exact(MODELS / name)


@pytest.mark.parametrize("arch", ["mobilenetv2", "resnet18"])
def test_conv_flops_of_tflat_written_classifiers(tmp_path: Path, arch: str) -> None:
    zoo = pytest.importorskip("tflat.model.zoo")
    path = tmp_path / f"{arch}.tflite"
    path.write_bytes(zoo.build_model(arch, width=0.25, input_size=64, classes=10))
    assert_conv_flops_exact(path)


def assert_conv_flops_exact(path: Path) -> None:
    name = path.name
    graph = tflat.read_model(path)
    shapes = _litert_shapes(path)
    convs = [op for op in graph.ops if op.type in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs
    for op in convs:
        x, w, y = (shapes[t.index] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        # Shapes are resolved as LiteRT resolves them (op by op in tests/test_shapes.py).
        assert op.flops == 2 * int(np.prod(y)) * int(np.prod(w)) // y[-1], (name, op.index)
        assert op.kernel == (w[1], w[2])
        assert op.stride is not None and op.dilation is not None and op.padding is not None
        for axis in (0, 1):
            assert y[1 + axis] == _out_size(
                x[1 + axis], w[1 + axis], op.stride[axis], op.dilation[axis], op.padding
            ), (name, op.index, axis)
        if op.type == "CONV_2D":
            assert op.groups == x[-1] // w[-1]
        else:
            assert op.groups == x[-1] and op.depth_multiplier == y[-1] // x[-1]


def test_transpose_conv_flops_from_litert_shapes() -> None:
    path = MODELS / "selfie_segmentation.tflite"
    shapes = _litert_shapes(path)
    op = next(op for op in tflat.read_model(path).ops if op.type.endswith("TransposeBias"))
    x, w = shapes[op.inputs[0].index], shapes[op.inputs[1].index]
    # Every input element meets the whole kernel for every output channel.
    assert op.flops == 2 * int(np.prod(x)) * int(np.prod(w)) // w[-1]
    y = shapes[op.outputs[0].index]
    assert op.stride is not None and y[1] == x[1] * op.stride[0]


def test_pool_flops_and_window() -> None:
    path = MODELS / "hand_recrop.tflite"
    shapes = _litert_shapes(path)
    pools = [op for op in tflat.read_model(path).ops if op.type == "MAX_POOL_2D"]
    assert pools
    for op in pools:
        assert op.kernel is not None and op.stride is not None and op.padding is not None
        x, y = shapes[op.inputs[0].index], shapes[op.outputs[0].index]
        assert op.flops == int(np.prod(y)) * op.kernel[0] * op.kernel[1]
        assert y[1] == _out_size(x[1], op.kernel[0], op.stride[0], 1, op.padding)


def test_sine_model_by_hand() -> None:
    """TFLite Micro's sine model: FC 1->16, 16->16, 16->1 (ReLU fused into the first two)."""
    g = tflat.read_model(MODELS / "sine_float.tflite")
    assert [op.type for op in g.ops] == ["FULLY_CONNECTED"] * 3
    assert [op.flops for op in g.ops] == [2 * 16 * 1, 2 * 16 * 16, 2 * 1 * 16]
    assert [op.activation for op in g.ops] == ["RELU", "RELU", "NONE"]
    s = g.summary()
    assert s["total_flops"] == 576
    assert s["parameters"] == (16 + 16) + (256 + 16) + (16 + 1)
    assert s["weight_bytes"] == 4 * s["parameters"]


@pytest.mark.parametrize("name", [*CONV_MODELS, "sine_float.tflite"])
def test_rows_add_up_to_summary(name: str) -> None:
    g = tflat.read_model(MODELS / name)
    s = g.summary()
    assert s["total_flops"] == sum(op.flops for op in g.all_ops) > 0
    assert sum(s["op_counts"].values()) == s["ops"] == len(g.all_ops)
    assert s["size_bytes"] == (MODELS / name).stat().st_size
    assert s["weight_bytes"] <= s["size_bytes"]


def _t(index: int, shape: tuple[int, ...], constant: bool = False) -> TensorInfo:
    return TensorInfo(index, f"t{index}", shape, "float32", constant)


def test_grouped_conv() -> None:
    x, w, b = _t(0, (1, 28, 28, 32)), _t(1, (64, 3, 3, 8), True), _t(2, (64,), True)
    y = _t(3, (1, 14, 14, 64))
    op = make_op(
        index=0,
        op_type="CONV_2D",
        inputs=(x, w, b),
        outputs=(y,),
        options={"stride_h": 2, "stride_w": 2, "padding": "SAME", "dilation_h_factor": 2},
    )
    assert op.groups == 4
    assert op.flops == 2 * (14 * 14 * 64) * (3 * 3 * 8)
    assert op.stride == (2, 2) and op.dilation == (2, 1) and op.kernel == (3, 3)
    assert op.weight_bytes == 4 * (64 * 9 * 8 + 64) and op.input_bytes == 4 * 28 * 28 * 32


def test_matmul_lstm_and_rfft() -> None:
    a, bm, out = _t(0, (2, 5, 7)), _t(1, (2, 7, 3)), _t(2, (2, 5, 3))
    assert make_op(index=0, op_type="BATCH_MATMUL", inputs=(a, bm), outputs=(out,), options={}
                   ).flops == 2 * 30 * 7  # fmt: skip
    seq, h = _t(0, (1, 10, 40)), _t(1, (1, 10, 64))
    lstm = make_op(index=0, op_type="UNIDIRECTIONAL_SEQUENCE_LSTM", inputs=(seq,),
                   outputs=(h,), options={})  # fmt: skip
    assert lstm.flops == 2 * 640 * 4 * (40 + 64)
    frames = _t(0, (3, 1, 512))
    fft = TensorInfo(1, "fft", (2,), "int32", True, values=(1, 512))
    rfft = make_op(index=0, op_type="RFFT2D", inputs=(frames, fft), outputs=(_t(2, (3, 1, 257)),),
                   options={})  # fmt: skip
    assert rfft.flops == int(2.5 * 3 * 512 * math.log2(512))


def test_data_movement_and_state_ops_are_known_and_free() -> None:
    x = _t(0, (1, 8, 8, 4))
    for op_type in ("RESHAPE", "CONCATENATION", "DENSIFY", "VAR_HANDLE", "CALL_ONCE"):
        op = make_op(index=0, op_type=op_type, inputs=(x,), outputs=(x,), options={})
        assert op.known and op.flops == 0, op_type
    unknown = make_op(index=0, op_type="CUSTOM:Foo", inputs=(x,), outputs=(x,), options={})
    assert not unknown.known and unknown.flops == 0
