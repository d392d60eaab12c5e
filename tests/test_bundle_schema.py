"""Predictor bundles from outside are untrusted: 50 tampered bundles, each refused cleanly.

Each tampered bundle is made from a real one (the shipped pixel4 GPU bundle, or a CPU bundle
fitted here on synthetic rows) and given to ``tflat estimate MODEL -d FILE -o OUT``: exit 1,
exactly one line on stderr naming the file, nothing on stdout, no output file (so no NaN
written). The untampered bundles estimate the same model with exit 0 (the test can fail).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tflat.cli import main

MODEL = Path(__file__).parent / "models" / "hand_recrop.tflite"
Mutation = Callable[[dict[str, Any]], Any]


@pytest.fixture(scope="module")
def gpu_bundle() -> dict[str, Any]:
    text = resources.files("tflat").joinpath("data", "devices", "pixel4.json").read_text()
    return dict(json.loads(text))


def synthetic_cpu_bundle(n_rows: int = 40, seed: int = 3) -> dict[str, Any]:
    """A CPU bundle fitted on synthetic rows (the real fitting code, made-up latencies)."""
    from tflat.cpu.features import FEATURE_NAMES
    from tflat.cpu.predictor import CpuPredictor
    from tflat.cpu.regressor import TrainingRow, fit_models

    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        feats = {name: float(rng.randint(1, 64)) for name in FEATURE_NAMES}
        feats["flops"] = float(rng.randint(10**4, 10**7))
        kind, op = ("conv2d", "CONV_2D") if i % 2 else ("elementwise", "ADD")
        rows.append(TrainingRow(op, kind, feats, 0.01 + feats["flops"] / 1e9))
    models = fit_models(rows)
    spread = {key: (0.8, 1.25) for key in models}
    predictor = CpuPredictor("host-cpu-test", models, invoke_overhead_ms=0.05, spread=spread)
    return predictor.to_bundle()


@pytest.fixture(scope="module")
def cpu_bundle() -> dict[str, Any]:
    return synthetic_cpu_bundle()


def _leaf(b: dict[str, Any]) -> int:
    return b["trees"]["feature"].index(-1)


def _inner(b: dict[str, Any]) -> int:
    return next(i for i, f in enumerate(b["trees"]["feature"]) if f >= 0)


def _set(path: str, value: Any) -> Mutation:
    def mutate(b: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = b
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
        return b

    return mutate


def _del(path: str) -> Mutation:
    def mutate(b: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = b
        for key in parents:
            node = node[key]
        del node[last]
        return b

    return mutate


def _apply(fn: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(b: dict[str, Any]) -> Any:
        fn(b)
        return b

    return mutate


def _text(fn: Callable[[str], str]) -> Mutation:
    """A mutation of the file's text rather than its data."""
    return lambda b: _Raw(fn(json.dumps(b)))


class _Raw:
    def __init__(self, text: str) -> None:
        self.text = text


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


GPU: dict[str, Mutation] = {
    "nan leaf value": _set("trees.value.3", math.nan),
    "infinite threshold": _set("trees.threshold.0", math.inf),
    "1e999 in the text": _text(lambda t: t.replace('"level": 0.8', '"level": 1e999')),
    "huge analytic coefficient": _set("analytic.conv2d.1", 1e300),
    "huge leaf values": _apply(lambda b: b["trees"]["value"].__setitem__(_leaf(b), 1e300)),
    "format_version as text": _set("format_version", "2"),
    "format version from the future": _set("format_version", 99),
    "kinds not a list": _set("kinds", "conv2d"),
    "left truncated": _apply(lambda b: b["trees"]["left"].pop()),
    "feature longer than the rest": _apply(lambda b: b["trees"]["feature"].append(-1)),
    "child index out of range": _apply(lambda b: b["trees"]["left"].__setitem__(0, 10**9)),
    "child beyond its tree": _apply(lambda b: b["trees"]["right"].__setitem__(0, 11599)),
    "cycle to the root": _apply(lambda b: b["trees"]["left"].__setitem__(_inner(b) + 1, 0)),
    "leaf pointing away": _apply(lambda b: b["trees"]["left"].__setitem__(_leaf(b), 0)),
    "two parents": _apply(lambda b: b["trees"]["right"].__setitem__(0, b["trees"]["left"][0])),
    "negative root": _set("trees.roots.0", -1),
    "negative depth": _set("trees.max_depth", -1),
    "depth over the cap": _set("trees.max_depth", 1000),
    "deeper than max_depth": _set("trees.max_depth", 3),
    "split on a feature that does not exist": _apply(
        lambda b: b["trees"]["feature"].__setitem__(_inner(b), 40)
    ),
    "unknown kernel kind": _apply(lambda b: b["kinds"].append("warp_drive")),
    "unknown feature name": _set("features.5", "flux_capacitance"),
    "kind without coefficients": _del("analytic.pool"),
    "huge analytic pricing rate": _set("pricing.analytic.ms_per_mb", 1e300),
    "cpu pricing band without its price": _set("pricing.cpu.log_interval", [0.2, 0.5]),
    "copy pricing rate as text": _set("pricing.edges.ms_per_mb", "fast"),
    "training range min above max": _set("training_range.kinds.conv2d.kernel", [7.0, 1.0]),
    "training range not an object": _set("training_range", [1, 2]),
    "extrapolation band of exp(1000)": _set(
        "training_range.extrapolation.log_interval", [-1000.0, 1000.0]
    ),
    "no analytic coefficients": _set("analytic.conv2d", []),
    "no trees": _del("trees"),
    "no whole-model term": _del("whole_model"),
    "no device id": _del("device.id"),
    "unknown key": _set("surprise", 1),
    "interval level over 1": _set("kernel_interval.level", 1.5),
    "interval upside down": _set("kernel_interval.log_ratio.conv2d", [0.5, -0.5]),
    "negative overhead": _set("whole_model.coef.one", -3.0),
    "unknown whole-model term": _set("whole_model.coef.warp", 1.0),
    "interval of one number": _set("whole_model.log_interval", [0.1]),
    "deeply nested provenance": _set("provenance.notes", _nested(100)),
    "nesting deeper than json reads": _text(
        lambda t: t.replace(
            '"provenance": {', '"provenance": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1
        )
    ),
    "huge provenance": _set("provenance.notes", "x" * 2_000_000),
    "control characters in a name": _set("device.name", "evil\nsecond line\x1b[31m"),
    "unknown gpu family": _set("gpu_family", "../../etc/passwd"),
    "unknown rules": _set("rules", "nope"),
    "unknown precision": _set("precision", "fp8"),
    "an integer of 5000 digits": _text(
        lambda t: t.replace('"max_depth": 12', '"max_depth": ' + "9" * 5000)
    ),
    "truncated text": _text(lambda t: t[: len(t) // 2]),
    "empty file": _text(lambda t: ""),
    "a list, not an object": _text(lambda t: "[]"),
    "unknown format": _set("format", "tflat-predictor-v9"),
    "no format": _del("format"),
}
CPU: dict[str, Mutation] = {
    "cpu: row of the wrong width": _apply(lambda b: b["models"]["kind:any"]["x"][0].pop()),
    "cpu: zero spread of a feature": _apply(
        lambda b: b["models"]["kind:any"]["sd"].__setitem__(0, 0.0)
    ),
    "cpu: a spread so small distances overflow": _apply(
        lambda b: b["models"]["kind:any"]["sd"].__setitem__(0, 1e-320)
    ),
    "cpu: a feature so large distances overflow": _apply(
        lambda b: b["models"]["kind:any"]["x"][0].__setitem__(0, 1e300)
    ),
    "cpu: fewer ratios than rows": _apply(lambda b: b["models"]["kind:any"]["log_ratio"].pop()),
    "cpu: negative invoke overhead": _set("invoke_overhead_ms", -1.0),
    "cpu: negative neighbour count": _set("models.kind:any.k", -3),
    "cpu: unknown op type": _set("spread.NOT_AN_OP", [0.8, 1.2]),
    "cpu: unknown pooled kind": _apply(
        lambda b: b["models"].__setitem__("kind:warp", b["models"]["kind:any"])
    ),
    "cpu: features in another order": _apply(lambda b: b["features"].reverse()),
    "cpu: NaN scale": _set("whole_model.scale", math.nan),
}


def _write(path: Path, data: Any) -> None:
    text = data.text if isinstance(data, _Raw) else json.dumps(data)  # NaN written as NaN
    path.write_text(text, encoding="utf-8")


def _estimate(bundle: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["estimate", str(MODEL), "-d", str(bundle), "--format", "json", "-o", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_there_are_forty_tampered_bundles_or_more() -> None:
    assert len(GPU) + len(CPU) >= 40


@pytest.mark.parametrize("name", sorted(GPU) + sorted(CPU))
def test_tampered_bundle_is_refused_in_one_line(
    name: str,
    gpu_bundle: dict[str, Any],
    cpu_bundle: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, mutate = (cpu_bundle, CPU[name]) if name in CPU else (gpu_bundle, GPU[name])
    path, out = tmp_path / "bundle.json", tmp_path / "estimate.json"
    _write(path, mutate(copy.deepcopy(base)))
    code, stdout, stderr = _estimate(path, out, capsys)
    assert code == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("tflat: error: "), stderr
    assert str(path) in stderr and "Traceback" not in stderr
    assert stdout == "" and not out.exists()


def test_a_sixty_megabyte_bundle_is_refused_before_it_is_read(
    gpu_bundle: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, out = tmp_path / "big.json", tmp_path / "estimate.json"
    text = json.dumps(gpu_bundle)
    path.write_text(text[:-1] + ', "pad": "' + "x" * 60_000_000 + '"}', encoding="utf-8")
    code, stdout, stderr = _estimate(path, out, capsys)
    assert code == 1 and stdout == "" and not out.exists()
    assert stderr.count("\n") == 1 and "over the 50 MB a bundle may have" in stderr


@pytest.mark.parametrize("which", ["gpu", "gpu measured in fp32", "cpu"])
def test_untampered_bundles_estimate(
    which: str,
    gpu_bundle: dict[str, Any],
    cpu_bundle: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, out = tmp_path / "bundle.json", tmp_path / "estimate.json"
    bundle = cpu_bundle if which == "cpu" else dict(gpu_bundle)
    if which == "gpu measured in fp32":
        bundle["precision"] = "fp32"
    _write(path, bundle)
    code, _, stderr = _estimate(path, out, capsys)
    assert code == 0, stderr
    data = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(name))
    estimates = data if isinstance(data, list) else [data]
    assert all(math.isfinite(e["total_ms"]) and e["total_ms"] > 0 for e in estimates)


def test_shipped_bundles_pass_the_schema() -> None:
    from tflat.predict.bundles import bundled_text, shipped_devices
    from tflat.pricing.bundle_schema import validate_bundle

    assert len(shipped_devices()) >= 6
    for device in shipped_devices():
        text = bundled_text(device)
        assert text is not None
        validate_bundle(json.loads(text), device)


def test_a_bundle_that_overflows_is_caught_before_it_is_written(
    gpu_bundle: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every field in range, yet the sum overflows: the estimate refuses a non-finite time."""
    bundle = copy.deepcopy(gpu_bundle)
    for kind in bundle["analytic"]:
        bundle["analytic"][kind] = [1e6] * len(bundle["analytic"][kind])
    bundle["whole_model"]["coef"] = {"listed_kernel_sum_ms": 1e6, "one": 1e6}
    bundle["kernel_interval"]["log_ratio"] = {k: [-1.0, 50.0] for k in bundle["kinds"]}
    path, out = tmp_path / "bundle.json", tmp_path / "estimate.json"
    _write(path, bundle)
    code, _, stderr = _estimate(path, out, capsys)
    if code == 0:  # large but finite: then what was written holds no NaN or infinity
        json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(name))
    else:
        assert code == 1 and stderr.count("\n") == 1 and not out.exists()


def test_a_tampered_predictor_in_a_shared_database_is_refused(
    cpu_bundle: dict[str, Any], sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database is shared data too: its bundle text edited to hold NaN (json.loads reads
    it) or a broken tree is refused by the same schema, in one line."""
    from sqlalchemy import text

    from tflat.store import open_store

    with open_store(sqlite_url) as store:
        store.save_predictor("host-cpu-test", cpu_bundle)
    args = ["estimate", str(MODEL), "-d", "host-cpu-test", "--db", sqlite_url]
    assert main(args) == 0
    capsys.readouterr()
    bad = json.dumps(cpu_bundle).replace('"invoke_overhead_ms": 0.05', '"invoke_overhead_ms": NaN')
    for damaged, code in ((bad, 1), ("{not json", 2)):
        with open_store(sqlite_url) as store, store._engine.begin() as conn:
            conn.execute(text("UPDATE predictors SET bundle = :b"), {"b": damaged})
        assert main(args) == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "host-cpu-test" in err, err


def test_an_interval_leaning_one_way_still_holds_the_prediction(
    gpu_bundle: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tflat train can make a kind's interval [0.8, 2.2] (its held-out residuals all lean one
    way): such a bundle is valid, and each kernel's interval is widened to hold its time (it
    made a Price that refused it: exit 3)."""
    bundle = copy.deepcopy(gpu_bundle)
    for kind in ("conv2d", "depthwise_conv2d"):
        bundle["kernel_interval"]["log_ratio"][kind] = [0.8, 2.2]
    path, out = tmp_path / "bundle.json", tmp_path / "estimate.json"
    _write(path, bundle)
    code, _, stderr = _estimate(path, out, capsys)
    assert code == 0, stderr
    data = json.loads(out.read_text())
    estimate = data[0] if isinstance(data, list) else data
    kernels = [k for k in estimate["kernels"] if k["latency_ms"] > 0]
    assert kernels and all(k["low_ms"] <= k["latency_ms"] <= k["high_ms"] for k in kernels)
