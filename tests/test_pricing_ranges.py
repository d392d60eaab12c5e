"""Training ranges and extrapolation, and the analytic rates' fit on held-out kinds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tflat.datasets.usc import have_usc, load_usc
from tflat.errors import PredictorError
from tflat.predict.bundles import BUNDLED_DEVICES, bundled_text
from tflat.predict.features import FEATURE_NAMES, KernelShape, feature_matrix
from tflat.predict.ranges import TrainingRange

HAVE_USC = have_usc()


def shipped_range(device: str) -> TrainingRange:
    text = bundled_text(device)
    assert text is not None
    return TrainingRange.from_dict(json.loads(text)["training_range"], FEATURE_NAMES)


def conv_row(h: int, cin: int, cout: int, k: int = 1) -> np.ndarray:
    s = KernelShape("conv2d", h, h, cin, h, h, cout, kernel=k, flops=2 * h * h * cin * cout * k * k)
    return feature_matrix([s], ["conv2d"], np.ones(1))[0]


@pytest.mark.parametrize("device", sorted(BUNDLED_DEVICES))
def test_shipped_ranges_load_and_judge(device: str) -> None:
    ranges = shipped_range(device)
    assert ranges.out_of_range("conv2d", conv_row(14, 256, 256, 3)) is None  # a ResNet conv
    note = ranges.out_of_range("conv2d", conv_row(14, 256, 40000))  # no CNN is that wide
    assert note is not None and "log2_cout" in note and ">" in note
    assert ranges.out_of_range("batch_matmul", conv_row(14, 8, 8)) == (
        "no training rows of kind batch_matmul"
    )


def test_range_margin_and_bad_sections() -> None:
    section = {"kinds": {"conv2d": {"log2_cout": [3.0, 10.0], "kernel": [1.0, 7.0]}}}
    ranges = TrainingRange.from_dict(section, FEATURE_NAMES)
    row = np.zeros(len(FEATURE_NAMES))
    row[FEATURE_NAMES.index("kernel")] = 3.0
    row[FEATURE_NAMES.index("log2_cout")] = 10.4  # inside the 0.5 margin
    assert ranges.out_of_range("conv2d", row) is None
    row[FEATURE_NAMES.index("kernel")] = 9.0  # counts have no margin
    assert "kernel 9 > 7" in str(ranges.out_of_range("conv2d", row))
    with pytest.raises(PredictorError, match="min > max"):
        TrainingRange.from_dict({"kinds": {"conv2d": {"kernel": [7, 1]}}}, FEATURE_NAMES)
    with pytest.raises(PredictorError, match="bad feature"):
        TrainingRange.from_dict({"kinds": {"conv2d": {"nope": [1, 2]}}}, FEATURE_NAMES)


def test_extrapolation_only_widens() -> None:
    band = {"log_interval": [math.log(0.7), math.log(1.5)]}
    ex = TrainingRange.from_dict({"kinds": {}, "extrapolation": band}, FEATURE_NAMES)
    assert ex.widen(1.0, 0.9, 1.1) == pytest.approx((0.7, 1.5))
    assert ex.widen(1.0, 0.5, 3.0) == (0.5, 3.0)
    with pytest.raises(PredictorError, match="hold 0"):
        TrainingRange.from_dict(
            {"kinds": {}, "extrapolation": {"log_interval": [0.1, 0.5]}}, FEATURE_NAMES
        )


def test_a_non_square_kernel_is_outside_square_training() -> None:
    ranges = shipped_range("pixel4")
    assert ranges.trained_aspect("conv2d") == 1.0
    row = conv_row(17, 128, 160, 7)
    assert ranges.out_of_range("conv2d", row, aspect=1.0) is None
    note = ranges.out_of_range("conv2d", row, aspect=7.0)
    assert note is not None and "kernel_aspect 7 > 1" in note


@pytest.mark.skipif(not HAVE_USC, reason="USC data not present")
def test_analytic_rates_price_a_kind_they_never_saw() -> None:
    """Pooling kernels priced by rates fitted without a single pool: inside the calibrated
    analytic band most of the time, and never absurd."""
    from tflat.predict.rates import FIT_KINDS, fit_rates, predict_rows, usc_kernels
    from tflat.predict.usc import device_meta

    text = bundled_text("pixel4")
    assert text is not None
    lo, hi = json.loads(text)["pricing"]["analytic"]["log_interval"]
    _, family = device_meta("pixel4")
    data = usc_kernels(load_usc().ops_for("pixel4"), family)
    coef = fit_rates(data, [k for k in FIT_KINDS if k != "pool"])
    rows = data.kinds == "pool"
    r = np.log(data.measured_ms[rows] / predict_rows(data, coef, rows))
    assert np.mean((r >= lo) & (r <= hi)) >= 0.6
    assert np.all(np.abs(r) < math.log(5))
