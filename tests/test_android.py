"""The android runner: real adb client where it can run here; a phone stand-in otherwise.

The stand-in is the injected command executor: it records the argument lists the runner sends
and answers with output recorded from real phones (tests/data/benchmark_model).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tflat.bench import RunSettings, get_runner
from tflat.bench.android import (
    AndroidRunner,
    CommandResult,
    parse_adb_devices,
    parse_gles_line,
    remote_name,
)
from tflat.errors import DeviceError

DATA = Path(__file__).parent / "data" / "benchmark_model"
MODEL = Path(__file__).parent / "models" / "hand_recrop.tflite"


class Phone:
    """Stands in for one attached phone: records commands, replays recorded output."""

    def __init__(self, serial: str, bench_output: str, state: str = "device") -> None:
        self.serial, self.bench_output, self.state = serial, bench_output, state
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str], timeout_s: float) -> CommandResult:
        args = list(args)
        self.calls.append(args)
        assert timeout_s > 0
        if args[1:] == ["devices"]:
            return CommandResult(0, f"List of devices attached\n{self.serial}\t{self.state}\n", "")
        assert args[1:3] == ["-s", self.serial]
        rest = args[3:]
        if rest[:2] == ["shell", "getprop"]:
            props = {"ro.product.model": "Pixel 4", "ro.board.platform": "msmnile"}
            return CommandResult(0, props.get(rest[2], "") + "\n", "")
        if rest[:2] == ["shell", "dumpsys"]:
            return CommandResult(0, "GLES: Qualcomm, Adreno (TM) 640, OpenGL ES 3.2 V@415.0\n", "")
        if rest[0] == "shell" and rest[1].endswith("/benchmark_model"):
            return CommandResult(0, self.bench_output, "")
        return CommandResult(0, "", "")


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    b = tmp_path / "benchmark_model"
    b.write_bytes(b"\x7fELF stand-in")
    return b


def test_real_adb_without_a_phone_is_a_device_error(
    binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adb = shutil.which("adb")
    if adb is None:
        pytest.skip("Debian package adb not installed")
    # A server of this test's own: another adb server on the default port (a developer's, or
    # one left hanging) must neither answer for it nor be killed by it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    runner = AndroidRunner("tflat-no-such-serial", benchmark_binary=binary)
    try:
        with pytest.raises(DeviceError, match="no phone tflat-no-such-serial attached") as err:
            runner.measure(MODEL, RunSettings(delegate="gpu"))
        assert err.value.exit_code == 2
    finally:
        subprocess.run([adb, "kill-server"], capture_output=True, timeout=30, check=False)


def test_missing_adb_and_missing_binary(binary: Path, tmp_path: Path) -> None:
    no_adb = AndroidRunner("X", benchmark_binary=binary, adb=str(tmp_path / "nope" / "adb"))
    with pytest.raises(DeviceError, match="install the Debian package adb"):
        no_adb.measure(MODEL, RunSettings())
    phone = Phone("X", "")
    no_bin = AndroidRunner("X", benchmark_binary=tmp_path / "missing", adb="adb", executor=phone)
    with pytest.raises(DeviceError, match=r"benchmark binary .* not found"):
        no_bin.measure(MODEL, RunSettings())
    with pytest.raises(DeviceError, match="--benchmark-binary"):
        AndroidRunner("X", adb="adb", executor=phone).measure(MODEL, RunSettings())


def test_unauthorized_phone(binary: Path) -> None:
    phone = Phone("R58M", "", state="unauthorized")
    runner = AndroidRunner("R58M", benchmark_binary=binary, adb="adb", executor=phone)
    with pytest.raises(DeviceError, match="unauthorized"):
        runner.measure(MODEL, RunSettings())


def test_gpu_measurement_commands_and_result(binary: Path) -> None:
    phone = Phone("9A1", (DATA / "tf43541_android_gpu.txt").read_text())
    runner = get_runner("android:9A1", benchmark_binary=binary, adb="adb", executor=phone)
    settings = RunSettings(delegate="gpu", precision="fp16", warmup=1, repeats=50)
    m = runner.measure(MODEL, settings)
    assert m.ok and m.samples_ms == () and m.reported is not None
    assert m.count == 50 and m.mean_ms == pytest.approx(119.375)
    assert m.init_ms == pytest.approx(870.557)
    remote = "/data/local/tmp/tflat"
    assert ["adb", "-s", "9A1", "push", str(binary), f"{remote}/benchmark_model"] in phone.calls
    assert ["adb", "-s", "9A1", "shell", "chmod", "+x", f"{remote}/benchmark_model"] in phone.calls
    pushed = f"{remote}/{remote_name(MODEL)}"
    assert ["adb", "-s", "9A1", "push", str(MODEL.resolve()), pushed] in phone.calls
    run = phone.calls[-1]
    assert run[:5] == ["adb", "-s", "9A1", "shell", f"{remote}/benchmark_model"]
    assert f"--graph={pushed}" in run
    assert "--use_gpu=true" in run and "--gpu_precision_loss_allowed=true" in run
    assert "--num_runs=50" in run and "--warmup_runs=1" in run
    assert not any(a.startswith("--num_threads") for a in run)
    assert "--enable_op_profiling=true" not in run
    # the model is pushed once, the binary once
    runner.measure(MODEL, settings)
    pushes = [c for c in phone.calls if c[3:4] == ["push"]]
    assert len(pushes) == 2


def test_cpu_profiled_whole_model(binary: Path) -> None:
    phone = Phone("9A1", (DATA / "lp6m_mi11_nnapi_op_profile.txt").read_text())
    runner = AndroidRunner("9A1", benchmark_binary=binary, adb="adb", executor=phone)
    m = runner.measure(MODEL, RunSettings(delegate="cpu", threads=4), profile=True)
    run = phone.calls[-1]
    assert "--num_threads=4" in run and "--use_xnnpack=false" in run
    assert "--enable_op_profiling=true" in run and "--use_gpu=true" not in run
    assert m.ok and len(m.op_profile) == 14
    runner.close()
    assert phone.calls[-1][3:5] == ["shell", "rm"]


def test_tool_failure_becomes_failed_measurement(binary: Path) -> None:
    phone = Phone("9A1", (DATA / "lp6m_mi11_nnapi_failed.txt").read_text())
    runner = AndroidRunner("9A1", benchmark_binary=binary, adb="adb", executor=phone)
    m = runner.measure(MODEL, RunSettings(delegate="cpu"))
    assert m.status == "failed" and "ANEURALNETWORKS_BAD_DATA" in (m.error or "")


def test_device_facts(binary: Path) -> None:
    phone = Phone("9A1", "")
    info = AndroidRunner("9A1", benchmark_binary=binary, adb="adb", executor=phone).device_info()
    assert info.model == "Pixel 4" and info.soc == "msmnile"
    assert info.gpu == "Adreno (TM) 640" and info.driver.startswith("OpenGL ES 3.2")
    assert info.device_id == "android:9A1"


def test_adb_devices_and_gles_parsing() -> None:
    listing = (
        "* daemon not running; starting now at tcp:5037\n* daemon started successfully\n"
        "List of devices attached\nemulator-5554\tdevice\nR58M\tunauthorized\n\n"
    )
    assert parse_adb_devices(listing) == {"emulator-5554": "device", "R58M": "unauthorized"}
    assert parse_gles_line("nothing here") == ("", "")
