"""``tflat device add``: bad timings, GPU names, a transfer with one USC phone left out, the
install / ``-d ID`` / ``-d FILE.json`` round trip, the Table 6 networks, sharpening host-cpu."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tflat.cli import main
from tflat.datasets.usc import default_folder, have_usc
from tflat.devices.gpus import gpu_spec
from tflat.errors import TflatError
from tflat.model import read_model
from tflat.model.zoo import build_model

USC = default_folder()
HAVE_USC = have_usc()
TEN = ("mobilenet_w1", "mobilenetv2_w1", "mobilenetv3_large_w1", "mobilenetv3_small_w1",
       "resnet18", "densenet121", "squeezenet_v1_1", "proxylessnas_mobile", "regnety004",
       "resnext14_32x4d")  # fmt: skip


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def zoo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three small real networks written with tflat's writer."""
    folder = tmp_path_factory.mktemp("zoo")
    out = {}
    for name, width in (("mobilenet", 0.25), ("mobilenetv2", 0.35), ("resnet18", 0.25)):
        path = folder / f"{name}.tflite"
        path.write_bytes(build_model(name, width=width))
        out[name] = path
    return out


def timings_csv(folder: Path, rows: list[tuple[str, str]], name: str = "t.csv") -> Path:
    path = folder / name
    path.write_text("model,ms\n" + "".join(f"{m},{ms}\n" for m, ms in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------ bad input: exit 1, one line


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("mobilenet.tflite", "3.1"), ("nosuch.tflite", "2"), ("resnet18.tflite", "9")],
         "unknown model 'nosuch.tflite'"),
        ([("mobilenet.tflite", "3.1"), ("mobilenetv2.tflite", "0"), ("resnet18.tflite", "9")],
         "ms must be a positive number"),
        ([("mobilenet.tflite", "3.1"), ("mobilenetv2.tflite", "-2"), ("resnet18.tflite", "9")],
         "ms must be a positive number"),
        ([("mobilenet.tflite", "3.1"), ("mobilenetv2.tflite", "nan"), ("resnet18.tflite", "9")],
         "ms must be a positive number"),
        ([("mobilenet.tflite", "3.1"), ("mobilenetv2.tflite", "fast"), ("resnet18.tflite", "9")],
         "ms must be a positive number"),
        ([("mobilenet.tflite", "3.1"), ("resnet18.tflite", "9")], "at least 3"),
        ([("mobilenet.tflite", "3.1"), ("mobilenet.tflite", "3.2"), ("resnet18.tflite", "9")],
         "listed twice"),
        ([("resnet18", "9"), ("mobilenet.tflite", "3"), ("mobilenetv2.tflite", "4")],
         "unknown model 'resnet18'"),
    ],
)  # fmt: skip
def test_bad_timings_exit_1_with_one_line(
    rows: list[tuple[str, str]],
    message: str,
    zoo_models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv_path = timings_csv(next(iter(zoo_models.values())).parent, rows, "bad.csv")
    argv = ["device", "add", "x1", "--gpu", "Mali-G710 MP7", "--timings", str(csv_path)]
    code, out, err = run(argv, capsys)
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["missing", "folder", "binary", "no-header", "empty"])
def test_unreadable_timings_file_exits_1(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    if kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "no-header":
        path.write_text("a,b\n1,2\n")
    elif kind == "empty":
        path.write_text("")
    code, _out, err = run(["device", "add", "x1", "--gpu", "Adreno 740", "--timings", str(path)],
                          capsys)  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err


def test_bad_gpu_name_and_id_exit_1(zoo_models: dict[str, Path], capsys: Any) -> None:
    rows = [(p.name, "5") for p in zoo_models.values()]
    csv_path = timings_csv(next(iter(zoo_models.values())).parent, rows)
    code, _out, err = run(["device", "add", "x1", "--gpu", "GeForce RTX 4090", "--timings",
                           str(csv_path)], capsys)  # fmt: skip
    assert code == 1 and "GPU family" in err and err.count("\n") == 1
    code, _out, err = run(["device", "add", "../evil", "--gpu", "Adreno 740", "--timings",
                           str(csv_path)], capsys)  # fmt: skip
    assert code == 1 and "device id" in err and err.count("\n") == 1
    code, _out, err = run(["device", "add", "x1", "--timings", str(csv_path)], capsys)
    assert code == 1 and "--gpu" in err


def test_gpu_names_map_to_delegate_families() -> None:
    assert gpu_spec("Mali-G710 MP7").family == "mali"
    assert gpu_spec("mali g710 mp7").figures["cores"].value == 7
    assert gpu_spec("Adreno 740").family == "adreno"
    assert gpu_spec("Adreno 640").gpu_family == "adreno"  # as the shipped pixel4 bundle has it
    assert gpu_spec("Apple A12 GPU").gpu_family == "apple:a12"
    assert gpu_spec("PowerVR BXM-8-256").family == "powervr"
    assert gpu_spec("Adreno 750").figures == {}  # known family, no figures: none invented
    for spec in (gpu_spec("Adreno 740"), gpu_spec("Mali-G76 MP12")):
        assert all(f.url.startswith("https://") for f in spec.figures.values())
    with pytest.raises(TflatError):
        gpu_spec("Intel UHD 620")


# ------------------------------------------------------------------ install and -d round trip


def test_add_installs_and_estimate_finds_it_by_id_and_by_file(
    zoo_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("mobilenet.tflite", "4.1"), ("mobilenetv2.tflite", "5.3"), ("resnet18.tflite", "8.9")]
    csv_path = timings_csv(zoo_models["mobilenet"].parent, rows, "good.csv")
    argv = ["device", "add", "lab-phone", "--gpu", "Adreno 740", "--timings", str(csv_path),
            "--from-devices", "pixel4,s10,iphonexs"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "installed" in out and "lab-phone" in out
    model = str(zoo_models["mobilenetv2"])
    code, out, err = run(["estimate", model, "-d", "lab-phone", "--format", "json"], capsys)
    assert code == 0, err
    est = json.loads(out)
    total = est["total_ms"] if "total_ms" in est else est[0]["total_ms"]
    # the bundle reproduces the timing it was fitted to, within its leave-one-out error
    assert 5.3 / 1.5 < total < 5.3 * 1.5
    # the same bundle as a file
    out_file = tmp_path / "lab-phone.json"
    code, out, err = run([*argv, "-o", str(out_file)], capsys)
    assert code == 0 and out_file.is_file(), err
    code, out, err = run(["estimate", model, "-d", str(out_file), "--format", "json"], capsys)
    assert code == 0, err
    by_file = json.loads(out)
    assert (by_file["total_ms"] if "total_ms" in by_file else by_file[0]["total_ms"]) > 0
    # devices states what it rests on
    code, out, err = run(["devices", "--format", "json"], capsys)
    cards = {c["id"]: c for c in json.loads(out)}
    assert cards["lab-phone"]["basis"] == "transferred (3 timings)"
    assert cards["pixel4"]["basis"].startswith("measured")
    # Table 6's ConvNeXt-S runs partly on the CPU: its timing is kept, not fitted
    assert cards["pixel7"]["basis"] == "transferred (6 timings)"
    bundle = json.loads(out_file.read_text())
    prov = bundle["provenance"]["transfer"]
    assert [t["ms"] for t in prov["timings"]] == [4.1, 5.3, 8.9]
    assert prov["sources"] == ["pixel4", "s10", "iphonexs"]
    lo, hi = bundle["whole_model"]["log_interval"]
    assert lo < 0 < hi


def test_a_missing_bundle_file_is_one_line(tmp_path: Path, capsys: Any) -> None:
    model = str(Path(__file__).parent / "models" / "hand_recrop.tflite")
    code, _out, err = run(["estimate", model, "-d", str(tmp_path / "none.json")], capsys)
    assert code == 1 and "none.json" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _out, err = run(["estimate", model, "-d", str(bad)], capsys)
    assert code == 1 and "bad.json" in err and err.count("\n") == 1


# ------------------------------------------------------------------ the method on real data


@pytest.mark.skipif(not HAVE_USC, reason="USC data not present")
def test_transfer_with_one_usc_phone_left_out_beats_scaling_the_nearest() -> None:
    """iphone7 left out: the five other shipped predictors and its ten whole-model times
    predict twenty other models; the naive answer scales the nearest phone's measured times."""
    from tflat import load_predictor
    from tflat.datasets.usc import load_usc
    from tflat.devices import transfer
    from tflat.devices.structure import parts_from_usc

    data = load_usc(USC)
    target = "iphone7"
    measured = {m.model: m.mean_ms for m in data.models_for(target)}
    parts = parts_from_usc(data, "apple:a10", exclude=[target])
    timed = [replace(parts[m], measured_ms=measured[m]) for m in TEN]
    sources = [d for d in ("pixel4", "s10", "mi8se", "a03s", "iphonexs")]
    mix = transfer.SourceMix([load_predictor(d) for d in sources])
    tf = transfer.fit_timings(mix, timed)
    others = [m for m in sorted(measured) if m not in TEN][::3]
    pred = np.array([transfer.predict_total(mix, tf, parts[m]) for m in others])
    truth = np.array([measured[m] for m in others])
    err = np.abs(pred / truth - 1)
    src = {m.model: m.mean_ms for m in data.models_for("iphonexs")}
    k = float(np.median([measured[m] / src[m] for m in TEN]))
    naive = np.abs(np.array([k * src[m] for m in others]) / truth - 1)
    assert err.mean() < naive.mean()
    assert err.mean() < 0.12
    assert 0 < tf.log_half_width < math.log(2)
    # the distilled bundle loads and reproduces the timings it rests on
    bundle = transfer.distill(mix, tf, [], timed, device={"id": "t"}, gpu_family="apple:a10",
                              provenance={})  # fmt: skip
    assert bundle["metrics"]["timings_refit_mape_pct"] < 15


# ------------------------------------------------------------------ Table 6 networks


def test_a_timed_model_partly_on_the_cpu_is_left_out_of_the_fit(
    zoo_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pricing_graphs import conv_cumsum_conv

    conv_cumsum_conv(zoo_models["mobilenet"].parent)  # CUMSUM: the 2.10 delegate refuses it
    rows = [("mobilenet.tflite", "4.1"), ("conv_cumsum_conv.tflite", "1.0"),
            ("mobilenetv2.tflite", "5.3"), ("resnet18.tflite", "8.9")]  # fmt: skip
    out_file = tmp_path / "lab.json"
    argv = ["device", "add", "lab", "--gpu", "Adreno 740", "--from-devices", "pixel4,s10",
            "-o", str(out_file), "--timings"]  # fmt: skip
    csv_path = timings_csv(zoo_models["mobilenet"].parent, rows, "split.csv")
    code, out, err = run([*argv, str(csv_path)], capsys)
    assert code == 0, err
    assert "conv_cumsum_conv.tflite: not fitted, " in out and "run on the CPU" in out
    prov = json.loads(out_file.read_text())["provenance"]["transfer"]
    assert [d["model"] for d in prov["not_fitted"]] == ["conv_cumsum_conv.tflite"]
    assert len(prov["loo_log_residuals"]) == 3 and len(prov["timings"]) == 4
    # fewer than three left to fit: one line, exit 1
    csv_path = timings_csv(zoo_models["mobilenet"].parent, rows[:3], "split3.csv")
    code, out, err = run([*argv, str(csv_path)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "1 of 3 timed models run partly on the CPU" in err


def _cumsum_kernel(model: Path, device: str, capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run(["estimate", str(model), "-d", device, "--format", "json"], capsys)
    assert code == 0, err
    est = json.loads(out)
    est = est[0] if isinstance(est, list) else est
    (cpu,) = [k for k in est["kernels"] if "refuses CUMSUM" in k["basis_note"]]
    return est, cpu


def test_a_transferred_phone_prices_refused_ops_on_cpu_rates_borrowed_from_its_sources(
    zoo_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CUMSUM the delegate refuses, on a phone 'device add' wrote: basis cpu, priced by
    its size as a measured phone's CPU prices it, and the note and a warning say borrowed."""
    from pricing_graphs import conv_cumsum_conv

    rows = [("mobilenet.tflite", "4.1"), ("mobilenetv2.tflite", "5.3"), ("resnet18.tflite", "8.9")]
    out_file = tmp_path / "lab.json"
    csv_path = timings_csv(zoo_models["mobilenet"].parent, rows, "cpu.csv")
    code, _out, err = run(["device", "add", "lab", "--gpu", "Mali-G710 MP7", "--from-devices",
                           "pixel4,s10,a03s", "-o", str(out_file), "--timings", str(csv_path)],
                          capsys)  # fmt: skip
    assert code == 0, err
    pricing = json.loads(out_file.read_text())["pricing"]
    assert set(pricing) == {"cpu", "edges", "analytic"}
    for section in pricing.values():
        assert section["borrowed_from"] == ["pixel4", "s10", "a03s"]
        assert section["provenance"]["basis"] == "borrowed"
    ratios = {}
    for device in (str(out_file), "pixel4", "s10"):
        prices = []
        for hw in (14, 112):
            est, cpu = _cumsum_kernel(conv_cumsum_conv(tmp_path, hw).path, device, capsys)
            assert cpu["basis"] == "cpu" and cpu["latency_ms"] > 0
            assert cpu["low_ms"] < cpu["latency_ms"] < cpu["high_ms"]
            prices.append(cpu["latency_ms"] - cpu["transfer_ms"])
            borrowed = [w for w in est["warnings"] if "borrowed from source phones" in w]
            if device == str(out_file):
                assert "borrowed from source phones (pixel4, s10, a03s)" in cpu["basis_note"]
                assert est["cpu_fallback_ms"] > 0 and est["transfer_ms"] > 0
                if hw == 112:  # most of the time is on the CPU
                    assert borrowed and "a03s, pixel4, s10" in borrowed[0]
            else:
                assert "borrowed" not in cpu["basis_note"] and not borrowed
        ratios[device] = prices[1] / prices[0]
    # 64 times the elements: the borrowed CPU prices the growth as the measured CPUs do
    measured = sorted([ratios["pixel4"], ratios["s10"]])
    assert measured[0] > 10
    assert measured[0] / 2 < ratios[str(out_file)] < measured[1] * 2


def test_cpu_timings_set_the_level_of_the_borrowed_cpu_rates(
    zoo_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tflat.devices.borrowed import cpu_ms, cpu_run_work
    from tflat.pricing.cpu import CpuParams

    folder = zoo_models["mobilenet"].parent
    gpu_csv = timings_csv(folder, [("mobilenet.tflite", "4.1"), ("mobilenetv2.tflite", "5.3"),
                                   ("resnet18.tflite", "8.9")], "gpu.csv")  # fmt: skip
    cpu_ms_given = {"mobilenet.tflite": 3.0, "mobilenetv2.tflite": 4.0, "resnet18.tflite": 30.0}
    cpu_csv = timings_csv(folder, [(m, str(v)) for m, v in cpu_ms_given.items()], "cpu.csv")
    out_file = tmp_path / "lab.json"
    argv = ["device", "add", "lab", "--gpu", "Adreno 740", "--from-devices", "pixel4,s10",
            "--timings", str(gpu_csv), "-o", str(out_file)]  # fmt: skip
    code, _out, err = run([*argv, "--cpu-timings", str(cpu_csv)], capsys)
    assert code == 0, err
    pricing = json.loads(out_file.read_text())["pricing"]
    cpu = CpuParams.from_dict(pricing["cpu"])
    record = pricing["cpu"]["provenance"]["cpu_timings"]
    ratios = [cpu_ms(cpu, cpu_run_work(read_model(folder / m))) / ms
              for m, ms in cpu_ms_given.items()]  # fmt: skip
    # one factor: the timed models' priced / measured ratios have a geometric mean of one
    assert math.isclose(float(np.exp(np.mean(np.log(ratios)))), 1.0, rel_tol=1e-6)
    assert len(record["loo_log_residuals"]) == 3 and cpu.borrowed_from == ("pixel4", "s10")
    assert pricing["edges"]["ms_per_mb"] == pytest.approx(cpu.ms_per_mb)
    # CPU timings of a model not on disk, or without --timings: one line, exit 1
    bad = timings_csv(folder, [("mobilenet.tflite", "3"), ("nosuch.tflite", "4"),
                               ("resnet18.tflite", "30")], "cpu_bad.csv")  # fmt: skip
    code, _out, err = run([*argv, "--cpu-timings", str(bad)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "nosuch.tflite" in err
    code, _out, err = run(["device", "add", "lab", "--usc", str(tmp_path), "--cpu-timings",
                           str(cpu_csv)], capsys)  # fmt: skip
    assert code == 1 and "--cpu-timings goes with --timings" in err


def test_table6_networks_build_and_partition() -> None:
    from tflat.devices.keras_apps import build_keras_app
    from tflat.gpu import partition

    g = read_model(build_keras_app("mobilenet_v2", 0.5))
    types = [op.type for op in g.ops]
    assert len(types) == 65 and types.count("ADD") == 10 and types[-2:] == [
        "FULLY_CONNECTED", "SOFTMAX"]  # fmt: skip
    g = read_model(build_keras_app("mobilenet_v3_large", 0.5))
    assert len(g.ops) == 123 and [op.type for op in g.ops[:3]] == ["MUL", "ADD", "CONV_2D"]
    assert sum(op.type == "HARD_SWISH" for op in g.ops) == 21
    kinds = {k.kind for k in partition(g, gpu_family="mali")}
    assert {"conv2d", "depthwise_conv2d", "mean"} <= kinds
    with pytest.raises(ValueError):
        build_keras_app("vgg16")


# ------------------------------------------------------------------ sharpening host-cpu

TINY_PLAN = """
name = "tiny-sharpen"
seed = 3

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
input_w = [16]
cin = [8, 32]
kernel = [3]
stride = [1, 2]

[[grid]]
kind = "ADD"
input_h = [8, 16, 32]
input_w = [8]
cin = [8, 16]
"""


@pytest.mark.slow
def test_timings_sharpen_a_calibrated_host_cpu(
    tmp_path: Path, zoo_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny real calibration of this machine's CPU, then three timings (the estimates x 1.3,
    as if the whole networks ran slower than their ops alone): the sharpened predictor, saved
    in the database, estimates them within a few per cent and says so in tflat devices."""
    from tflat import load_predictor
    from tflat.calibrate import calibrate

    plan = tmp_path / "tiny.toml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'tflat.db'}"
    calibrate("host-cpu", minutes=0.5, db_url=url, work_dir=tmp_path / "work",
              plans=[("tiny", plan, 1.0)], adaptive=False, repeats=5, warmup=1)  # fmt: skip
    before = load_predictor("host-cpu", url)
    rows = []
    for path in zoo_models.values():
        rows.append((path.name, f"{1.3 * before.predict_graph(read_model(path)).total_ms:.6f}"))
    csv_path = timings_csv(zoo_models["mobilenet"].parent, rows, "host.csv")
    code, out, err = run(["device", "add", "host-cpu", "--timings", str(csv_path), "--db", url],
                         capsys)  # fmt: skip
    assert code == 0, err
    assert "sharpened" in out and "database" in out
    after = load_predictor("host-cpu", url)
    for (_name, ms), path in zip(rows, zoo_models.values(), strict=True):
        est = after.predict_graph(read_model(path)).total_ms
        assert est == pytest.approx(float(ms), rel=0.08)
    code, out, err = run(["devices", "--db", url, "--format", "json"], capsys)
    card = {c["id"]: c for c in json.loads(out)}["host-cpu"]
    assert "sharpened (3 timings)" in card["basis"]


@pytest.mark.skipif(not HAVE_USC, reason="USC data not present")
def test_evaluate_accepts_a_transferred_bundle_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pixel4 built from its ten whole-model times in the USC data (the other phones as
    sources), then evaluated as it is on pixel4's USC rows."""
    from tflat.datasets.usc import load_usc

    measured = {m.model: m.mean_ms for m in load_usc(USC).models_for("pixel4")}
    csv_path = timings_csv(tmp_path, [(m, f"{measured[m]:.4f}") for m in TEN])
    out_file = tmp_path / "pixel4-ten.json"
    code, out, err = run(["device", "add", "pixel4", "--gpu", "Adreno 640", "--timings",
                          str(csv_path), "--usc", str(USC), "--from-devices", "mi8se,s10",
                          "-o", str(out_file)], capsys)  # fmt: skip
    assert code == 0, err
    code, out, err = run(["evaluate", "--device", "pixel4", "--predictor", str(out_file),
                          "--usc", str(USC), "--format", "json"], capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["model_level"]["n"] == len(measured)
    assert report["model_level"]["mape_pct"] < 15
