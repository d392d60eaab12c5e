"""The USC loader against the real shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflat.datasets.usc import DEVICES, default_folder, family_of, load_usc
from tflat.errors import TflatError

pytestmark = pytest.mark.skipif(
    not (default_folder() / "tflite_cnn_ops_gpu.csv").is_file(), reason="USC data not present"
)


@pytest.fixture(scope="module")
def usc():
    return load_usc()


def test_counts_and_units(usc) -> None:
    assert len(usc.ops) == 3885 * len(DEVICES)
    first = usc.ops_for("pixel4")[0]
    assert first.model == "bagnet9" and first.operation == "CONV_2D"
    assert first.latency_ms == pytest.approx(0.3204096)  # 320.4096 µs in the CSV
    assert first.feature["Input_channel"] == 3 and first.feature["FLOPS"] == 19267584
    gpu = usc.models_for("pixel4")
    assert len(gpu) == 79
    bag = next(r for r in gpu if r.model == "bagnet9")
    assert bag.mean_ms == pytest.approx(102.523) and bag.config == "gpu|float"
    assert {r.config for r in usc.models if r.device == "pixel4"} >= {"gpu|float", "1large|float"}


def test_not_applicable_fields_are_absent(usc) -> None:
    concat = next(r for r in usc.ops if r.operation == "CONCATENATION")
    assert "Stride" not in concat.feature and concat.feature["Kernel"] >= 2


def test_positions_follow_file_order(usc) -> None:
    rows = [r for r in usc.ops_for("s10") if r.model == "resnet18"]
    assert [r.position for r in rows] == list(range(len(rows)))


def test_families_group_variants() -> None:
    assert family_of("mobilenetv2b_w3d4") == family_of("mobilenetv2_w1") == "mobilenetv2"
    assert family_of("sepreresnet16") == family_of("resnet18_wd4") == "resnet"
    assert family_of("fdmobilenet_wd4") == "mobilenet" != family_of("mobilenetv3_small_w1")
    assert family_of("squeezeresnet_v1_0") == "squeezenet"


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TflatError, match="USC data not found"):
        load_usc(tmp_path)
