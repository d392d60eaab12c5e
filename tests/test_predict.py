"""Predictors: bundled JSON, graph predictions that add up, training and evaluation."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import tflat
from tflat.cli import main
from tflat.datasets.usc import E2E_FILE, OPS_FILE, data_file, default_folder, load_usc, read_csv
from tflat.errors import PredictorError
from tflat.predict.bundles import BUNDLED_DEVICES, bundled_text
from tflat.predict.trees import from_lightgbm_dump
from tflat.pricing.predictors import list_devices, load_predictor
from tflat.progress import Step

MODELS = sorted((Path(__file__).parent / "models").glob("*.tflite"))
SMALL_FAMILY_MODELS = {
    "mobilenet_w1", "mobilenet_wd2", "mobilenetb_w1", "fdmobilenet_wd4",
    "mobilenetv2_w1", "mobilenetv2_wd2", "mobilenetv2b_w1", "squeezenet_v1_0",
    "squeezenet_v1_1", "squeezeresnet_v1_0", "regnety002", "regnety004", "regnety006",
    "proxylessnas_mobile", "proxylessnas_gpu", "resnet10", "resnet12", "preresnet10",
}  # fmt: skip


@pytest.mark.parametrize("device", sorted(BUNDLED_DEVICES))
def test_bundles_ship_as_json_with_provenance(device: str) -> None:
    text = bundled_text(device)
    assert text is not None, f"{device}.json must ship in tflat/data/devices"
    bundle = json.loads(text)
    assert bundle["device"]["id"] == device
    assert bundle["provenance"]["commit"] == "c864a33" and bundle["provenance"]["licence"] == "MIT"
    assert bundle["tflat_version"] and bundle["features"] and bundle["trees"]["roots"]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_prediction_adds_up(path: Path) -> None:
    pred = load_predictor("pixel4")
    graph = tflat.read_model(path)
    gp = pred.predict_graph(graph)
    assert len(gp.kernel_times) == len(gp.kernels)
    assert gp.total_ms == sum(t.latency_ms for t in gp.kernel_times) + gp.overhead_ms
    assert gp.total_low_ms < gp.total_ms < gp.total_high_ms
    for k, t in zip(gp.kernels, gp.kernel_times, strict=True):
        assert t.low_ms <= t.latency_ms <= t.high_ms
        assert (t.latency_ms == 0) == (k.kind == "free")
    # a tiny CNN on a flagship GPU: milliseconds, not microseconds or seconds
    assert 0.2 < gp.total_ms < 50


def test_slower_phone_predicts_slower() -> None:
    graph = tflat.read_model(MODELS[0])
    fast = load_predictor("iphonexs").predict_graph(graph).total_ms
    slow = load_predictor("a03s").predict_graph(graph).total_ms
    assert slow > fast


def test_bigger_conv_costs_more_beyond_the_data() -> None:
    from tflat.predict.features import KernelShape

    pred = load_predictor("pixel4")
    shapes = [
        KernelShape("conv2d", h, h, 256, h, h, 256, kernel=3, flops=2 * h * h * 9 * 256 * 256)
        for h in (56, 224, 896)
    ]
    ms = pred.predict_shapes(shapes)
    assert ms[0] < ms[1] < ms[2]
    assert ms[2] / ms[1] > 4  # 16x the work: far beyond the data, still grows


def test_unknown_device_names_the_known(tmp_path: Path) -> None:
    with pytest.raises(PredictorError, match="pixel4"):
        load_predictor("no-such-phone", db_url=f"sqlite:///{tmp_path / 't.db'}")
    ids = [c.id for c in list_devices(f"sqlite:///{tmp_path / 't.db'}")]
    assert ids[:6] == list(BUNDLED_DEVICES)


def test_calibratable_device_without_predictor_says_calibrate(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    for device in ("host-cpu", "host-cpu-t4", "android:R58M"):
        with pytest.raises(PredictorError, match=r"calibrate it first: tflat calibrate ") as exc:
            load_predictor(device, db_url=db)
        assert "\n" not in str(exc.value) and device in str(exc.value)


def test_named_database_failure_is_a_store_error(tmp_path: Path) -> None:
    from tflat.errors import StoreError

    junk = tmp_path / "t.db"
    junk.write_bytes(b"not a database, " * 100)
    bad = f"sqlite:///{junk}"
    with pytest.raises(StoreError) as exc:
        load_predictor("pixel4", db_url=bad)  # no fall-back to the shipped bundle
    assert exc.value.exit_code == 2
    with pytest.raises(StoreError):
        list_devices(bad)


def test_tree_export_matches_lightgbm() -> None:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = 2 * x[:, 0] + np.sin(3 * x[:, 1])
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(x, label=y), num_boost_round=30)  # fmt: skip
    ours = from_lightgbm_dump(booster.dump_model())
    assert np.allclose(ours.predict(x), booster.predict(x))


def test_robust_objective_trains_and_exports() -> None:
    """Inner folds predict with the booster, bundles with the export: both must agree, for
    the robust losses of the tuning grid too, and the median loss must shrug off outliers."""
    pytest.importorskip("lightgbm")
    from tflat.predict.trees import fit_gbdt, train_booster

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = x[:, 0] + np.where(rng.random(300) < 0.1, 5.0, 0.0)  # a few gross outliers
    base = {"n_estimators": 60, "min_data_in_leaf": 5}
    for extra in ({"objective": "huber", "alpha": 0.1}, {"objective": "regression_l1"}):
        params = {**base, **extra}
        booster = train_booster(x, y, params)
        assert np.allclose(fit_gbdt(x, y, params).predict(x), booster.predict(x))
    clean = y < 4
    l1 = train_booster(x, y, {**base, "objective": "regression_l1"}).predict(x)
    l2 = train_booster(x, y, base).predict(x)
    assert np.median(l1[clean] - x[clean, 0]) < np.median(l2[clean] - x[clean, 0])


def test_node_ids_and_unlisted_bytes() -> None:
    from tflat.predict.features import KernelShape
    from tflat.predict.train import _nodes, _unlisted_mb

    assert _nodes("convolution_2d_3_linked_:_relu_4") == [3, 4]
    assert _nodes("convolution_winograd_4x4_6x6_1") == [1]
    assert _nodes("convolution_2d_grouped_4_linked_:_relu_5") == [4, 5]
    dw = KernelShape("depthwise_conv2d", 28, 28, 72, 28, 28, 72, kernel=5, groups=72)
    fc = KernelShape("fully_connected", 1, 1, 24, 1, 1, 72)
    conv = KernelShape("conv2d", 28, 28, 72, 28, 28, 40)
    nodes = [(23, dw), (28, fc), (32, conv)]
    # an unlisted op writes the output of the listed kernel before it
    assert _unlisted_mb(24, nodes) == pytest.approx(28 * 28 * 72 * 2 / 1e6)
    assert _unlisted_mb(31, nodes) == pytest.approx(72 * 2 / 1e6)


def _usc_subset(folder: Path, models: set[str]) -> Path:
    """The USC files (packaged, or TFLAT_USC_DIR) cut down to ``models``, as plain CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (OPS_FILE, E2E_FILE):
        path = data_file(default_folder(), name)
        assert path is not None, f"{name} is neither in TFLAT_USC_DIR nor packaged"
        rows = read_csv(path)
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if r["model"] in models)
    return folder


def _small_usc(folder: Path) -> Path:
    """A real subset of the USC files (a few families) for fast end-to-end runs."""
    return _usc_subset(folder, SMALL_FAMILY_MODELS)


def test_fit_device_roundtrips_json(tmp_path: Path) -> None:
    from tflat.predict import Predictor
    from tflat.predict.usc import fit_usc_device

    data = load_usc(_small_usc(tmp_path / "usc"))
    steps: list[Step] = []
    bundle = fit_usc_device(data, "mi8se", params={"n_estimators": 60}, tune=True, tune_by="model",
                            progress=steps.append)  # fmt: skip
    # progress: from 0 to the total, never backwards, one step per fold of every candidate
    assert steps[0].done == 0 and steps[-1].done == steps[-1].total
    assert [s.done for s in steps] == sorted(s.done for s in steps)
    assert len(steps) >= len(bundle["gbdt_selection"]["candidates"]) * 2 + 2
    again = Predictor(json.loads(json.dumps(bundle)))
    assert again.device == "mi8se" and bundle["training_rows"]["models"] == 18
    wm = bundle["whole_model"]
    scale = wm["coef"].get("listed_kernel_sum_ms", wm["coef"].get("main_kernel_sum_ms", 0))
    assert f"{wm['design']}/{wm['fitted_on']}" in wm["selection_mape_pct"]
    assert set(wm["coef"]) == set(wm["features"])
    assert scale > 0.5 and wm["log_interval"][0] < 0 < wm["log_interval"][1]
    # with tune, the tree settings are chosen on the inner family folds: lowest whole-model error
    sel = bundle["gbdt_selection"]
    scores = {k: v["model_oof_mape_pct"] for k, v in sel["candidates"].items()}
    assert sel["chosen"] == min(scores, key=lambda k: scores[k]) and len(scores) > 1
    assert bundle["metrics"]["model_oof_mape_pct"] == pytest.approx(scores[sel["chosen"]])
    assert bundle["gbdt_params"]["n_estimators"] == 60  # a fixed param overrides every candidate


@pytest.mark.slow
def test_evaluate_cli_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usc = _small_usc(tmp_path / "usc")
    plot = tmp_path / "plot.png"
    code = main(["--progress", "evaluate", "--device", "pixel4", "--usc", str(usc), "--format",
                 "json", "--folds", "3", "--plot", str(plot)])  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert "evaluate pixel4: fold 3 of 3" in err and "ETA" in err and "100%" in err
    assert len(report["models"]) == 18
    assert {"model", "measured_ms", "predicted_ms"} <= set(report["models"][0])
    # held out by family: every fold's test families are disjoint from the others
    fams = [f for fold in report["families"].values() for f in fold]
    assert len(fams) == len(set(fams)) == 6
    assert report["model_level"]["mape_pct"] < 30
    data = plot.read_bytes()  # a real PNG of at least 640 x 480
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 640 and height >= 480


def test_evaluate_trained_predictor_on_other_models_in_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A predictor trained without some models, evaluated on them as imported into a database."""
    from tflat.predict.bundles import bundle_json
    from tflat.predict.usc import fit_usc_device

    other = {"mobilenetv2_w1", "mobilenetv2_wd2", "mobilenetv2b_w1", "squeezenet_v1_1"}
    folder = _usc_subset(tmp_path / "other", other)
    train = load_usc(_small_usc(tmp_path / "usc"))
    bundle = fit_usc_device(train, "mi8se", models=SMALL_FAMILY_MODELS - other,
                            params={"n_estimators": 60})  # fmt: skip
    assert not other & {m for m in SMALL_FAMILY_MODELS - other}
    bundle_file = tmp_path / "mi8se.json"
    bundle_file.write_text(bundle_json(bundle))
    url = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["db", "import", str(folder), "--format", "usc", "--db", url]) == 0
    capsys.readouterr()

    code = main(["evaluate", "--device", "mi8se", "--db", url, "--predictor", str(bundle_file),
                 "--format", "json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"].startswith("trained predictor")
    assert {m["model"] for m in report["models"]} == other
    for m in report["models"]:
        assert m["measured_ms"] > 0 and m["predicted_ms"] > 0
    assert report["model_level"]["mape_pct"] < 25
    assert report["op_level"]["n"] > 100

    # Without --predictor, --db evaluates the device's trained predictor (here the bundled one).
    code = main(["evaluate", "--device", "mi8se", "--db", url, "--format", "json"])
    assert code == 0
    again = json.loads(capsys.readouterr().out)
    assert {m["model"] for m in again["models"]} == other and again["folds"] == 0
    # --cv and --predictor exclude each other: a bad-input exit, not a traceback
    assert main(["evaluate", "--device", "mi8se", "--db", url, "--cv", "--predictor", "db"]) == 1


def test_train_without_measurements_is_worded_by_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tflat.cli import main

    db = f"sqlite:///{tmp_path / 't.db'}"
    assert main(["train", "--device", "host-cpu", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "no CPU kernel measurements for host-cpu" in err
    assert "GPU" not in err and "tflat calibrate host-cpu" in err
    assert main(["evaluate", "--device", "pixel4", "--cv", "--folds", "1"]) == 1
    assert "--folds" in capsys.readouterr().err


def test_concat_and_fully_connected_loops_follow_the_delegate() -> None:
    from tflat.predict.features import KernelShape, _Columns, analytic_inputs

    # ConcatZ: one work item per pixel copies every output slice; FullyConnected: 4 threads
    # per output slice split the input slices
    cat = KernelShape("concat", 7, 7, 1000, 7, 7, 1024, n_inputs=2)
    fc = KernelShape("fully_connected", 1, 1, 960, 1, 1, 240)
    cols = _Columns([cat, fc])
    assert list(cols.loop_steps) == [cat.loop_steps, fc.loop_steps] == [256, 60]
    assert analytic_inputs([cat])[0, 3] == pytest.approx(0.256)
    assert cols.tasks[0] == 49 and cols.util_z[0] == 1.0


def test_train_draws_a_bar_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stderr here is not a terminal: no bar by default, a bar with ETA with --progress."""
    usc = _small_usc(tmp_path / "usc")
    argv = ["train", "--device", "mi8se", "--usc", str(usc), "-o", str(tmp_path / "b.json")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "ETA" not in err and "trained mi8se" in out
    assert main(["--progress", *argv]) == 0
    out, err = capsys.readouterr()
    assert "train mi8se" in err and "ETA" in err and "100%" in err
    assert "ETA" not in out  # the bar never mixes with the output


@pytest.mark.parametrize("models", [{"mobilenet_w1"}, {"mobilenet_w1", "resnet18", "densenet121"}])
def test_train_on_a_few_models_says_in_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], models: set[str]
) -> None:
    # Too few models to hold a family out (fewer rows than the whole-model term has terms):
    # training still works, says its model error is in-sample, and the band is not narrower
    # than x0.8-x1.25.
    usc = _usc_subset(tmp_path / "usc", models)
    out = tmp_path / "b.json"
    code = main(["train", "--device", "pixel4", "--usc", str(usc), "-o", str(out)])
    assert code == 0
    assert "in-sample (too few models to hold one out)" in capsys.readouterr().out
    wm = json.loads(out.read_text())["whole_model"]
    assert wm["selection"] == "in-sample"
    low, high = wm["log_interval"]
    assert low <= math.log(0.8) + 1e-9 and high >= math.log(1.25) - 1e-9
