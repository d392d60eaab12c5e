"""The delegate's per-vendor dispatch (block, work groups, reductions) and the features from it."""

from __future__ import annotations

import numpy as np
import pytest

from tflat.gpu.dispatch import base_family, conv_dispatch, gpu_facts, reduce_dispatch
from tflat.predict.features import FEATURE_NAMES, KernelShape, _Columns, feature_matrix
from tflat.predict.usc import device_meta, gpu_family_of


def _conv(fam: str, w: int, h: int, slices: int, spatial: bool = False) -> tuple[int, ...]:
    d = conv_dispatch(fam, np.array([w]), np.array([h]), np.array([slices]),
                      np.array([spatial]), np.array([slices]))  # fmt: skip
    return int(d.block_x[0]), int(d.block_y[0]), int(d.block_s[0])


def test_adreno_block_grows_with_waves_per_compute_unit() -> None:
    # ConvPowerVR on Adreno 640 (2 compute units, waves of 128): <= 6 waves 1x1x1, <= 12
    # 2x1x1, <= 24 2x1x2, beyond 2x2x2
    assert _conv("adreno:640", 7, 7, 31) == (1, 1, 1)  # 1519 outputs: 5.9 waves
    assert _conv("adreno:640", 7, 7, 32) == (2, 1, 1)  # 1568: 6.1 waves
    assert _conv("adreno:640", 14, 14, 16) == (2, 1, 2)  # 12.25 waves
    assert _conv("adreno:640", 56, 56, 16) == (2, 2, 2)
    # the 616 has one compute unit: the same output gets a bigger block
    assert _conv("adreno:616", 7, 7, 31) == (2, 1, 1)


def test_mali_block_from_outputs_per_compute_unit_capped_for_spatial_kernels() -> None:
    # Mali-G76 MP12: <= 256 outputs per unit -> 1, <= 1536 -> 2 (2x1x1), <= 4096 -> 4
    # (2x1x2), else 8 (2x2x2), at most 4 for a kernel that is not 1x1
    assert _conv("mali", 7, 7, 32) == (1, 1, 1)
    assert _conv("mali", 14, 14, 64) == (2, 1, 1)
    assert _conv("mali", 28, 28, 32) == (2, 1, 2)
    assert _conv("mali", 56, 56, 64) == (2, 2, 2)
    assert _conv("mali", 56, 56, 64, spatial=True) == (2, 1, 2)
    assert _conv("mali", 112, 112, 3) == (2, 2, 1)  # 3 slices: rows, not slice pairs


def test_apple_a12_spends_a_block_on_rows_the_a10_on_slices() -> None:
    assert _conv("apple:a10", 56, 56, 64) == (1, 1, 4)
    assert _conv("apple:a12", 56, 56, 64) == (1, 2, 4)
    assert _conv("apple:a12", 7, 7, 8) == (1, 1, 1)  # too few outputs to block


def test_odd_sizes_leave_work_items_idle() -> None:
    # 3x3 256 -> 256 on Mali: 2x1x2 or 2x1x1 blocks and 4x4-ish groups tile 14x14 and 28x28
    # exactly, 13x13 and 27x27 leave blocks and groups partly idle
    shapes = [KernelShape("conv2d", n, n, 256, n, n, 256, kernel=3, gpu_family="mali")
              for n in (13, 14, 27, 28)]  # fmt: skip
    util = _Columns(shapes).dispatch_util
    assert util[1] == pytest.approx(1.0) and util[3] == pytest.approx(1.0)
    assert util[0] < 0.9 and util[2] < 0.97


def test_mean_is_serial_on_adreno_and_shared_on_mali_for_7x7() -> None:
    # Reduce: groups double along W then H while the pixels fill them; a group shares a slice
    # when it reaches 64 items on Adreno (max 256) or 16 on Mali (max 64)
    h = w = np.array([7.0, 14.0])
    s = np.array([128.0, 128.0])
    items, reads = reduce_dispatch("adreno", h, w, s)
    assert list(items) == [128, 128 * 64] and list(reads) == [49, 4 + 6]
    items, reads = reduce_dispatch("mali", h, w, s)
    assert list(items) == [128 * 16, 128 * 64] and list(reads) == [4 + 4, 4 + 6]


def test_gpu_facts_merge_model_over_family() -> None:
    a12, apple = gpu_facts("apple:a12"), gpu_facts("apple")
    assert (a12.compute_units, a12.bionic) == (4, True)
    assert (apple.compute_units, apple.bionic) == (6, False)
    assert gpu_facts("adreno:616").wave_size == 128  # the family's wave size
    assert gpu_facts("vivante").vendor == "default"
    assert base_family("apple:a12") == "apple" and base_family("mali") == "mali"


def test_device_families_keep_the_partition_rules() -> None:
    # a model suffix is used only where the partition's rules stay those of the family
    assert device_meta("iphonexs")[1] == "apple:a12"
    assert device_meta("s10")[1] == "mali:g76"
    assert device_meta("pixel4")[1] == "adreno"  # Adreno has its own Winograd rule
    assert gpu_family_of("adreno", None) == "adreno"


def test_features_append_dispatch_columns_and_concat_ignores_input_split() -> None:
    a = KernelShape("concat", 7, 7, 992, 7, 7, 1024, n_inputs=2, gpu_family="mali")
    b = KernelShape("concat", 7, 7, 32, 7, 7, 1024, n_inputs=2, gpu_family="mali")
    x = feature_matrix([a, b], ("concat",), np.array([0.05, 0.05]))
    assert x.shape == (2, len(FEATURE_NAMES))
    assert FEATURE_NAMES[-5:] == (
        "log2_block",
        "dispatch_util",
        "log2_waves",
        "log2_item_steps",
        "log2_wave_steps",
    )  # appended: an older bundle's trees still read the columns they know
    assert np.array_equal(x[0], x[1])
