"""``evaluate --plot``: a real PNG through matplotlib (the extra tflat[plot]), SVG by hand."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tflat.cli import main
from tflat.errors import TflatError
from tflat.predict.evaluate import EvalReport, ModelResult
from tflat.predict.plot import svg_plot, write_plot

SVG = "{http://www.w3.org/2000/svg}"


def report() -> EvalReport:
    rows = [("mobilenet_w1", 6.0, 6.3), ("resnet18", 21.0, 19.5), ("densenet121", 48.0, 55.0),
            ("squeezenet_v1_1", 3.1, 3.0)]  # fmt: skip
    models = tuple(ModelResult(m, m.split("_")[0], meas, pred, pred * 0.9, pred * 1.12)
                   for m, meas, pred in rows)  # fmt: skip
    return EvalReport(device="pixel4", method="family-held-out, 3 folds", folds=3, models=models,
                      model_metrics={"n": 4, "mape_pct": 6.9, "within_10_pct": 75.0},
                      op_metrics={"n": 0}, op_unseen_metrics={"n": 0})  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_is_a_real_png_with_axes_labels_and_band(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the extra tflat[plot] is not installed")
    import matplotlib.image

    out = write_plot(report(), tmp_path / "f.png")
    assert out == tmp_path / "f.png"
    width, height = png_size(out)
    assert width >= 640 and height >= 480
    pixels = matplotlib.image.imread(out)[:, :, :3]
    band = (abs(pixels - 0.88) < 0.01).all(axis=2)  # the ±10 % band's grey
    assert band.sum() > 0.01 * width * height
    dark = (pixels < 0.2).all(axis=2)  # axes, tick labels, axis labels and the title
    assert dark.sum() > 0.002 * width * height


def test_png_without_matplotlib_is_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(TflatError, match=r"tflat\[plot\]"):
        write_plot(report(), tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "f.svg").exists()
    # the CLI says so before evaluating anything
    code = main(["evaluate", "--device", "pixel4", "--cv", "--plot", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert code == 1
    (line,) = err.strip().splitlines()
    assert 'pip install "tflat[plot]"' in line and "f.png" in line


def test_svg_needs_nothing_and_has_axes_labels_band_and_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = write_plot(report(), tmp_path / "f.svg")
    root = ElementTree.fromstring(out.read_text(encoding="utf-8"))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "measured latency (ms)" in texts and "predicted latency (ms)" in texts
    assert any("MAPE 6.9 %" in t for t in texts)
    assert {"5", "10", "20"} <= set(texts)  # log-axis tick labels
    (band,) = root.iter(f"{SVG}polygon")
    assert "±10 %" in (band.findtext(f"{SVG}title") or "")
    assert len(list(root.iter(f"{SVG}circle"))) == len(report().models)
    assert svg_plot(report()) == out.read_text(encoding="utf-8")


def test_other_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TflatError, match=r"\.png, \.pdf or \.svg"):
        write_plot(report(), tmp_path / "f.jpg")
