"""Calibration end to end on this machine's CPU: tiny plans, real LiteRT, real SQLite."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tflat import read_model
from tflat.bench import DeviceInfo, Measurement, Runner, RunSettings, RuntimeInfo
from tflat.bench.speed import fast_reference, is_fast, normalised_ms
from tflat.calibrate import calibrate, device_and_rules, evaluate_models, load_device_predictor
from tflat.calibrate.speed import ANCHOR_FAMILY, RecordSpeed, SpeedReference
from tflat.calibrate.training import FeatureCache, training_rows
from tflat.cli import main
from tflat.cpu.predictor import BUNDLE_FORMAT, CpuPredictor, fit_whole_term
from tflat.errors import TflatError
from tflat.store import open_store

MODELS = Path(__file__).parent / "models"

TINY_PLAN = """
name = "tiny"
seed = 1

[[grid]]
kind = "CONV_2D"
input_h = [8, 16]
input_w = [8, 16]
cin = [8, 16]
cout = [8, 16]
kernel = [1, 3]

[[grid]]
kind = "DEPTHWISE_CONV_2D"
input_h = [8, 16, 32]
input_w = [8, 16]
cin = [8, 32]
kernel = [3]
stride = [1, 2]

[[grid]]
kind = "ADD"
input_h = [4, 8, 16, 32]
input_w = [8]
cin = [8, 16]

[[grid]]
kind = "PAD"
input_h = [8, 16]
input_w = [8, 16]
cin = [8]
pad_bottom = [1, 2]
pad_right = [1]
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny calibration (about 40 single-op models) shared by the tests below."""
    root = tmp_path_factory.mktemp("calib")
    plan = root / "tiny.toml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    url = f"sqlite:///{root / 'tflat.db'}"
    seen: list[Any] = []
    result = calibrate(
        "host-cpu",
        minutes=1.0,
        db_url=url,
        work_dir=root / "work",
        plans=[("tiny", plan, 1.0)],
        adaptive=False,
        repeats=10,
        warmup=2,
        progress=seen.append,
    )
    return {"root": root, "plan": plan, "url": url, "result": result, "progress": seen}


@pytest.mark.slow
def test_tiny_calibration_trains_and_saves_a_predictor(tiny: dict[str, Any]) -> None:
    result = tiny["result"]
    assert result.device_id == "host-cpu"
    assert result.models_measured >= 40
    assert result.failed == 0
    assert 0 < result.overhead_ms < 1.0
    assert result.cv.rows >= 40 and result.cv.folds == 5
    assert math.isfinite(result.cv.mape)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PAD"} <= set(result.trained_kinds)
    store = open_store(tiny["url"])
    try:
        bundle = store.load_predictor_bundle("host-cpu")
        assert [p.device_id for p in store.predictors()] == ["host-cpu"]
    finally:
        store.close()
    assert bundle is not None and bundle["format"] == BUNDLE_FORMAT
    assert bundle["provenance"]["statistic"] == "minimum of 10 timed runs"
    json.dumps(bundle)  # plain JSON, no pickle


def test_progress_shows_phase_models_and_cv_error(tiny: dict[str, Any]) -> None:
    seen = tiny["progress"]
    phases = [p.phase for p in seen]
    assert phases[-1] == "done" and "tiny" in phases and "training" in phases
    counts = [p.models_measured for p in seen]
    assert counts == sorted(counts)
    assert any(p.cv_mape is not None for p in seen)


def test_saved_predictor_estimates_a_real_model(tiny: dict[str, Any]) -> None:
    predictor = load_device_predictor("host-cpu", tiny["url"])
    assert isinstance(predictor, CpuPredictor)
    graph = read_model(MODELS / "face_detection_short_range.tflite")
    gp = predictor.predict_graph(graph)
    assert len(gp.kernels) == len(gp.kernel_times)
    assert gp.total_ms == pytest.approx(sum(t.latency_ms for t in gp.kernel_times) + gp.overhead_ms)
    assert gp.total_low_ms <= gp.total_ms <= gp.total_high_ms
    assert gp.total_ms > 0.05  # 21 convolutions cannot be free
    free = [t for k, t in zip(gp.kernels, gp.kernel_times, strict=True) if k.kind == "free"]
    assert free and all(t.latency_ms == 0 for t in free)
    # a bundle read back gives the same numbers
    again = CpuPredictor.from_bundle(json.loads(json.dumps(predictor.to_bundle())))
    assert again.predict_graph(graph).total_ms == pytest.approx(gp.total_ms)


def test_a_second_run_resumes_and_measures_nothing_twice(tiny: dict[str, Any]) -> None:
    again = calibrate(
        "host-cpu",
        minutes=1.0,
        db_url=tiny["url"],
        work_dir=tiny["root"] / "work",
        plans=[("tiny", tiny["plan"], 1.0)],
        adaptive=False,
        repeats=10,
        warmup=2,
    )
    assert again.models_measured == 0
    assert again.models_in_db == tiny["result"].models_in_db


def test_evaluate_models_measures_and_compares(tiny: dict[str, Any]) -> None:
    report = evaluate_models(
        "host-cpu",
        [MODELS / "hand_recrop.tflite", MODELS / "face_detection_short_range.tflite"],
        tiny["url"],
        repeats=5,
        warmup=1,
        measure_rounds=2,
    )
    assert [c.status for c in report.checks] == ["ok", "ok"]
    assert report.metrics["n"] == 2
    fast = report.metrics["reference_fast_ms"]  # the predictor's, shared with its labels
    assert fast == load_device_predictor("host-cpu", tiny["url"]).provenance["reference_fast_ms"]
    for c in report.checks:
        assert len(c.measured_rounds_ms) == 2 and len(c.reference_rounds_ms) == 2
        pairs = zip(c.measured_rounds_ms, c.reference_rounds_ms, strict=True)
        norm = [normalised_ms(m, r, fast) for m, r in pairs]
        assert c.normalised_rounds_ms == pytest.approx(norm)
        fast_rounds = [
            n for n, r in zip(norm, c.reference_rounds_ms, strict=True) if is_fast(r, fast)
        ]
        assert c.measured_ms == pytest.approx(statistics.median(fast_rounds or norm))
        assert c.measured_ms <= max(c.measured_rounds_ms)
        assert c.error_pct == pytest.approx(100 * (c.estimated_ms / c.measured_ms - 1))
    assert "of 2 rounds" in report.statistic and "normalised" in report.statistic
    assert {"mape_pct", "within_10_pct", "spearman"} <= set(report.metrics)
    assert len(report.to_eval_report().models) == 2


def test_evaluate_models_reuses_cached_measurements(tiny: dict[str, Any]) -> None:
    report = evaluate_models(
        "host-cpu",
        [MODELS / "hand_recrop.tflite", MODELS / "sine_float.tflite"],
        tiny["url"],
        measured={"hand_recrop": [0.9, 0.8, 1.0]},
        statistic="cached",
        repeats=3,
        warmup=1,
        measure_rounds=2,
    )
    cached, fresh = report.checks
    # cached rounds without references: the lowest raw round, as before references existed
    assert cached.measured_ms == 0.8 and len(cached.measured_rounds_ms) == 3
    assert cached.normalised_rounds_ms == ()
    assert fresh.status == "ok" and len(fresh.measured_rounds_ms) == 2  # not cached: measured
    assert report.statistic == "cached" and report.metrics["n"] == 2


def test_cli_calibrate_resumes_and_prints_a_summary(tiny: dict[str, Any], capsys: Any) -> None:
    code = main(["calibrate", "host-cpu", "--minutes", "1", "--db", tiny["url"],
                 "--work-dir", str(tiny["root"] / "work"), "--max-models", "3",
                 "--no-adaptive", "--format", "json", "--quiet"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "host-cpu" and out["models_measured"] <= 3
    assert out["models_in_db"] >= tiny["result"].models_in_db


def test_cli_rejects_a_device_it_cannot_calibrate(capsys: Any) -> None:
    assert main(["calibrate", "pixel4", "--minutes", "1"]) == 1
    assert "cannot calibrate" in capsys.readouterr().err


def test_device_variants_and_rules() -> None:
    assert device_and_rules("host-cpu", 1, None) == ("host-cpu", "xnnpack", "xnnpack")
    assert device_and_rules("host-cpu", 4, None) == ("host-cpu-t4", "xnnpack", "xnnpack")
    assert device_and_rules("android:abc", 1, None) == ("android:abc", "gpu", "tflite_gpu")
    with pytest.raises(TflatError):
        device_and_rules("host-cpu", 1, "gpu")


class _FakePhone(Runner):
    """A phone test double: latency from the model's FLOPs (no phone exists here)."""

    device_id = "android:fake"

    def device_info(self) -> DeviceInfo:
        return DeviceInfo(device_id=self.device_id, vendor="Fake", model="Phone", gpu="FakeGPU")

    def runtime_info(self) -> RuntimeInfo:
        return RuntimeInfo("benchmark_model", "test")

    def measure(self, model: Path, settings: RunSettings, *, profile: bool = False) -> Measurement:
        graph = read_model(model)
        ms = 0.02 + sum(op.flops for op in graph.ops) / 5e7
        return Measurement(status="ok", samples_ms=(ms * 1.05, ms, ms * 1.1), warmup=1)


def test_a_phone_goes_through_the_same_loop(tmp_path: Path) -> None:
    plan = tmp_path / "tiny.toml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'phone.db'}"
    plans = [("tiny", plan, 1.0)]
    result = calibrate("android:fake", minutes=1.0, db_url=url, work_dir=tmp_path / "w",
                       plans=plans, adaptive=False, runner=_FakePhone())  # fmt: skip
    assert result.rules == "tflite_gpu" and result.settings["delegate"] == "gpu"
    predictor = load_device_predictor("android:fake", url)
    gp = predictor.predict_graph(read_model(MODELS / "hand_recrop.tflite"))
    assert gp.total_ms > 0


def test_host_cpu_measurements_carry_a_reference_and_need_no_anchors(tiny: dict[str, Any]) -> None:
    store = open_store(tiny["url"])
    try:
        rows = store.training_rows("host-cpu")
        models = store.model_measurements("host-cpu", with_profile=False)
        bundle = store.load_predictor_bundle("host-cpu")
    finally:
        store.close()
    assert rows and all(r.reference_ms is not None and r.reference_ms > 0 for r in rows)
    assert not [m for m in models if m.model.family == ANCHOR_FAMILY]
    assert bundle is not None
    assert "per-measurement reference" in bundle["provenance"]["speed_reference"]
    fast = bundle["provenance"]["reference_fast_ms"]
    assert fast == pytest.approx(fast_reference(r.reference_ms for r in rows))


def test_training_labels_are_divided_by_each_measurements_own_slowdown(
    tiny: dict[str, Any],
) -> None:
    """The same stored measurement, once read at the fast reference and once at twice it:
    its label halves (before the overhead is taken off); one without a reference falls back
    to the anchors (none here: factor 1)."""
    store = open_store(tiny["url"])
    try:
        records = store.training_rows("host-cpu")
    finally:
        store.close()
    rec = max((r for r in records if r.spec.kind == "CONV_2D"), key=lambda r: r.min_ms or 0)
    fast = 0.05
    cache = FeatureCache("xnnpack")
    at_fast = replace(rec, reference_ms=fast)
    at_slow = replace(rec, reference_ms=2 * fast)
    no_ref = replace(rec, reference_ms=None)
    speed = RecordSpeed([at_slow], fast_ms=fast)
    assert speed.factor(rec.created_at) == pytest.approx(2.0)
    assert speed.factor_for(at_fast) == 1.0 and speed.factor_for(no_ref) == 1.0
    [slow_row] = training_rows([at_slow], cache, 0.0, speed)
    [fast_row] = training_rows([at_fast], cache, 0.0, RecordSpeed([at_fast], fast_ms=fast))
    [plain] = training_rows([no_ref], cache, 0.0, RecordSpeed([no_ref], fast_ms=fast))
    assert slow_row.latency_ms == pytest.approx(rec.min_ms / 2)
    assert fast_row.latency_ms == pytest.approx(rec.min_ms) == plain.latency_ms


def test_speed_factor_follows_the_nearest_anchors() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    at = [t0 + timedelta(minutes=i) for i in range(5)]
    # the machine is twice as slow around minute 3
    speed = SpeedReference(list(zip(at, [1.0, 1.0, 1.0, 2.0, 2.0], strict=True)))
    assert speed.factor(at[0] + timedelta(seconds=30)) == pytest.approx(1.0)
    assert speed.factor(at[3] + timedelta(seconds=30)) == pytest.approx(2.0)
    assert speed.factor(at[2] + timedelta(seconds=30)) == pytest.approx(1.0)  # the faster side
    assert SpeedReference([]).factor(t0) == 1.0


def test_whole_model_term_recovers_how_kernels_compose() -> None:
    rng = np.random.default_rng(0)
    rows = [[s, s * p, n] for s, p, n in zip(rng.uniform(1, 20, 12), rng.uniform(0, 2, 12),
                                             rng.integers(20, 200, 12), strict=True)]  # fmt: skip
    ys = [0.9 * s + 0.05 * c + 0.002 * n for s, c, n in rows]
    term = fit_whole_term(rows, ys)
    assert (term.scale, term.cache_scale, term.per_kernel_ms) == pytest.approx(
        (0.9, 0.05, 0.002), rel=1e-3
    )
    assert fit_whole_term(rows[:3], ys[:3]).scale == 1.0  # too few networks: plain sum


def test_whole_model_term_learns_an_int8_scale_and_a_signed_per_kernel_term() -> None:
    rng = np.random.default_rng(1)
    f, i8, n = rng.uniform(0.5, 5, 14), rng.uniform(0, 0.2, 14), rng.integers(10, 150, 14)
    rows = [[a, 0.0, float(c), b] for a, b, c in zip(f, i8, n, strict=True)]
    ys = [1.05 * a + 0.5 * b - 0.0002 * c for a, _, c, b in rows]
    term = fit_whole_term(rows, ys, (0, 2, 3))
    assert (term.scale, term.int8_scale, term.per_kernel_ms) == pytest.approx(
        (1.05, 0.5, -0.0002), rel=1e-3
    )
    assert term.kernel_ms(0.001, 0.0, True) == pytest.approx(0.0005)  # int8: its own scale
    assert term.kernel_ms(0.001, 0.0, False) == pytest.approx(0.00085)
    assert term.kernel_ms(1e-5, 0.0, False) == pytest.approx(1e-6)  # never below 10 % of base
    plain_int8 = fit_whole_term(rows, ys, (0,))
    assert plain_int8.int8_scale == plain_int8.scale  # without column 3: int8 like float


@pytest.mark.parametrize("net", [("blaze", 0.5, 64, "float16"), ("kws", 1.0, 9, "int8")])
def test_synthetic_networks_are_valid_models_that_litert_runs(
    net: tuple[str, float, int, str], tmp_path: Path
) -> None:
    from tflat.bench import get_runner
    from tflat.calibrate.networks import build_network, network_key

    path = tmp_path / "net.tflite"
    path.write_bytes(build_network(*net))
    graph = read_model(path)
    types = {op.type for op in graph.ops}
    if net[0] == "blaze":
        assert {"PRELU", "DEQUANTIZE", "PAD", "ADD", "HARD_SWISH"} <= types
    else:
        assert {"QUANTIZE", "CONCATENATION", "DEPTHWISE_CONV_2D"} <= types
    assert network_key(*net).startswith("synthetic:")
    runner = get_runner("host-cpu", threads=1)
    try:
        m = runner.measure(path, RunSettings(delegate="xnnpack", threads=1, repeats=2, warmup=1))
    finally:
        runner.close()
    assert m.ok, m.error


def test_prior_models_phase_samples_the_layers_of_real_models() -> None:
    import tomllib

    from tflat.calibrate.loop import _default_phases, _models_plan
    from tflat.plans import plan_from_dict

    phases = _default_phases([MODELS])
    assert [n for n, _, _ in phases][:2] == ["seed", "networks"]
    assert "prior:models" in [n for n, _, _ in phases]
    specs = plan_from_dict(tomllib.loads(_models_plan(MODELS))).expand().specs
    kinds = {s.kind for s in specs}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= kinds


class _DriftingPhone(_FakePhone):
    """A phone double that runs twice as slow for its first 40 measurements (a busy device)."""

    def __init__(self) -> None:
        self.calls = 0

    def measure(self, model: Path, settings: RunSettings, *, profile: bool = False) -> Measurement:
        self.calls += 1
        m = super().measure(model, settings, profile=profile)
        slow = 2.0 if self.calls <= 40 else 1.0
        return Measurement(status="ok", samples_ms=tuple(v * slow for v in m.samples_ms))


def test_specs_measured_while_the_device_was_slow_are_measured_again(tmp_path: Path) -> None:
    plan = tmp_path / "tiny.toml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    phone = _DriftingPhone()
    plans = [("tiny", plan, 1.0)]
    result = calibrate("android:fake", minutes=2.0, db_url=url, work_dir=tmp_path / "w",
                       plans=plans, max_models=80, runner=phone)  # fmt: skip
    assert "adaptive-1" in result.phases_done
    store = open_store(url)
    try:
        rows = store.training_rows("android:fake")
        anchors = [
            (m.created_at, float(m.min_ms or 0))
            for m in store.model_measurements("android:fake", with_profile=False)
            if m.model.family == ANCHOR_FAMILY
        ]
        bundle = store.load_predictor_bundle("android:fake")
    finally:
        store.close()
    assert bundle is not None and bundle["provenance"]["remeasured_slow_time_specs"] > 0
    speed = SpeedReference(anchors)
    for r in rows:
        fast_ms = 0.02 + sum(op.flops for op in read_model(r.model_file).ops) / 5e7
        if speed.factor(r.created_at) > 1.15:  # still dated in a slow stretch: must be re-taken
            assert r.min_ms == pytest.approx(fast_ms)


def test_cli_evaluate_models_estimates_and_measures_each(
    tiny: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    import json as _json
    import shutil

    from tflat.cli import main as cli_main

    folder = tmp_path / "real"
    folder.mkdir()
    for name in ("hand_recrop.tflite", "sine_float.tflite"):
        shutil.copy(Path(__file__).parent / "models" / name, folder / name)
    plot = tmp_path / "plot.svg"
    code = cli_main(
        ["evaluate", "--device", "host-cpu", "--db", tiny["url"], "--models", str(folder),
         "--rounds", "1", "--format", "json", "--plot", str(plot)]
    )  # fmt: skip
    assert code == 0
    report = _json.loads(capsys.readouterr().out)
    assert report["device"] == "host-cpu"
    assert sorted(m["model"] for m in report["models"]) == ["hand_recrop", "sine_float"]
    for m in report["models"]:
        assert m["status"] == "ok"
        assert m["measured_ms"] > 0 and m["estimated_ms"] > 0
    assert report["metrics"]["n"] == 2
    assert plot.exists() or plot.with_suffix(".png").exists()
    assert cli_main(["evaluate", "--device", "host-cpu", "--db", tiny["url"],
                     "--models", str(tmp_path / "missing")]) == 1  # fmt: skip


def test_evaluate_truth_is_the_median_of_rounds_normalised_by_their_reference(
    tiny: dict[str, Any],
) -> None:
    """Cached rounds with references: a round taken at 1.5x the fast reference counts at
    1/1.5 of its time; the truth is the median of the normalised fast-regime rounds."""
    report = evaluate_models(
        "host-cpu",
        [MODELS / "hand_recrop.tflite"],
        tiny["url"],
        measured={"hand_recrop": [1.0, 1.5, 1.02]},
        references={"hand_recrop": [0.05, 0.075, 0.05]},
        reference_fast_ms=0.05,
        statistic="cached",
    )
    [c] = report.checks
    assert c.normalised_rounds_ms == pytest.approx((1.0, 1.0, 1.02))
    assert c.measured_ms == pytest.approx(1.01)  # the slow round is left out of the median
    assert c.spread_pct == pytest.approx(50.0) and c.normalised_spread_pct == pytest.approx(2.0)
    assert report.metrics["normalised_spread_pct_median"] == pytest.approx(2.0)


def test_records_without_a_reference_fall_back_to_the_anchors() -> None:
    """A database from before the per-measurement reference (resumed): its records are dated
    against the anchors; records with a reference use their own."""
    from types import SimpleNamespace

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    at = [t0 + timedelta(minutes=i) for i in range(3)]
    anchors = list(zip(at, [1.0, 2.0, 2.0], strict=True))
    old = SimpleNamespace(created_at=at[2] + timedelta(seconds=5), reference_ms=None)
    new = SimpleNamespace(created_at=at[2] + timedelta(seconds=9), reference_ms=0.06)
    speed = RecordSpeed([old, new], anchors, fast_ms=0.05)
    anchored = SpeedReference(anchors).factor(old.created_at)
    assert anchored > 1.5 and speed.factor_for(old) == pytest.approx(anchored)  # the anchors'
    assert speed.factor(old.created_at) == pytest.approx(anchored)
    assert speed.factor_for(new) == pytest.approx(1.2)  # its own reference
    assert speed.factor(new.created_at) == pytest.approx(1.2)  # what training_rows asks


def test_calibration_waits_briefly_for_the_fast_regime_but_fully_while_re_measuring() -> None:
    from types import SimpleNamespace

    from tflat.bench.local import LocalRunner
    from tflat.bench.speed import CALIBRATE_WAIT_FAST_S, WAIT_FAST_S
    from tflat.calibrate.speed import SpeedWatch

    runner = LocalRunner(wait_fast_s=CALIBRATE_WAIT_FAST_S)
    watch = SpeedWatch.__new__(SpeedWatch)
    watch.target = SimpleNamespace(runner=runner)  # type: ignore[assignment]
    with watch.patient():
        assert runner.wait_fast_s == WAIT_FAST_S
    assert runner.wait_fast_s == CALIBRATE_WAIT_FAST_S < WAIT_FAST_S
    assert LocalRunner().wait_fast_s == WAIT_FAST_S  # tflat bench and evaluate wait fully


def test_cpu_prices_int8_kernels_as_int8_and_computes_in_fp32(tiny: dict[str, Any]) -> None:
    """host-cpu: every kernel of a full-int8 or dynamic-range model is an int8 kernel (XNNPACK's
    int8 paths), priced with the int8 scale; the estimate states fp32 and refuses fp16."""
    from tflat.errors import PredictorError
    from tflat.model.formats import build_in_format
    from tflat.pricing.compose import estimate_with

    bundle = json.loads(json.dumps(load_device_predictor("host-cpu", tiny["url"]).to_bundle()))
    bundle["whole_model"] = {**bundle["whole_model"], "scale": 1.0, "int8_scale": 0.25}
    predictor = CpuPredictor.from_bundle(bundle)
    for fmt in ("int8", "dynamic"):
        graph = read_model(build_in_format("mobilenetv2", fmt, width=0.25, input_size=64))
        kernels, base = predictor.base_times(graph)
        gp = predictor.predict_graph(graph)
        convs = [
            (b, t)
            for k, b, t in zip(kernels, base, gp.kernel_times, strict=True)
            if graph.ops[k.main_op].type == "CONV_2D"
        ]
        assert convs and all(b[3] for b, _ in convs), fmt  # flagged int8
        assert all(t.latency_ms == pytest.approx(0.25 * b[1]) for b, t in convs), fmt
    est = estimate_with(graph, predictor, precision="fp32")
    assert (est.precision, est.precision_basis) == ("fp32", "learned")
    assert estimate_with(graph, predictor).precision == "fp32"
    with pytest.raises(PredictorError, match="computes in fp32 only"):
        estimate_with(graph, predictor, precision="fp16")
