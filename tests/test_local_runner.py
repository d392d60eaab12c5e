"""The host-cpu runner: real LiteRT in a real child process, real crashes and hangs.

The hang is a real .tflite whose WHILE loop never ends; the crash is a real SIGSEGV delivered to
the worker while it is inside LiteRT's invoke().
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from pathlib import Path

import pytest

from tflat.bench import Measurement, RunSettings, get_runner
from tflat.bench.local import LocalRunner, host_device_id
from tflat.errors import TflatError

MODELS = Path(__file__).parent / "models"
FAST = RunSettings(warmup=1, repeats=5, timeout_s=60)


def _tensor(sch, name: str, ttype: int, buffer: int = 0):
    t = sch.TensorT()
    t.name, t.type, t.shape, t.buffer = name.encode(), ttype, [1], buffer
    return t


def _op(sch, code: int, inputs: list[int], outputs: list[int], options=None, opt_type=0):
    o = sch.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = code, inputs, outputs
    o.builtinOptionsType, o.builtinOptions = opt_type, options
    return o


def _subgraph(sch, tensors, ops, inputs, outputs):
    g = sch.SubGraphT()
    g.tensors, g.operators, g.inputs, g.outputs = tensors, ops, inputs, outputs
    return g


def write_endless_loop_model(path: Path) -> Path:
    """A model whose WHILE loop never ends: cond is x < 1e30, body adds 0."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as sch

    f32, boolean = sch.TensorType.FLOAT32, sch.TensorType.BOOL
    codes = []
    for builtin in (sch.BuiltinOperator.WHILE, sch.BuiltinOperator.LESS, sch.BuiltinOperator.ADD):
        c = sch.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = builtin
        c.version = 1
        codes.append(c)
    empty = sch.BufferT()
    big, zero = sch.BufferT(), sch.BufferT()
    big.data = list(struct.pack("<f", 1e30))
    zero.data = list(struct.pack("<f", 0.0))
    opts = sch.WhileOptionsT()
    opts.condSubgraphIndex, opts.bodySubgraphIndex = 1, 2
    main = _subgraph(
        sch,
        [_tensor(sch, "x", f32), _tensor(sch, "y", f32)],
        [_op(sch, 0, [0], [1], opts, sch.BuiltinOptions.WhileOptions)],
        [0],
        [1],
    )
    cond = _subgraph(
        sch,
        [_tensor(sch, "x", f32), _tensor(sch, "big", f32, 1), _tensor(sch, "c", boolean)],
        [_op(sch, 1, [0, 1], [2])],
        [0],
        [2],
    )
    body = _subgraph(
        sch,
        [_tensor(sch, "x", f32), _tensor(sch, "zero", f32, 2), _tensor(sch, "y", f32)],
        [_op(sch, 2, [0, 1], [2], sch.AddOptionsT(), sch.BuiltinOptions.AddOptions)],
        [0],
        [2],
    )
    model = sch.ModelT()
    model.version, model.operatorCodes = 3, codes
    model.subgraphs, model.buffers = [main, cond, body], [empty, big, zero]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


@pytest.fixture(scope="module")
def runner():
    r = LocalRunner(threads=1)
    yield r
    r.close()


def test_device_ids_and_bad_ids() -> None:
    assert host_device_id(1) == "host-cpu"
    assert host_device_id(4) == "host-cpu-t4"
    assert get_runner("host-cpu").device_id == "host-cpu"
    assert get_runner("host-cpu", threads=2).device_id == "host-cpu-t2"
    r = get_runner("host-cpu-t3")
    assert isinstance(r, LocalRunner) and r.threads == 3
    with pytest.raises(TflatError, match="unknown device"):
        get_runner("pixel4")
    with pytest.raises(TflatError, match="contradicts"):
        get_runner("host-cpu-t2", threads=4)


def test_facts(runner: LocalRunner) -> None:
    info = runner.device_info()
    assert info.device_id == "host-cpu"
    assert int(info.extra["cores"]) >= 1 and info.os
    rt = runner.runtime_info()
    assert rt.runtime == "ai-edge-litert" and rt.version[0].isdigit()


def test_measures_real_models_and_reuses_one_worker(runner: LocalRunner) -> None:
    results: list[Measurement] = []
    pids = set()
    for name in ("hand_recrop.tflite", "face_detection_short_range.tflite"):
        results.append(runner.measure(MODELS / name, FAST))
        assert runner._worker is not None
        pids.add(runner._worker.proc.pid)
    assert len(pids) == 1, "one persistent worker serves consecutive models"
    for m in results:
        assert m.ok, m.error
        assert len(m.samples_ms) == FAST.repeats and m.warmup == FAST.warmup
        assert all(0 < s < 10_000 for s in m.samples_ms)
        assert m.min_ms is not None and m.median_ms is not None
        assert m.min_ms <= m.median_ms
        assert m.init_ms is not None and m.init_ms > 0
        assert m.op_profile == ()  # LiteRT's Python API has no op profiler


def test_plain_cpu_kernels_and_unsupported_settings(runner: LocalRunner) -> None:
    m = runner.measure(MODELS / "hand_recrop.tflite", RunSettings(delegate="cpu", repeats=3))
    assert m.ok
    gpu = runner.measure(MODELS / "hand_recrop.tflite", RunSettings(delegate="gpu"))
    assert gpu.status == "unsupported" and "GPU" in (gpu.error or "")
    fp16 = runner.measure(MODELS / "hand_recrop.tflite", RunSettings(precision="fp16"))
    assert fp16.status == "unsupported"


def test_bad_model_is_a_failed_measurement(runner: LocalRunner, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    m = runner.measure(junk, FAST)
    assert m.status == "failed" and not m.ok
    assert m.error and "\n" not in m.error
    missing = runner.measure(tmp_path / "nope.tflite", FAST)
    assert missing.status == "failed" and "no such file" in (missing.error or "")
    # the worker survived and still measures
    assert runner.measure(MODELS / "hand_recrop.tflite", FAST).ok


def test_hang_times_out_and_worker_is_replaced(runner: LocalRunner, tmp_path: Path) -> None:
    endless = write_endless_loop_model(tmp_path / "endless.tflite")
    runner.measure(MODELS / "hand_recrop.tflite", FAST)
    assert runner._worker is not None
    old = runner._worker.proc
    m = runner.measure(endless, RunSettings(warmup=0, repeats=1, timeout_s=1.5))
    assert m.status == "timeout" and "1.5 s" in (m.error or "")
    assert old.poll() is not None, "the hung worker was killed"
    after = runner.measure(MODELS / "hand_recrop.tflite", FAST)
    assert after.ok
    assert runner._worker is not None and runner._worker.proc.pid != old.pid


def test_crash_inside_invoke_is_a_failed_measurement(runner: LocalRunner, tmp_path: Path) -> None:
    endless = write_endless_loop_model(tmp_path / "endless.tflite")
    runner.measure(MODELS / "hand_recrop.tflite", FAST)
    assert runner._worker is not None
    pid = runner._worker.proc.pid

    def segfault_worker() -> None:
        time.sleep(1.0)  # the worker is inside invoke() of the endless loop by now
        os.kill(pid, signal.SIGSEGV)

    threading.Thread(target=segfault_worker, daemon=True).start()
    m = runner.measure(endless, RunSettings(warmup=0, repeats=1, timeout_s=60))
    assert m.status == "failed"
    assert "SIGSEGV" in (m.error or "")
    assert runner.measure(MODELS / "hand_recrop.tflite", FAST).ok


def test_worker_killed_between_models_is_replaced(runner: LocalRunner) -> None:
    runner.measure(MODELS / "hand_recrop.tflite", FAST)
    assert runner._worker is not None
    old = runner._worker.proc
    old.kill()
    old.wait()
    assert runner.measure(MODELS / "hand_recrop.tflite", FAST).ok
    assert runner._worker is not None and runner._worker.proc.pid != old.pid


def test_close_ends_the_worker() -> None:
    r = LocalRunner()
    assert r.measure(MODELS / "hand_recrop.tflite", FAST).ok
    assert r._worker is not None
    proc = r._worker.proc
    r.close()
    assert proc.poll() is not None and r._worker is None


# -- the speed reference (tflat.bench.speed) ---------------------------------------------------


def test_every_measurement_carries_a_speed_reference(runner: LocalRunner) -> None:
    from tflat.bench.speed import REFERENCE_RUNS, reference_model

    m = runner.measure(MODELS / "hand_recrop.tflite", FAST)
    assert m.ok, m.error
    # a 3.6 MFLOP convolution: well above timer noise, far below a second
    assert m.reference_ms is not None and 0.001 < m.reference_ms < 1000
    assert m.cpu_share is not None and 0 < m.cpu_share <= 1.05  # thread CPU time / wall time
    fast = runner.fast_reference_ms
    assert fast is not None and fast <= m.reference_ms * 1.5
    assert reference_model().is_file() and REFERENCE_RUNS >= 3
    off = LocalRunner(reference=False)
    try:
        plain = off.measure(MODELS / "hand_recrop.tflite", FAST)
    finally:
        off.close()
    assert plain.ok and plain.reference_ms is None and off.fast_reference_ms is None


def _loaded(path: Path) -> object:
    from ai_edge_litert import interpreter as litert

    from tflat.bench.worker import load

    return load(litert, str(path), 1, "xnnpack", 0)


def test_the_worker_waits_and_retries_while_the_reference_says_slow() -> None:
    """Real LiteRT in this process: a fast reference no reading can reach makes every attempt
    slow (waited for, retried, flagged); a generous one lets the first attempt through."""
    from tflat.bench.speed import reference_model
    from tflat.bench.worker import gated

    model = _loaded(MODELS / "hand_recrop.tflite")
    ref = _loaded(reference_model())
    req = {"reference_runs": 3, "fast_cut": 1.15, "wait_s": 0.05, "attempts": 3}
    slow = gated(model.invoke, ref.invoke, 3, {**req, "fast_ms": 1e-9})  # type: ignore[attr-defined]
    assert slow["attempts"] == 3 and slow["disturbed"] and slow["waited_s"] >= 3 * 0.05
    assert len(slow["samples_ms"]) == 3 and len(slow["reference_readings"]) >= 3 * 3
    assert slow["reference_ms"] in slow["reference_readings"]
    easy = gated(model.invoke, ref.invoke, 3, {**req, "fast_ms": 1e9})  # type: ignore[attr-defined]
    assert easy["attempts"] == 1 and not easy["disturbed"] and easy["waited_s"] < 0.05
    assert len(easy["reference_readings"]) == 3  # one poll, then the two bracketing readings


def test_normalising_divides_by_the_slowdown_never_below_fast() -> None:
    from tflat.bench.speed import fast_reference, is_fast, normalised_ms, slowdown, spread_pct

    assert slowdown(0.06, 0.05) == pytest.approx(1.2)
    assert slowdown(0.04, 0.05) == 1.0  # faster than fast is the reference's own noise
    assert slowdown(5.0, 0.05) == 2.0  # a stall is not a regime
    assert slowdown(None, 0.05) == 1.0 and slowdown(0.06, None) == 1.0
    assert normalised_ms(1.2, 0.06, 0.05) == pytest.approx(1.0)
    assert is_fast(0.055, 0.05) and not is_fast(0.06, 0.05)
    readings = [0.05] * 19 + [0.07] * 80 + [0.001]  # a freak low reading must not set it
    assert fast_reference(readings) == pytest.approx(0.05, rel=0.3)
    assert fast_reference([]) is None
    assert spread_pct([1.0, 1.1]) == pytest.approx(10.0) and spread_pct([1.0]) == 0.0


def test_after_a_model_that_never_found_the_fast_regime_the_runner_stops_waiting_a_while() -> None:
    from tflat.bench.speed import BACKOFF_MODELS, MAX_ATTEMPTS, WAIT_FAST_S

    r = LocalRunner()
    assert r._reference_request()["wait_s"] == WAIT_FAST_S
    r._note_gate({"disturbed": True})
    for _ in range(BACKOFF_MODELS):
        req = r._reference_request()
        assert (req["wait_s"], req["attempts"]) == (0.0, 1) and req["reference"]
        r._note_gate({"disturbed": True})  # still slow: measured, not waited for
    req = r._reference_request()
    assert (req["wait_s"], req["attempts"]) == (WAIT_FAST_S, MAX_ATTEMPTS)
    r._note_gate({"disturbed": True})  # failed again: the pause doubles
    assert r._skip_gate == 2 * BACKOFF_MODELS
    r._skip_gate = 0
    r._note_gate({"disturbed": False})  # a wait that worked resets it
    r._note_gate({"disturbed": True})
    assert r._skip_gate == BACKOFF_MODELS
    assert LocalRunner(reference=False)._reference_request() == {}
