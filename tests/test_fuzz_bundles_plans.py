"""Fuzz predictor bundles and sampling plans, the reader's fuzzing carried to the other inputs.

Whatever the data, a bundle loads (and then estimates a real model with finite times) or
raises a one-line PredictorError; a plan expands or raises a one-line SpecError. Never another
exception, never a hang (the reader fuzz's per-example alarm). Seeds are real: the shipped
pixel4 bundle (cut to its first trees, so an example takes milliseconds), a CPU bundle fitted
here, the shipped plans.

Set ``TFLAT_FUZZ_EXAMPLES`` for a longer, randomized run, as for the reader.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tflat
from test_fuzz_reader import ALARM_S, DERANDOMIZE, EXAMPLES, _mutation, alarm, mutate
from tflat.errors import PredictorError, SpecError

MODEL = Path(__file__).parent / "models" / "hand_recrop.tflite"
FUZZ = settings(
    max_examples=max(EXAMPLES // 5, 50),
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def gpu_seed() -> dict[str, Any]:
    """The pixel4 bundle with its first 12 trees: every section, a small tree array."""
    text = resources.files("tflat").joinpath("data", "devices", "pixel4.json").read_text()
    bundle = json.loads(text)
    trees = bundle["trees"]
    end = trees["roots"][12]
    trees["roots"] = trees["roots"][:12]
    for key in ("feature", "threshold", "left", "right", "value"):
        trees[key] = trees[key][:end]
    return dict(bundle)


@functools.cache
def cpu_seed() -> dict[str, Any]:
    from test_bundle_schema import synthetic_cpu_bundle

    return synthetic_cpu_bundle(n_rows=16, seed=5)


@functools.cache
def graph() -> Any:
    return tflat.read_model(MODEL)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 1e-300]),
    st.text(max_size=12),
    st.sampled_from(["conv2d", "CONV_2D", "kind:any", "-1", "NaN", "\n", "tflat-predictor"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: (what, a walk down the tree as child numbers, a new value)
_edit = st.tuples(
    st.sampled_from(["replace", "delete", "append", "duplicate"]),
    st.lists(st.integers(0, 2**16), min_size=1, max_size=6),
    _json,
)


def edit(data: Any, edits: list[tuple[str, list[int], Any]]) -> Any:
    for what, walk, value in edits:
        parent: Any = None
        key: Any = None
        node = data
        for step in walk:
            if not isinstance(node, dict | list) or not node:
                break
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = keys[step % len(keys)]
            parent, node = node, node[key]
        if parent is None:
            continue
        if what == "replace":
            parent[key] = value
        elif what == "delete":
            del parent[key]
        elif what == "append" and isinstance(node, list):
            node.append(value)
        elif what == "duplicate" and isinstance(node, list) and node:
            node.append(copy.deepcopy(node[len(node) // 2]))
    return data


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_bundle(text: str) -> None:
    """The property: a predictor whose estimate is finite, or a one-line PredictorError; and
    no numpy warning or logged warning on the way (the CLI's stderr holds one line)."""
    from tflat.pricing.bundle_schema import parse_bundle_text, validate_bundle
    from tflat.pricing.compose import estimate_with
    from tflat.pricing.predictors import predictor_from_bundle

    records = _Records()
    logging.getLogger("tflat").addHandler(records)
    try:
        with alarm(ALARM_S), warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                bundle = validate_bundle(parse_bundle_text(text, "fuzz.json"), "fuzz.json")
                est = estimate_with(graph(), predictor_from_bundle(bundle))
            except PredictorError as exc:
                assert str(exc) and "\n" not in str(exc)
                return
    finally:
        logging.getLogger("tflat").removeHandler(records)
        assert [r.getMessage() for r in records.records] == []
    numbers = [est.total_ms, est.total_low_ms, est.total_high_ms, est.overhead_ms]
    numbers += [layer.latency_ms for layer in est.layers]
    assert all(math.isfinite(x) for x in numbers)


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(["gpu", "cpu"]), st.lists(_edit, min_size=1, max_size=4))
def test_edited_bundles_load_or_fail_in_one_line(
    which: str, edits: list[tuple[str, list[int], Any]]
) -> None:
    seed = gpu_seed() if which == "gpu" else cpu_seed()
    check_bundle(json.dumps(edit(copy.deepcopy(seed), edits)))


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(["gpu", "cpu"]), st.lists(_mutation, min_size=1, max_size=4))
def test_byte_mutated_bundle_text_loads_or_fails_in_one_line(
    which: str, mutations: list[tuple[str, int, object]]
) -> None:
    seed = gpu_seed() if which == "gpu" else cpu_seed()
    data = mutate(json.dumps(seed).encode(), mutations)
    check_bundle(data.decode("utf-8", errors="replace"))


def test_unedited_seeds_load_and_estimate() -> None:
    for seed in (gpu_seed(), cpu_seed()):
        check_bundle(json.dumps(seed))


# -- plans ---------------------------------------------------------------------------------

_KINDS = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN", "CONCATENATION",
          "RESHAPE", "PAD", "RESIZE_BILINEAR", "SOFTMAX", "MAX_POOL_2D", "conv_2d",
          "NOPE"]  # fmt: skip
_PARAMS = ["input_h", "input_w", "cin", "cout", "kernel_h", "kernel_w", "kernel", "stride",
           "padding", "groups", "dilation", "activation", "dtype", "cins", "shape", "output_h",
           "output_w", "broadcast", "depth_multiplier", "batch", "pad_top", "bias", "count",
           "method", "per_row", "jitter", "keep", "tables", "models", "kind"]  # fmt: skip
_small = st.one_of(st.integers(-3, 70), st.sampled_from([0, 1, 2**31, 10**9]))
_value = st.one_of(
    _small,
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["same", "valid", "relu", "int8", "float16", "lhs", "uniform", "fc", "conv"]),
    st.text(max_size=6),
    st.lists(_small, max_size=4),
    st.lists(st.lists(_small, max_size=3), max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "min": _small,
            "max": _small,
            "log": st.booleans(),
            "step": _small,
            "same_as": st.sampled_from(_PARAMS),
        },
    ),
)
#: a section: mostly with a kind (else it stops at the first check), any subset of parameters
_section = st.fixed_dictionaries(
    {},
    optional={"kind": st.sampled_from(_KINDS), **{p: _value for p in _PARAMS if p != "kind"}},
)
_plan = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=8),
        "seed": st.one_of(_small, st.text(max_size=3), st.floats()),
        "max_weight_mb": st.one_of(_small, st.floats()),
        "grid": st.lists(_section, max_size=2),
        "random": st.lists(_section, max_size=2),
        "prior": st.lists(_section, max_size=1),
        "specs": st.one_of(st.lists(_section, max_size=2), _value),
        "junk": _value,
    },
)


#: Small plans with every kind of section (the shipped ones take seconds to expand).
SEED_PLANS = {
    "grid": """name = "g"
seed = 3
max_weight_mb = 8
[[grid]]
kind = "CONV_2D"
kernel = [1, 3]
cout = [8, 16]
input_h = [8, 16]
input_w = [8]
cin = [4, 8]
stride = [1, 2]
padding = ["same", "valid"]
[[specs]]
kind = "CONCATENATION"
input_h = 8
input_w = 8
cins = [8, 16]
""",
    "random": """name = "r"
seed = 20240
[[random]]
kind = "DEPTHWISE_CONV_2D"
count = 20
method = "lhs"
input_h = { min = 7, max = 64, log = true }
input_w = { same_as = "input_h" }
cin = { min = 8, max = 256, log = true, step = 8 }
kernel = [3, 5]
stride = [1, 2]
[[random]]
kind = "RESHAPE"
count = 5
method = "uniform"
input_h = { min = 1, max = 14 }
input_w = { same_as = "input_h" }
cin = [8, 16, 32]
""",
    "prior": """name = "p"
seed = 7
[[prior]]
tables = ["fc", "pooling"]
per_row = 1
jitter = 0.25
keep = true
""",
}


def check_plan(data: dict[str, Any]) -> None:
    from tflat.plans import plan_from_dict

    with alarm(ALARM_S):
        try:
            plan_from_dict(data).expand(max_specs=400)
        except SpecError as exc:
            assert str(exc) and "\n" not in str(exc)


_IMAGE = {"input_h": 4, "input_w": 4}


@pytest.mark.slow
@FUZZ
@given(_plan)
# what randomized runs found, kept so the default run checks them every time
@example({"random": [{"kind": "ADD", "cin": {"log": True, "max": 16}, **_IMAGE, "count": 3}]})
@example({"random": [{"kind": "ADD", "cin": {"min": 1, "max": 10**400}, **_IMAGE}]})
@example({"random": [{"kind": "ADD", "cin": [], **_IMAGE, "count": 3}]})
@example({"random": [{"kind": "RESHAPE", "shape": [], "cin": 8, **_IMAGE, "count": 2}]})
@example({"grid": [{"kind": "ADD", "cin": math.inf, **_IMAGE}]})
@example({"specs": [{"kind": "ADD", "cin": math.nan, **_IMAGE}]})
@example({"name": "a\nb", "random": [{"kind": "CONV_2D", "count": 10**12}]})
@example({"specs": [{"kind": "ADD", "cin": 8, **_IMAGE, "bad\nkey": 1}]})
def test_generated_plans_expand_or_fail_in_one_line(data: dict[str, Any]) -> None:
    check_plan(data)


@pytest.mark.slow
@FUZZ
@given(
    name=st.sampled_from(sorted(SEED_PLANS)),
    mutations=st.lists(_mutation, min_size=1, max_size=4),
)
def test_byte_mutated_plan_files_load_or_fail_in_one_line(
    name: str, mutations: list[tuple[str, int, object]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tflat.plans import load_plan

    path = tmp_path_factory.mktemp("plan") / "plan.toml"
    path.write_bytes(mutate(SEED_PLANS[name].encode(), mutations))
    with alarm(ALARM_S):
        try:
            load_plan(path).expand(max_specs=3000)
        except SpecError as exc:
            assert str(exc) and "\n" not in str(exc)
