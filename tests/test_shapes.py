"""Every tensor's real shape: real models against LiteRT, input shapes, and what gets flagged.

Every real model the tests have (tests/models, and the downloads of scripts/fetch_models.py
when present) is compared op by op with LiteRT after one invoke: each output's shape, no op
flagged, and the FLOPs of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and BATCH_MATMUL as
computed from LiteRT's shapes. The op kinds one by one are in tests/test_shapes_ops.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tflat
from litert_shapes import assert_shapes_equal_litert
from test_reader import ALL_MODELS, MODELS
from tflat.model import zoo
from tflat.model.cost import flops_of
from tflat.model.layers import GraphBuilder
from tflat.model.schema import builtin_names
from tflat.model.shapes import RULE_KINDS, InputShapeError, parse_input_shapes


@pytest.mark.parametrize("path", ALL_MODELS, ids=lambda p: p.name)
def test_real_model_shapes_equal_litert(path: Path) -> None:
    assert_shapes_equal_litert(path)


def test_every_op_kind_with_a_cost_formula_has_a_shape_rule() -> None:
    """WHERE alone is left to the file: its output size depends on the data."""
    kinds = [*builtin_names().values(), "CUSTOM:Convolution2DTransposeBias"]
    known = {k for k in kinds if flops_of(k, (), (), {}, None) is not None}
    assert len(known) > 120
    assert known - RULE_KINDS == {"WHERE"}


def test_dynamic_batch_real_model_resolves_for_another_batch() -> None:
    """nmp.tflite (basic-pitch) has a dynamic batch: batch 3 as LiteRT resizes it."""
    graph = assert_shapes_equal_litert(MODELS / "nmp.tflite", [(3, 43844, 1)])
    one = tflat.read_model(MODELS / "nmp.tflite")
    assert graph.inputs[0].shape_signature == (-1, 43844, 1)
    assert one.inputs[0].shape == (1, 43844, 1) and graph.inputs[0].shape == (3, 43844, 1)
    assert sum(op.flops for op in graph.ops) == pytest.approx(
        3 * sum(op.flops for op in one.ops), rel=0.01
    )


def _cnn(signature: tuple[int, ...] | None, blank: bool, size: int = 32) -> bytes:
    """A small CNN ending in a global mean and FC, so any batch, height and width run."""
    b = GraphBuilder(seed=5)
    x = b.input((1, size, size, 3), signature=signature)
    y = b.conv2d(x, 8, 3, stride=2, activation="relu6")
    y = b.depthwise_conv2d(y, 3, activation="relu6")
    y = b.conv2d(y, 16, 1)
    b.output(b.fully_connected(b.mean(y, keep_dims=False), 10))
    return b.to_bytes(blank_shapes=blank)


@pytest.fixture
def dynamic_hw(tmp_path: Path) -> Path:
    path = tmp_path / "dynamic_hw.tflite"
    path.write_bytes(_cnn((-1, -1, -1, 3), blank=True))
    return path


def test_dynamic_hw_needs_input_shape(dynamic_hw: Path) -> None:
    with pytest.raises(InputShapeError, match="--input-shape 1,H,W,3"):
        tflat.read_model(dynamic_hw)
    with pytest.raises(InputShapeError, match="--input-shape"):
        tflat.estimate(dynamic_hw, device="pixel4")
    assert_shapes_equal_litert(dynamic_hw, [(1, 48, 40, 3)])
    assert_shapes_equal_litert(dynamic_hw, [(2, 17, 9, 3)])


def test_dynamic_hw_estimate_equals_static_export(tmp_path: Path, dynamic_hw: Path) -> None:
    static = tmp_path / "static.tflite"
    static.write_bytes(_cnn(None, blank=False))
    a = tflat.estimate(static, device="pixel4")
    b = tflat.estimate(dynamic_hw, device="pixel4", input_shapes=[(1, 32, 32, 3)])
    assert b.total_ms == pytest.approx(a.total_ms, rel=1e-9)
    assert b.total_flops == a.total_flops
    assert [layer.output_shape for layer in b.layers] == [layer.output_shape for layer in a.layers]
    big = tflat.estimate(dynamic_hw, device="pixel4", input_shapes={"input_0": (1, 64, 64, 3)})
    assert big.total_flops == pytest.approx(4 * a.total_flops, rel=0.01)


def test_batch_only_dynamic_resolves_to_one_and_can_be_set(tmp_path: Path) -> None:
    path = tmp_path / "batch.tflite"
    path.write_bytes(_cnn((-1, 32, 32, 3), blank=True))
    one = tflat.read_model(path)
    assert one.inputs[0].shape == (1, 32, 32, 3) and not any(op.unresolved for op in one.ops)
    four = assert_shapes_equal_litert(path, [(4, 32, 32, 3)])
    assert sum(op.flops for op in four.ops) == 4 * sum(op.flops for op in one.ops)
    assert four.ops[-1].outputs[0].shape == (4, 10)


def test_given_shapes_must_fit_the_signature(tmp_path: Path) -> None:
    path = tmp_path / "batch.tflite"
    path.write_bytes(_cnn((-1, 32, 32, 3), blank=True))
    with pytest.raises(InputShapeError, match="dim 1 is fixed at 32"):
        tflat.read_model(path, input_shapes=[(1, 64, 64, 3)])
    with pytest.raises(InputShapeError, match="rank 4"):
        tflat.read_model(path, input_shapes=[(1, 32, 32)])
    with pytest.raises(InputShapeError, match="2 input shapes given for 1 inputs"):
        tflat.read_model(path, input_shapes=[(1, 32, 32, 3)] * 2)
    with pytest.raises(InputShapeError, match=r"no input named 'x' \(inputs: 'input_0'\)"):
        tflat.read_model(path, input_shapes={"x": (1, 32, 32, 3)})


def test_parse_input_shapes() -> None:
    assert parse_input_shapes([]) == []
    assert parse_input_shapes(["1,224,224,3"]) == [(1, 224, 224, 3)]
    assert parse_input_shapes(["2x8x8x3", "1, 4"]) == [(2, 8, 8, 3), (1, 4)]
    # tensor names hold colons: the shape follows the last one
    assert parse_input_shapes(["serving_default_x:0:1,3"]) == {"serving_default_x:0": (1, 3)}
    for bad in (["1,,3"], ["a,b"], ["-1,3"], [""]):
        with pytest.raises(InputShapeError, match="expected sizes like 1,224,224,3"):
            parse_input_shapes(bad)
    with pytest.raises(InputShapeError, match="name every input"):
        parse_input_shapes(["x:1,3", "1,3"])


def _with_data_dependent_op(tmp_path: Path) -> Path:
    """x -> WHERE (its output size depends on the data: no rule can know it) -> CAST -> RELU,
    beside a branch x -> RELU that owes WHERE nothing."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 4), signature=(-1, 4))
    mask = b.op("GREATER", [x, b.constant(np.zeros(4))], [(1, 4)], dtype="bool")[0]
    where = b.op("WHERE", [mask], [(1, 2)], dtype="int64")[0]
    cast = b.op("CAST", [where], [(1, 2)])[0]
    b.output(b.unary("RELU", cast), b.unary("RELU", x))
    path = tmp_path / "where.tflite"
    path.write_bytes(b.to_bytes(blank_shapes=True))
    return path


def test_unresolvable_op_is_flagged_with_what_depends_on_it(tmp_path: Path) -> None:
    path = _with_data_dependent_op(tmp_path)
    graph = tflat.read_model(path)
    flagged = {op.index: (op.type, op.unresolved) for op in graph.ops if op.unresolved}
    assert flagged == {
        1: ("WHERE", "no shape rule for WHERE: the file's stored shape is shown"),
        2: ("CAST", "depends on op 1, whose shape is unresolved"),
        3: ("RELU", "depends on op 1, whose shape is unresolved"),
    }
    assert graph.summary()["unresolved_ops"][0] == {
        "index": 1, "subgraph": 0, "type": "WHERE", "why": flagged[1][1]
    }  # fmt: skip
    est = tflat.estimate(path, device="pixel4")
    assert any(w.startswith("op 1 (WHERE): output shape unresolved") for w in est.warnings)
    assert any("2 ops read an unresolved shape" in w and "op 2, 3" in w for w in est.warnings)


def test_stored_shapes_stand_for_an_op_without_a_rule_on_stored_inputs(tmp_path: Path) -> None:
    """The same WHERE in a file whose shapes are static, read at the stored input shape: the
    file's shapes are what LiteRT starts from, so nothing is flagged."""
    b = GraphBuilder(seed=0)
    x = b.input((1, 4))
    mask = b.op("GREATER", [x, b.constant(np.zeros(4))], [(1, 4)], dtype="bool")[0]
    b.output(b.op("WHERE", [mask], [(3, 2)], dtype="int64")[0])
    graph = tflat.read_model(b.to_bytes())
    assert graph.ops[-1].outputs[0].shape == (3, 2) and not graph.ops[-1].unresolved


def _tflat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("tflat")
    cmd = [exe] if exe else [sys.executable, "-c", "from tflat.cli import main; main()"]
    return subprocess.run(
        [*cmd, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb"},
    )


@pytest.mark.parametrize("command", ["inspect", "estimate"])
def test_cli_dynamic_hw_exits_1_naming_input_shape(command: str, dynamic_hw: Path) -> None:
    result = _tflat(command, dynamic_hw)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tflat: error: "), result.stderr
    assert "--input-shape 1,H,W,3" in lines[0]
    bad = _tflat(command, dynamic_hw, "--input-shape", "1,32,x,3")
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1, bad.stderr
    ok = _tflat(command, dynamic_hw, "--input-shape", "1,32,32,3", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    shapes = (
        [op["outputs"][0]["shape"] for op in data["ops"]]
        if command == "inspect"
        else [layer["output_shape"] for layer in data["layers"]]
    )
    assert shapes[-1] == [1, 10] and [1, 16, 16, 8] in shapes


def test_cli_inspect_shows_unresolved_ops(tmp_path: Path) -> None:
    path = _with_data_dependent_op(tmp_path)
    table = _tflat("inspect", path)
    assert table.returncode == 0, table.stderr
    assert "(unresolved)" in table.stdout
    assert "op 1 (WHERE): output shape unresolved" in table.stdout
    as_csv = _tflat("inspect", path, "--format", "csv")
    assert "tflat: warning: op 1 (WHERE)" in as_csv.stderr
    assert as_csv.stdout.splitlines()[0].endswith(",unresolved")
    est = _tflat("estimate", path)
    assert est.returncode == 0, est.stderr
    assert "op 1 (WHERE): output shape unresolved" in est.stdout


def test_written_zoo_models_resolve_as_stored(tmp_path: Path) -> None:
    """Static models written by tflat: every resolved shape is the stored one."""
    for arch in ("mobilenetv2", "resnet18"):
        path = tmp_path / f"{arch}.tflite"
        path.write_bytes(zoo.build_model(arch, width=0.25, input_size=64, classes=10))
        graph = assert_shapes_equal_litert(path)
        assert all(t.shape == t.shape_signature for op in graph.ops for t in op.outputs)


def test_prior_plan_skips_a_dynamic_hw_model_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tflat.plans.plan import model_specs

    both, alone = tmp_path / "both", tmp_path / "alone"
    for folder in (both, alone):
        folder.mkdir()
        (folder / "static.tflite").write_bytes(_cnn(None, blank=False))
    (both / "dynamic.tflite").write_bytes(_cnn((-1, -1, -1, 3), blank=True))
    with caplog.at_level("WARNING"):
        specs = model_specs(both)
    assert specs and specs == model_specs(alone)
    assert "dynamic.tflite skipped" in caplog.text and "--input-shape" in caplog.text
