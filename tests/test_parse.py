"""Parsing benchmark tool output, on real output recorded in public docs and issues."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflat.bench.parse import clean_lines, parse_benchmark_output
from tflat.errors import DeviceError

DATA = Path(__file__).parent / "data" / "benchmark_model"


def load(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_every_sample_is_listed_in_source_md() -> None:
    listed = load("SOURCE.md")
    for path in DATA.glob("*.txt"):
        assert f"`{path.name}`" in listed, path.name


def test_android_gpu_run_warmup_and_regular_runs() -> None:
    out = parse_benchmark_output(load("tf43541_android_gpu.txt"))
    assert out.inference is not None and out.warmup is not None
    assert out.inference.count == 50
    assert out.inference.avg_ms == pytest.approx(119.375)
    assert out.inference.min_ms == pytest.approx(113.737)
    assert out.inference.max_ms == pytest.approx(124.776)
    assert out.inference.std_ms == pytest.approx(1.948)
    assert out.warmup.count == 4 and out.warmup.avg_ms == pytest.approx(122.373)
    assert out.init_ms == pytest.approx(870.557)
    assert out.first_ms == pytest.approx(130.565)
    assert out.op_profile == () and out.error is None


def test_cpu_run_with_one_stat_line_and_summary() -> None:
    out = parse_benchmark_output(load("lp6m_mi11_cpu_fp32.txt"))
    assert out.inference is not None
    assert out.inference.count == 50 and out.inference.avg_ms == pytest.approx(220.0)
    assert out.warmup is None
    assert out.init_ms == pytest.approx(1.430)
    m = out.to_measurement(warmup=1)
    assert m.ok and m.samples_ms == () and m.count == 50
    assert m.mean_ms == pytest.approx(220.0) and m.min_ms == pytest.approx(206.675)
    assert m.median_ms is None  # the tool does not print one


def test_op_profile_with_delegate_rows() -> None:
    out = parse_benchmark_output(load("lp6m_mi11_nnapi_op_profile.txt"))
    assert out.inference is not None
    assert out.inference.count == 50 and out.inference.avg_ms == pytest.approx(164.609)
    rows = out.op_profile
    assert len(rows) == 14  # "14 nodes observed"; the init profile's 2 rows are not mixed in
    assert [r.node_index for r in rows[:6]] == [0, 1, 2, 3, 4, 5]
    delegate = [r for r in rows if r.op_type == "TfLiteNnapiDelegate"]
    assert [r.node_index for r in delegate] == [270, 271, 272]
    assert delegate[0].avg_ms == pytest.approx(83.750)
    assert delegate[0].first_ms == pytest.approx(86.415)
    assert delegate[0].share == pytest.approx(0.50878)
    assert delegate[0].name.startswith("model/tf.math.multiply_23/Mul, ")
    assert rows[-1].op_type == "TRANSPOSE" and rows[-1].name == "Identity_1"
    # per-type totals printed by the tool agree with the rows
    by_type: dict[str, float] = {}
    for r in rows:
        by_type[r.op_type] = by_type.get(r.op_type, 0.0) + r.avg_ms * r.times_called
    assert by_type["TfLiteNnapiDelegate"] == pytest.approx(152.261, abs=0.01)
    assert by_type["STRIDED_SLICE"] == pytest.approx(8.338, abs=0.01)
    assert sum(r.share or 0 for r in rows) == pytest.approx(1.0, abs=0.001)
    m = out.to_measurement(warmup=1)
    assert m.ok and len(m.op_profile) == 14


def test_tool_failure_is_a_failed_measurement() -> None:
    out = parse_benchmark_output(load("lp6m_mi11_nnapi_failed.txt"))
    assert out.inference is None
    assert out.error is not None and "ANEURALNETWORKS_BAD_DATA" in out.error
    m = out.to_measurement(warmup=1)
    assert m.status == "failed" and not m.ok


def test_cut_short_output_is_not_taken_for_a_result() -> None:
    # ends after the warm-up line: its single count= line is the warm-up, not the result
    out = parse_benchmark_output(load("tf58379_windows_gpu_head.txt"))
    assert out.inference is None
    assert out.warmup is not None and out.warmup.count == 20
    assert out.error is not None and "cut short" in out.error


def test_summary_line_alone() -> None:
    out = parse_benchmark_output(load("tf49158_timings_line.txt"))
    assert out.inference is not None
    assert out.inference.avg_ms == pytest.approx(0.0155197)
    assert out.init_ms == pytest.approx(0.769) and out.first_ms == pytest.approx(0.533)


def test_old_tool_format() -> None:
    out = parse_benchmark_output(load("yuenshome77_old_format.txt"))
    assert out.inference is not None and out.warmup is not None
    assert out.inference.count == 15 and out.inference.avg_ms == pytest.approx(66.7676)
    assert out.warmup.count == 7
    assert out.init_ms == pytest.approx(9.933)


def test_litert_benchmark_tool() -> None:
    out = parse_benchmark_output(load("litert_py_hand_recrop_cpu.txt"))
    assert out.tool == "litert_benchmark"
    assert out.inference is not None and out.warmup is not None
    assert out.inference.count == 20
    assert out.inference.avg_ms == pytest.approx(1.28)
    assert out.inference.median_ms == pytest.approx(1.19)
    assert out.inference.min_ms == pytest.approx(1.11)
    assert out.warmup.count == 5 and out.warmup.first_ms == pytest.approx(5.55)
    assert out.init_ms == pytest.approx(10.54)
    assert out.to_measurement(5).median_ms == pytest.approx(1.19)


def test_logcat_and_info_prefixes_are_removed() -> None:
    text = (
        "05-31 10:31:13.022 21767 21767 I tflite  : Log parameter values verbosely: [0]\n"
        "INFO: count=3 first=10 curr=10 min=10 max=12 avg=10.6667 std=1\n"
    )
    assert clean_lines(text) == [
        "Log parameter values verbosely: [0]",
        "count=3 first=10 curr=10 min=10 max=12 avg=10.6667 std=1",
    ]
    prefixed = "\n".join(f"INFO: {ln}" for ln in load("tf43541_android_gpu.txt").splitlines())
    assert parse_benchmark_output(prefixed) == parse_benchmark_output(
        load("tf43541_android_gpu.txt")
    )


def test_unreadable_output_quotes_its_first_lines() -> None:
    with pytest.raises(DeviceError, match=r"no timings found.*/system/bin/sh: benchmark_model"):
        parse_benchmark_output("/system/bin/sh: benchmark_model: inaccessible or not found\n")
