"""Which ops each GPU delegate backend takes: every rule of rules/tflite_gpu_support.toml on a
real .tflite file written with tflat's builder, and TFLite's grouping into partitions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import tflat
from pricing_graphs import generic_op, int_const, save
from tflat.gpu import partition
from tflat.gpu.support import (
    backend_of,
    delegated_ops,
    load_support,
    partition_subsets,
    refusal,
)
from tflat.model.writer import GraphBuilder


def refused(graph: tflat.Graph, op_type: str, family: str = "adreno") -> str:
    """The note of the (only) kernel whose main op is ``op_type``."""
    by_index = {op.index: op for op in graph.ops}
    k = next(k for k in partition(graph, gpu_family=family) if by_index[k.main_op].type == op_type)
    return "" if k.on_gpu else k.note


def test_backends_by_family() -> None:
    assert backend_of("apple:a12") == "metal" and backend_of("apple") == "metal"
    assert backend_of("adreno") == backend_of("mali:g76") == backend_of("x") == "opencl"
    assert load_support("metal").max_delegated_partitions == 1
    assert load_support("opencl").max_delegated_partitions == 1


def test_softmax_beta_and_mirror_pad_mode(tmp_path: Path) -> None:
    b = GraphBuilder()
    x = b.input((1, 8, 8, 16))
    y = b.softmax(x, beta=2.0)
    z = generic_op(
        b,
        "MIRROR_PAD",
        [y, int_const(b, [[0, 0], [1, 1], [1, 1], [0, 0]])],
        (1, 10, 10, 16),
        options=("MirrorPadOptions", {"mode": 1}),
    )  # SYMMETRIC
    b.output(b.softmax(z))
    g = save(b, tmp_path / "m.tflite")
    notes = [k.note for k in partition(g) if not k.on_gpu]
    assert any("beta" in n for n in notes) and any("REFLECT" in n for n in notes)
    assert sum(k.on_gpu for k in partition(g)) == 1  # the last softmax, beta 1


def test_strided_slice_masks_and_mul_matrix_vector(tmp_path: Path) -> None:
    b = GraphBuilder()
    x = b.input((1, 8, 8, 16))
    s = generic_op(b, "STRIDED_SLICE", [x, int_const(b, [0, 0, 0, 0]), int_const(b, [1, 8, 8, 1]),
                   int_const(b, [1, 1, 1, 1])], (1, 8, 8),
                   options=("StridedSliceOptions", {"shrinkAxisMask": 8}))  # fmt: skip
    col = b.input((1, 8, 1, 16), "col")
    row = b.input((1, 1, 8, 16), "row")
    b.output(s, b.mul(col, row))
    g = save(b, tmp_path / "s.tflite")
    assert "shrink" in refused(g, "STRIDED_SLICE")
    assert "smaller than the other" in refused(g, "MUL")


def test_int32_tensors_and_shape_ops_stay_on_the_cpu(tmp_path: Path) -> None:
    b = GraphBuilder()
    x = b.input((1, 8, 8, 16))
    shape = generic_op(b, "SHAPE", [x], (4,), dtype="int32")
    b.output(b.conv2d(x, 16, 1), shape)
    g = save(b, tmp_path / "shape.tflite")
    assert "no GPU kernel" in refused(g, "SHAPE")
    support = load_support("opencl")
    cast = next(op for op in g.ops if op.type == "SHAPE")
    assert refusal(cast, support) == "an output tensor of type int32"


def test_batch_matmul_with_a_constant_operand(tmp_path: Path) -> None:
    b = GraphBuilder()
    x = b.input((1, 16, 32))
    w = b.constant([[0.5] * 8] * 32, "w")
    b.output(generic_op(b, "BATCH_MATMUL", [x, w], (1, 16, 8),
                        options=("BatchMatMulOptions", {})))  # fmt: skip
    g = save(b, tmp_path / "bmm.tflite")
    assert "constant operand" in refused(g, "BATCH_MATMUL")


def test_only_the_largest_partition_is_delegated(tmp_path: Path) -> None:
    b = GraphBuilder()
    x = b.input((1, 16, 16, 8))
    y = b.conv2d(x, 8, 3)
    y = generic_op(b, "CUMSUM", [y, int_const(b, [3])], y.shape, options=("CumsumOptions", {}))
    for _ in range(3):
        y = b.conv2d(y, 8, 3)
    b.output(y)
    g = save(b, tmp_path / "split.tflite")
    for family in ("adreno", "apple:a12"):  # the three convs after CUMSUM only
        kernels = partition(g, gpu_family=family)
        assert [k.on_gpu for k in kernels] == [False, False, True, True, True]
        assert "largest partition" in kernels[0].note
    # an Android delegate asked for every partition (--max_delegated_partitions N) takes both
    every = replace(load_support("opencl"), max_delegated_partitions=0)
    takes = {op.index for op in g.ops if op.type != "CUMSUM"}
    assert delegated_ops(g.ops, takes, every) == frozenset(takes)


def test_partition_subsets_follow_tflite_grouping() -> None:
    """A diamond: an op the delegate refuses on one branch does not split the other branch
    from the ops after it when their inputs are ready (TFLite's greedy sweep)."""
    b = GraphBuilder()
    x = b.input((1, 8, 8, 8))
    a = b.conv2d(x, 8, 1)  # 1
    c = generic_op(b, "CUMSUM", [x, int_const(b, [3])], x.shape, options=("CumsumOptions", {}))
    d = b.conv2d(a, 8, 1)  # 3
    b.output(b.add(d, c))  # 4
    g = tflat.read_model(_write(b))
    takes = {op.index for op in g.ops if op.type != "CUMSUM"}
    subsets = partition_subsets(g.ops, takes)
    # conv, conv (ready) first; then the CUMSUM; then the add that needs both
    assert [[g.ops[i].type for i in s] for s in subsets] == [
        ["CONV_2D", "CONV_2D"],
        ["CUMSUM"],
        ["ADD"],
    ]
    assert delegated_ops(g.ops, takes, load_support("metal")) == frozenset(subsets[0])


def _write(b: GraphBuilder) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "g.tflite"
    path.write_bytes(b.to_bytes())
    return path


@pytest.mark.parametrize("family", ["adreno", "apple:a12"])
def test_vendored_cnns_stay_whole_on_both_backends(family: str) -> None:
    path = Path(__file__).parent / "models" / "face_detection_short_range.tflite"
    assert all(k.on_gpu for k in partition(tflat.read_model(path), gpu_family=family))
