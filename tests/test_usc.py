"""The USC loader against the real data: the packaged copy, or TFLAT_USC_DIR's when set."""

from __future__ import annotations

import hashlib
import lzma
import os
import re
from pathlib import Path

import pytest

from tflat.datasets.usc import (
    DEVICES,
    E2E_FILE,
    OPS_FILE,
    default_folder,
    family_of,
    load_usc,
    packaged_folder,
)
from tflat.errors import TflatError


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


def test_packaged_copy_is_the_source_file_byte_for_byte() -> None:
    """The sha256 written in SOURCE.md is the decompressed file's: the copy is the source."""
    folder = packaged_folder()
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "c864a33" in source and "MIT" in source and "µs" in source
    assert "MIT License" in (folder / "LICENSE").read_text(encoding="utf-8")
    for name in (OPS_FILE, E2E_FILE):
        text = lzma.decompress((folder / f"{name}.xz").read_bytes())
        digest = re.search(rf"`{re.escape(name)}\.xz`.*?`([0-9a-f]{{64}})`", source)
        assert digest is not None, name
        assert hashlib.sha256(text).hexdigest() == digest.group(1)


def test_default_is_the_packaged_copy_unless_the_variable_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TFLAT_USC_DIR", raising=False)
    assert default_folder() == packaged_folder()
    monkeypatch.setenv("TFLAT_USC_DIR", str(tmp_path))
    assert default_folder() == tmp_path
    with pytest.raises(TflatError, match=f"no {OPS_FILE} in"):
        load_usc()


@pytest.mark.skipif(not os.environ.get("TFLAT_USC_DIR"), reason="TFLAT_USC_DIR not set")
def test_packaged_copy_reads_as_the_folder_does() -> None:
    packaged, folder = load_usc(packaged_folder()), load_usc(os.environ["TFLAT_USC_DIR"])
    assert packaged.ops == folder.ops and packaged.models == folder.models
