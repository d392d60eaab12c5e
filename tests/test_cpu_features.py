"""The CPU latency regressor's work terms: what a fit extrapolates to past the cache."""

from __future__ import annotations

import numpy as np
import pytest

from tflat.cpu.features import FEATURE_NAMES, SPILL_THRESHOLD_BYTES, WORK_TERMS, work_terms
from tflat.cpu.regressor import CpuLatencyModel
from tflat.errors import PredictorError
from tflat.plans import load_plan

SPILL, PIXELS = WORK_TERMS.index("spill_bytes"), WORK_TERMS.index("pixels")


def _fc(cin: int, cout: int) -> dict[str, float]:
    """Features of a batch-1 float FULLY_CONNECTED (what op_features gives one)."""
    feats = dict.fromkeys(FEATURE_NAMES, 0.0)
    feats.update(
        flops=2.0 * cin * cout,
        in_bytes=4.0 * cin,
        out_bytes=4.0 * cout,
        weight_bytes=4.0 * cin * cout,
        h=1.0,
        w=1.0,
        cin=float(cin),
        cout=float(cout),
    )
    return feats


def _latency_ms(f: dict[str, float]) -> float:
    """In-cache weights stream at 40 GB/s, bytes past the threshold at 16 GB/s (this machine's
    two regimes, benchmarks: 33-41 GB/s to 12 MB, 16-25 GB/s from 16 MB)."""
    touched = f["in_bytes"] + f["out_bytes"] + f["weight_bytes"]
    spill = max(touched - SPILL_THRESHOLD_BYTES, 0.0)
    return 0.001 + (touched - spill) / 40e6 + spill / 16e6


def test_spill_term_is_zero_in_cache_and_counts_bytes_past_it() -> None:
    small, big = _fc(256, 256), _fc(2048, 4096)
    assert work_terms(small)[SPILL] == 0.0
    touched = big["in_bytes"] + big["out_bytes"] + big["weight_bytes"]
    assert work_terms(big)[SPILL] == pytest.approx(touched - SPILL_THRESHOLD_BYTES)
    assert work_terms(big)[-1] == 1.0  # the constant
    assert len(work_terms(big)) == len(WORK_TERMS)


def _pad(h: int, w: int, c: int) -> dict[str, float]:
    feats = dict.fromkeys(FEATURE_NAMES, 0.0)
    feats.update(flops=h * w * c, in_bytes=4.0 * h * w * c, out_bytes=4.0 * h * (w + 2) * c)
    feats.update(h=float(h), w=float(w), cin=float(c), cout=float(c))
    return feats


def test_thin_tensors_pay_per_pixel() -> None:
    # a pad's time: 15 ns a pixel plus its bytes at 20 GB/s (the 1-channel pads measured)
    def pad_ms(f: dict[str, float]) -> float:
        return 0.0005 + 15e-6 * f["h"] * f["w"] + (f["in_bytes"] + f["out_bytes"]) / 20e6

    assert work_terms(_pad(172, 273, 1))[PIXELS] == 172 * 273
    rng = np.random.default_rng(1)
    feats = [_pad(int(h), int(w), int(c)) for h, w, c in zip(
        rng.integers(4, 200, 60), rng.integers(4, 200, 60), rng.choice([1, 2, 4, 64, 256], 60),
        strict=True)]  # fmt: skip
    model = CpuLatencyModel().fit(feats, [pad_ms(f) for f in feats])
    thin, wide = _pad(172, 273, 1), _pad(40, 40, 512)
    assert model.predict([thin, wide]) == pytest.approx([pad_ms(thin), pad_ms(wide)], rel=0.1)


def test_a_fully_connected_past_the_cache_extrapolates_at_the_dram_price() -> None:
    rng = np.random.default_rng(0)
    shapes = [(int(a), int(b)) for a, b in zip(
        np.exp(rng.uniform(np.log(64), np.log(4096), 80)),
        np.exp(rng.uniform(np.log(64), np.log(4096), 80)), strict=True)]  # fmt: skip
    feats = [_fc(a, b) for a, b in shapes]
    model = CpuLatencyModel().fit(feats, [_latency_ms(f) for f in feats])
    # 1024 x 6522 (27 MB), wider than every training row: BirdNET's classifier head
    unseen = _fc(1024, 6522)
    assert float(model.predict([unseen])[0]) == pytest.approx(_latency_ms(unseen), rel=0.1)


def test_a_model_saved_without_the_spill_term_is_refused() -> None:
    feats = [_fc(64 * i, 64) for i in range(1, 9)]
    saved = CpuLatencyModel().fit(feats, [_latency_ms(f) for f in feats]).to_dict()
    assert CpuLatencyModel.from_dict(saved).predict(feats[:1]).shape == (1,)
    saved["coef"] = saved["coef"][:4] + saved["coef"][-1:]  # an older tflat's four work terms
    with pytest.raises(PredictorError, match="calibrate again"):
        CpuLatencyModel.from_dict(saved)


def test_calibration_plan_covers_what_real_models_hold_and_grids_miss() -> None:
    specs = load_plan("calibrate-random").expand().specs
    fc = [s for s in specs if s.kind == "FULLY_CONNECTED"]
    assert max(s.weight_count * 4 for s in fc) > 2 * SPILL_THRESHOLD_BYTES
    assert {"float32", "float16"} <= {s.params["dtype"] for s in fc}
    assert min(s.params["cin"] for s in fc) <= 2  # a scalar-input MLP's first layer
    dw = [s for s in specs if s.kind == "DEPTHWISE_CONV_2D"]
    assert any(s.params["kernel_h"] == s.params["kernel_w"] == 1 for s in dw)
    assert any(s.params["input_w"] == 1 and s.params["kernel_h"] > 1 for s in dw)
    assert any(s.params["cin"] == 1 and s.params["input_w"] >= 64 for s in specs if s.kind == "PAD")
