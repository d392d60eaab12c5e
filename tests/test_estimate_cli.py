"""``tflat estimate`` and ``tflat devices`` as users run them (in process, real predictors)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tflat.cli import main
from tflat.model import read_model

MODEL = Path(__file__).parent / "models" / "face_detection_short_range.tflite"


@pytest.fixture(autouse=True)
def _own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Device lookups may open the default database: never the user's one in tests."""
    monkeypatch.setenv("TFLAT_DB", f"sqlite:///{tmp_path / 'default.db'}")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_every_op_and_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["estimate", str(MODEL), "--device", "pixel4", "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    n_ops = len(read_model(MODEL).ops)
    assert data["device"] == "pixel4"
    assert [layer["index"] for layer in data["layers"]] == list(range(n_ops))
    for key in ("type", "latency_ms", "low_ms", "high_ms", "share", "kernel", "fallback"):
        assert key in data["layers"][0]
    assert sum(layer["latency_ms"] for layer in data["layers"]) + data["overhead_ms"] == (
        pytest.approx(data["total_ms"], rel=1e-12)
    )


def test_csv_one_row_per_layer_and_device(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", str(MODEL), "-d", "pixel4", "-d", "s10", "--format", "csv"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    n_ops = len(read_model(MODEL).ops)
    assert len(rows) == 2 * (n_ops + 2)  # the layers, the overhead and the total per device
    assert {r["device"] for r in rows} == {"pixel4", "s10"}
    json_argv = ["estimate", str(MODEL), "-d", "pixel4", "-d", "s10", "--format", "json"]
    totals = {d["device"]: d for d in json.loads(run(json_argv, capsys)[1])}
    for device in ("pixel4", "s10"):
        mine = [r for r in rows if r["device"] == device]
        assert [r["role"] for r in mine[-2:]] == ["overhead", "total"]
        total = float(mine[-1]["latency_ms"])
        assert sum(float(r["latency_ms"]) for r in mine[:-1]) == pytest.approx(total, rel=1e-12)
        assert total == totals[device]["total_ms"]
        assert float(mine[-2]["latency_ms"]) == totals[device]["overhead_ms"]


@pytest.mark.parametrize("devices", [["pixel4"], ["pixel4", "iphonexs"]])
def test_table_fits_80_columns(
    devices: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["estimate", str(MODEL), *(a for d in devices for a in ("-d", d))]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert all(d in lines[0] + lines[1] for d in devices)
    assert any(line.split()[:1] == ["total"] for line in lines)


def test_table_shows_total_overhead_and_top(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["estimate", str(MODEL), "--device", "pixel4"], capsys)
    assert code == 0, err
    assert "overhead" in out and "total" in out and "top 10 layers" in out


def test_html_side_by_side_and_overlays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.html"
    heat = tmp_path / "heat.json"
    argv = ["estimate", str(MODEL), "-d", "pixel4", "-d", "iphone7", "--format", "html",
            "-o", str(report), "--overlay", str(heat)]  # fmt: skip
    code, _out, err = run(argv, capsys)
    assert code == 0, err
    text = report.read_text()
    assert "<script src" not in text and "pixel4 ms" in text and "iphone7 ms" in text
    n_ops = len(read_model(MODEL).ops)
    for dev in ("pixel4", "iphone7"):
        node_data = json.loads((tmp_path / f"heat.{dev}.json").read_text())
        assert set(node_data["results"]) == {str(i) for i in range(n_ops)}
    assert not heat.exists()


def test_single_overlay_goes_to_the_named_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heat = tmp_path / "heat.json"
    code, out, err = run(
        ["estimate", str(MODEL), "--overlay", str(heat), "--format", "json"], capsys
    )
    assert code == 0, err
    values = json.loads(heat.read_text())["results"]
    total = json.loads(out)
    assert sum(v["value"] for v in values.values()) + total["overhead_ms"] == pytest.approx(
        total["total_ms"], rel=1e-5
    )


def test_unknown_device_exit_1_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(["estimate", str(MODEL), "--device", "nokia3310"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("tflat: error:")
    assert "pixel4" in err and "Traceback" not in err


def test_unreadable_model_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    code, _out, err = run(["estimate", str(bad), "--device", "pixel4"], capsys)
    assert code == 1 and err.count("\n") == 1 and "x.tflite" in err
    code, _out, err = run(["estimate", str(tmp_path / "missing.tflite")], capsys)
    assert code == 1 and "no such file" in err


def test_devices_lists_bundled_with_provenance(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["devices", "--format", "json"], capsys)
    assert code == 0, err
    cards = json.loads(out)
    ids = {c["id"] for c in cards}
    assert {"pixel4", "s10", "mi8se", "a03s", "iphone7", "iphonexs"} <= ids
    for card in cards:
        assert card.get("source"), card
    code, out, err = run(["devices"], capsys)
    assert code == 0 and "pixel4" in out


def test_calibrated_device_from_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tflat.pricing.predictors import load_predictor
    from tflat.store import open_store

    # A lab's own calibration: here the pixel4 bundle saved under another device id.
    bundle = dict(load_predictor("pixel4").bundle)
    bundle["device"] = dict(bundle["device"], id="lab-phone", name="Lab phone")
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    with open_store(url) as store:
        store.save_predictor("lab-phone", bundle, {"source": "calibrated in the lab"})
    code, out, err = run(["devices", "--db", url, "--format", "json"], capsys)
    assert code == 0, err
    assert "lab-phone" in {c["id"] for c in json.loads(out)}
    code, out, err = run(
        [
            "estimate",
            str(MODEL),
            "-d",
            "lab-phone",
            "-d",
            "pixel4",
            "--db",
            url,
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    lab, pixel4 = json.loads(out)
    assert lab["device"] == "lab-phone"
    assert lab["total_ms"] == pytest.approx(pixel4["total_ms"])
    # Without the database the device is unknown.
    code, out, err = run(["estimate", str(MODEL), "-d", "lab-phone"], capsys)
    assert code == 1 and "lab-phone" in err


def test_precision_is_stated_and_fp32_is_extrapolated(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["estimate", str(MODEL), "-d", "pixel4", "--format", "json"], capsys)
    assert code == 0, err
    default = json.loads(out)
    assert (default["precision"], default["precision_basis"]) == ("fp16", "learned")
    argv = ["estimate", str(MODEL), "-d", "pixel4", "--precision", "fp32", "--format", "json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    fp32 = json.loads(out)
    assert (fp32["precision"], fp32["measured_precision"]) == ("fp32", "fp16")
    assert fp32["precision_basis"] == "extrapolated"
    assert any("extrapolated" in w for w in fp32["warnings"])
    assert fp32["total_ms"] >= default["total_ms"]
    code, out, err = run(["estimate", str(MODEL), "-d", "pixel4", "--precision", "fp32"], capsys)
    assert code == 0 and "fp32 math, extrapolated from fp16 measurements" in out
    argv = ["estimate", str(MODEL), "-d", "pixel4", "-d", "s10", "--precision", "fp32"]
    code, out, err = run(argv, capsys)
    per_device = out[out.index("per device") :]
    assert code == 0 and "precision" in per_device and per_device.count("fp32") >= 2
    assert "warning (s10): fp32 math is extrapolated" in out
    code, out, err = run(["estimate", str(MODEL), "-d", "pixel4", "--precision", "fp64"], capsys)
    assert code == 1 and err.count("\n") == 1 and "fp64" in err


def test_devices_state_their_measured_precision(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["devices", "--format", "json"], capsys)
    assert code == 0, err
    assert {c["id"]: c["precision"] for c in json.loads(out)}["pixel4"] == "fp16"
    code, out, err = run(["devices"], capsys)
    assert code == 0 and "precision" in out and "fp16" in out
