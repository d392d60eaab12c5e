"""``tflat inspect`` through the installed command: outputs, and every bad input.

Each bad input must exit 1 with exactly one line on stderr and no traceback. The command runs
as a real subprocess, so an uncaught exception anywhere would show.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = Path(__file__).parent / "models"


def run(*args: str | Path, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("tflat")
    cmd = [exe] if exe else [sys.executable, "-c", "from tflat.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"TERM": "dumb"}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [*cmd, "inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tflat: error: ")
    assert needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def _rebuilt(path: Path, identifier: bytes, custom_code: str | None = None) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    if custom_code is not None:
        model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = 32
        model.operatorCodes[0].customCode = custom_code
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=identifier)
    return bytes(builder.Output())


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run(tmp_path / "nope.tflite"), "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_one_line_error(run(tmp_path), "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    assert_one_line_error(run(empty), "empty file")


def test_random_bytes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(random.Random(7).randbytes(5000))
    assert_one_line_error(run(junk), "not a .tflite model")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_model(tmp_path: Path, keep: float) -> None:
    data = (MODELS / "hand_recrop.tflite").read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: int(len(data) * keep)])
    assert_one_line_error(run(cut), "corrupt")


def test_flatbuffer_with_another_identifier(tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(_rebuilt(MODELS / "sine_float.tflite", b"XMDL"))
    assert_one_line_error(run(other), "file identifier b'XMDL'")


def test_tflite_identifier_on_another_table(tmp_path: Path) -> None:
    """A valid flatbuffer, TFL3-tagged, whose root is not a Model (an OperatorCode)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    code = schema.OperatorCodeT()
    code.builtinCode = 3
    builder = flatbuffers.Builder(64)
    builder.Finish(code.Pack(builder), file_identifier=b"TFL3")
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(bytes(builder.Output()))
    assert_one_line_error(run(fake), fake.name)


def test_unwritable_output(tmp_path: Path) -> None:
    result = run(MODELS / "sine_float.tflite", "-o", tmp_path / "missing" / "out.json")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_op_still_inspects_flagged(tmp_path: Path) -> None:
    model = tmp_path / "custom.tflite"
    model.write_bytes(_rebuilt(MODELS / "sine_float.tflite", b"TFL3", "TflatTestOp"))
    table = run(model)
    assert table.returncode == 0, table.stderr
    assert "CUSTOM:TflatTestOp (unknown)" in table.stdout
    assert "unknown ops" in table.stdout
    data = json.loads(run(model, "--format", "json").stdout)
    assert data["summary"]["unknown_ops"] == ["CUSTOM:TflatTestOp"]
    assert [op["known"] for op in data["ops"]] == [False, False, False]


def test_json_shape() -> None:
    result = run(MODELS / "face_detection_short_range.tflite", "--format", "json")
    assert result.returncode == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    ops = data["ops"]
    assert len(ops) == data["summary"]["ops"] == 164
    for op in ops:
        assert {"index", "type", "inputs", "outputs", "flops", "options"} <= set(op)
        for t in (*op["inputs"], *op["outputs"]):
            assert isinstance(t["shape"], list) and isinstance(t["dtype"], str)
    conv = next(op for op in ops if op["type"] == "CONV_2D")
    assert conv["kernel"] and conv["stride"] and conv["padding"] in ("SAME", "VALID")
    assert {"dilation", "groups", "activation", "weight_bytes", "input_bytes"} <= set(conv)
    s = data["summary"]
    assert s["total_flops"] == sum(op["flops"] for op in ops)
    assert s["op_counts"]["CONV_2D"] == sum(op["type"] == "CONV_2D" for op in ops)
    assert s["parameters"] > 0 and s["size_bytes"] == 229714


def test_csv_to_file(tmp_path: Path) -> None:
    out = tmp_path / "ops.csv"
    result = run(MODELS / "hey_jarvis.tflite", "--format", "csv", "-o", out)
    assert result.returncode == 0 and result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 57  # 45 ops in the main subgraph + 12 in the init subgraph
    assert {r["subgraph"] for r in rows} == {"0", "1"}
    assert sum(int(r["flops"]) for r in rows) > 0


def test_table_is_readable_when_piped() -> None:
    result = run(MODELS / "selfie_segmentation.tflite")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    # Whole type names and shapes, not 80 columns of ellipses.
    assert any("CUSTOM:Convolution2DTransposeBias" in line for line in lines)
    assert any("1x128x128x16" in line and "1x256x256x1 " in line for line in lines)
    assert "…" not in result.stdout
    body = [line for line in lines if line.split()[:1] and line.split()[0].isdigit()]
    assert len(body) == 246  # one row per op, none wrapped
    assert "total FLOPs" in result.stdout and "parameters" in result.stdout


@pytest.mark.parametrize("model", ["selfie_segmentation", "hey_jarvis", "nmp"])
def test_table_fits_80_columns(model: str) -> None:
    """COLUMNS=80: every line fits, columns go in their stated order, numbers stay whole."""
    result = run(MODELS / f"{model}.tflite", columns="80")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = lines[1].split()
    assert header[:2] == ["#", "type"] and "output" in header and "FLOPs" in header
    assert "dtype" not in header  # the first to go
    whole = run(MODELS / f"{model}.tflite", "--format", "json")
    data = json.loads(whole.stdout)
    rows = [line for line in lines if line.split()[:1] and line.split()[0][-1:].isdigit()]
    assert len(rows) == data["summary"]["ops"]
    for op, line in zip(data["ops"], rows, strict=False):
        if op["outputs"]:
            assert "x".join(map(str, op["outputs"][0]["shape"])) in line
