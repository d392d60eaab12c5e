"""Predictor bundles as untrusted data: what a bundle must be before tflat reads it.

A bundle is data a user may download or be sent, or find in a shared database, so every one
that does not ship with tflat is checked here first: its size (before parsing), JSON without
NaN or infinity, then a schema (pydantic v2, strict: no "1" for 1, no unknown keys) with types,
ranges, names from known lists (kernel kinds, feature names, op types, rules, GPU families),
array lengths that agree with each other, and trees that are trees (every child after its
parent and inside its tree, one parent each, no deeper than ``max_depth`` nor
:data:`MAX_TREE_DEPTH`). Free-form sections (``provenance``; ``pricing`` and
``training_range``, which their readers check; training notes) are bounded in size and depth.
The first problem becomes one :class:`~tflat.errors.PredictorError` line naming the file and
the place in it.

Why pydantic rather than jsonschema: its Rust core checks a shipped-size bundle (11,600 tree
nodes) in about 10 ms, pydantic imports in about 0.1 s after numpy (jsonschema, pure Python:
0.26 s here), and the cross-field checks are validators beside the fields they read. Importing
it and building these models adds about 0.2 s to a fresh process (``estimate -d FILE.json``
620 ms against ``-d pixel4`` 426 ms, min of 15: benchmarks/results/hostile_inputs.md), so this
module is imported only when a bundle from outside is read: bundles shipped with tflat are
part of the package and are not checked at every load (a test checks them).
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from tflat.cpu import features as cpu
from tflat.cpu.regressor import ANY_MODEL, POOLED_PREFIX
from tflat.errors import PredictorError
from tflat.gpu.kernel import KINDS
from tflat.predict.features import ANALYTIC_COLUMNS, FEATURE_NAMES
from tflat.predict.predictor import BUNDLE_FORMAT_VERSION
from tflat.predict.trees import check_tree_arrays

#: A bundle file larger than this is refused before it is read (shipped ones are ~0.5 MB).
MAX_BUNDLE_BYTES = 50_000_000
#: Trees deeper than this are refused (LightGBM's with 15-31 leaves reach 10-15).
MAX_TREE_DEPTH = 64
#: Most nodes, and most training rows of a CPU regressor, a bundle may hold.
MAX_NODES = 2_000_000
#: Bounds of a free-form section (provenance, pricing, notes): JSON size and nesting.
MAX_FREEFORM_BYTES = 1_000_000
MAX_FREEFORM_DEPTH = 16
#: Largest sum over trees of a tree's largest |leaf| (a log ratio): its exp stays finite.
#: The shipped bundles have 2-4.
MAX_TREE_LOG_SUM = 100.0
#: Largest coefficient (ms per unit of work, overhead ms) a bundle may hold.
MAX_COEF = 1e6
#: Largest |log ratio| of an interval bound, or of a CPU regressor's correction.
MAX_LOG_RATIO = 50.0


# -- reading -------------------------------------------------------------------------------


def read_bundle_file(path: Path) -> Any:
    """A bundle file's JSON data: its size checked before it is read, then parsed."""
    where = str(path)
    try:
        if not path.is_file():
            raise PredictorError(f"{where}: no such bundle file")
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise PredictorError(_too_big(where, path.stat().st_size))
        with path.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)  # it may have grown since stat
    except OSError as exc:
        raise PredictorError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise PredictorError(_too_big(where, len(data)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PredictorError(f"{where}: not a predictor bundle (not UTF-8 text)") from None
    return parse_bundle_text(text, where)


def parse_bundle_text(text: str, where: str) -> Any:
    """JSON text -> Python data, refusing NaN and Infinity (Python's json reads them; a number
    too large for a float, which reads as infinity, is refused by the schema)."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    if len(text) > MAX_BUNDLE_BYTES:
        raise PredictorError(_too_big(where, len(text)))
    try:
        return json.loads(text, parse_constant=no_constant)
    except RecursionError:
        raise PredictorError(f"{where}: not a predictor bundle (JSON nested too deep)") from None
    except ValueError as exc:  # JSONDecodeError, NaN, an integer of 5000 digits
        raise PredictorError(f"{where}: not valid JSON ({_one_line(exc)})") from None


def validate_bundle(bundle: Any, where: str) -> dict[str, Any]:
    """``bundle`` if it is a valid GPU (``tflat-predictor``) or CPU (``tflat-cpu-v1``) bundle,
    else :class:`PredictorError` naming ``where`` and the first problem."""
    if not isinstance(bundle, dict):
        raise PredictorError(f"{where}: not a predictor bundle (not a JSON object)")
    fmt = bundle.get("format")
    formats: dict[str, type[BaseModel]] = {"tflat-predictor": GpuBundle, "tflat-cpu-v1": CpuBundle}
    model = formats.get(fmt) if isinstance(fmt, str) else None
    if model is None:
        raise PredictorError(f"{where}: not a tflat predictor bundle (format {_short(repr(fmt))})")
    try:
        model.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        place = f"{_path(first['loc'])}: " if first["loc"] else ""
        raise PredictorError(f"{where}: {place}{_one_line(message)}") from None
    if fmt == "tflat-predictor":
        _check_sections(bundle, where)
    return bundle


def _check_sections(bundle: dict[str, Any], where: str) -> None:
    """The sections the schema leaves to their readers (``pricing``, ``training_range``), read
    as an estimate reads them, so a bad figure names the file too."""
    from tflat.predict.ranges import TrainingRange
    from tflat.pricing.registry import section_pricers

    try:
        section_pricers(bundle.get("pricing") or {})
        if bundle.get("training_range"):
            TrainingRange.from_dict(bundle["training_range"], FEATURE_NAMES)
    except PredictorError as exc:
        raise PredictorError(f"{where}: {_one_line(str(exc))}") from None


def _too_big(where: str, size: int) -> str:
    return f"{where}: {size} bytes, over the {MAX_BUNDLE_BYTES // 1_000_000} MB a bundle may have"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's mark of a dict key: the key itself is the place
            continue
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + _short(str(part))
    return out


def _short(text: str, limit: int = 60) -> str:
    text = text.encode("unicode_escape").decode("ascii")  # control characters stay visible
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(exc: object) -> str:
    text = str(exc).strip()
    return _short(text.splitlines()[0] if text else type(exc).__name__, 200)


# -- known names and checks ----------------------------------------------------------------


@cache
def _rule_names() -> frozenset[str]:
    """The GPU delegate's rule sets shipped in ``tflat/gpu/rules``, and XNNPACK's."""
    from importlib import resources

    from tflat.cpu.delegates import XNNPACK

    folder = resources.files("tflat.gpu").joinpath("rules")
    gpu = {p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")}
    return frozenset({XNNPACK, *gpu})


@cache
def _gpu_families() -> frozenset[str]:
    from tflat.gpu.kernel import read_rules

    return frozenset({"default", *read_rules("tflite_gpu").get("gpu", {})})


@cache
def _op_types() -> frozenset[str]:
    from tflat.model.schema import builtin_codes

    return frozenset(builtin_codes())


def _printable(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("text must not hold control characters")
    return value


def _kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError(f"unknown kernel kind {_short(value, 40)!r}")
    return value


def _rules(value: str) -> str:
    if value not in _rule_names():
        raise ValueError(f"unknown rules {_short(value, 40)!r} (known: {sorted(_rule_names())})")
    return value


def _gpu_family(value: str) -> str:
    if value.split(":", 1)[0] not in _gpu_families() or not re.fullmatch(r"[a-z0-9_:]+", value):
        raise ValueError(f"unknown GPU family {_short(value, 40)!r}")
    return value


def _precision(value: str) -> str:
    """A GPU math precision the delegate has (``gpu/rules/tflite_gpu_precision.toml``)."""
    from tflat.gpu.precision import load_precision_facts

    known = load_precision_facts().precisions
    if value not in known:
        raise ValueError(f"precision {_short(value, 20)!r} is not one of {', '.join(known)}")
    return value


def _cpu_model_key(value: str) -> str:
    """An op type (``CONV_2D``, ``CUSTOM:name``) or a pooled ``kind:<kind>`` / ``kind:any``."""
    if value.startswith(POOLED_PREFIX):
        if value != ANY_MODEL:
            _kind(value[len(POOLED_PREFIX) :])
        return value
    if re.fullmatch(r"CUSTOM:[A-Za-z0-9_.\-]{1,100}|BUILTIN_\d{1,6}", value):
        return value
    if value not in _op_types():
        raise ValueError(f"unknown op type {_short(value, 40)!r}")
    return value


def _freeform(value: Any) -> Any:
    """A JSON value of bounded depth and size with finite numbers (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_FREEFORM_DEPTH:
            raise ValueError(f"nested deeper than {MAX_FREEFORM_DEPTH} levels")
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ValueError("object keys must be text")
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite")
        elif not (item is None or isinstance(item, str | int | float | bool)):
            raise ValueError(f"a {type(item).__name__} is not JSON")
    size = len(json.dumps(value, allow_nan=False))
    if size > MAX_FREEFORM_BYTES:
        raise ValueError(f"{size} bytes of JSON, over the {MAX_FREEFORM_BYTES} allowed")
    return value


def _pricing(value: dict[str, Any]) -> dict[str, Any]:
    """Sections named as the pricer modules they load (``tflat.pricing.<name>``), each an
    object; what a section holds is its pricer's to check."""
    for name, section in value.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
            raise ValueError(f"section name {_short(name, 40)!r} is not a pricer module name")
        if not isinstance(section, dict):
            raise ValueError(f"section {name} is not an object")
    return value


Text = Annotated[str, Field(max_length=200), AfterValidator(_printable)]
KindName = Annotated[str, AfterValidator(_kind)]
Finite = float  # the models' config refuses NaN and infinity everywhere
Coef = Annotated[float, Field(ge=0.0, le=MAX_COEF)]
LogRatio = Annotated[float, Field(ge=-MAX_LOG_RATIO, le=MAX_LOG_RATIO)]
Interval = Annotated[list[LogRatio], Field(min_length=2, max_length=2)]
FreeDict = Annotated[dict[str, Any], AfterValidator(_freeform)]
PricingDict = Annotated[dict[str, Any], AfterValidator(_freeform), AfterValidator(_pricing)]
Index = Annotated[int, Field(ge=0, le=MAX_NODES)]


def _ordered(pair: list[float], what: str) -> None:
    """An interval as log ratios to the prediction: low <= high (a trained one need not hold
    0: held-out residuals of a biased kind all lean one way; the predictor widens it to)."""
    if pair[0] > pair[1]:
        raise ValueError(f"{what}: low {pair[0]:g} above high {pair[1]:g}")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


# -- the GPU bundle (tflat-predictor) ------------------------------------------------------


class Device(_Strict):
    model_config = ConfigDict(extra="allow")  # other facts of the device, as text
    __pydantic_extra__: dict[str, Text] = Field(init=False)

    id: Annotated[Text, Field(min_length=1)]
    name: Text = ""
    soc: Text = ""
    gpu: Text = ""


class Trees(_Strict):
    roots: Annotated[list[Index], Field(max_length=MAX_NODES)]
    feature: Annotated[
        list[Annotated[int, Field(ge=-1, lt=len(FEATURE_NAMES))]], Field(max_length=MAX_NODES)
    ]
    threshold: Annotated[list[Finite], Field(max_length=MAX_NODES)]
    left: Annotated[list[Index], Field(max_length=MAX_NODES)]
    right: Annotated[list[Index], Field(max_length=MAX_NODES)]
    value: Annotated[list[Finite], Field(max_length=MAX_NODES)]
    max_depth: Annotated[int, Field(ge=0, le=MAX_TREE_DEPTH)]

    @model_validator(mode="after")
    def _shape(self) -> Self:
        n = len(self.feature)
        for name in ("threshold", "left", "right", "value"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} nodes, feature {n}")
        check_tree_arrays(self.roots, self.feature, self.left, self.right, self.max_depth)
        if self.roots:
            value = np.abs(np.asarray(self.value))
            largest = np.maximum.reduceat(value, np.asarray(self.roots)).sum()
            if largest > MAX_TREE_LOG_SUM:
                raise ValueError(f"leaf values add up to {largest:.3g}, over {MAX_TREE_LOG_SUM:g}")
        return self


class KernelInterval(_Strict):
    level: Annotated[float, Field(gt=0.0, lt=1.0)]
    log_ratio: dict[KindName, Interval]

    @model_validator(mode="after")
    def _order(self) -> Self:
        for kind, pair in self.log_ratio.items():
            _ordered(pair, kind)
        return self


_WHOLE_COEFS = (
    "listed_kernel_sum_ms", "listed_kernels", "unlisted_ops", "unlisted_mb", "merged_pads",
    "listed_weight_mb", "listed_floor_ms", "one", "main_kernel_sum_ms", "main_kernels",
    "vector_kernel_sum_ms", "vector_kernels", "concat_kernel_sum_ms", "concat_kernels",
)  # fmt: skip
_FORMAT1_KEYS = ("listed_scale", "listed_ms_per_kernel", "unlisted_ms_per_kernel",
                 "unlisted_ms_per_mb", "overhead_ms")  # fmt: skip


def _whole_coef(value: str) -> str:
    if value not in _WHOLE_COEFS:
        raise ValueError(f"unknown whole-model term {_short(value, 40)!r}")
    return value


CoefName = Annotated[str, AfterValidator(_whole_coef)]


class WholeModel(_Strict):
    log_interval: Interval
    coef: dict[CoefName, Coef] | None = None
    design: Text = "custom"
    features: list[CoefName] = []
    fitted_on: Text = ""
    selection: Literal["held-out", "in-sample"] = "held-out"
    defined_on: Annotated[str, Field(max_length=2000), AfterValidator(_printable)] = ""
    selection_mape_pct: dict[Text, Finite] = {}
    # format 1: the "base" design under named keys
    listed_scale: Coef | None = None
    listed_ms_per_kernel: Coef | None = None
    unlisted_ms_per_kernel: Coef | None = None
    unlisted_ms_per_mb: Coef | None = None
    overhead_ms: Coef | None = None

    @model_validator(mode="after")
    def _terms(self) -> Self:
        _ordered(self.log_interval, "log_interval")
        if self.coef is None and any(getattr(self, k) is None for k in _FORMAT1_KEYS):
            raise ValueError("needs coef (or all of " + ", ".join(_FORMAT1_KEYS) + ")")
        return self


class GpuBundle(_Strict):
    format: Literal["tflat-predictor"]
    format_version: Annotated[int, Field(ge=1, le=BUNDLE_FORMAT_VERSION)]
    device: Device
    gpu_family: Annotated[str, Field(max_length=60), AfterValidator(_gpu_family)] = "default"
    rules: Annotated[str, AfterValidator(_rules)] = "tflite_gpu"
    #: the GPU math the data was measured in (absent: the delegate's default)
    precision: Annotated[str, AfterValidator(_precision)] | None = None
    tflat_version: Text = ""
    trained_at: Text = ""
    provenance: FreeDict = {}
    pricing: PricingDict | None = None
    #: the trained range of each kind and the band outside it (TrainingRange checks it)
    training_range: FreeDict = {}
    features: list[Annotated[str, Field(max_length=60)]] = list(FEATURE_NAMES)
    kinds: Annotated[list[KindName], Field(min_length=1, max_length=len(KINDS))]
    analytic: dict[KindName, Annotated[list[Coef], Field(max_length=len(ANALYTIC_COLUMNS))]]
    analytic_columns: list[Annotated[str, Field(max_length=60)]] | None = None
    trees: Trees
    kernel_interval: KernelInterval
    whole_model: WholeModel
    gbdt_params: FreeDict = {}
    gbdt_selection: FreeDict = {}
    training_rows: FreeDict = {}
    metrics: FreeDict = {}

    @model_validator(mode="after")
    def _agree(self) -> Self:
        if tuple(self.features) != FEATURE_NAMES[: len(self.features)] or not self.features:
            raise ValueError("features: not the kernel features this tflat computes")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds: a kind is listed twice")
        missing = [k for k in self.kinds if k not in self.analytic]
        if missing:
            raise ValueError(f"analytic: no coefficients for kind {missing[0]}")
        columns = self.analytic_columns
        if columns is not None and tuple(columns) != ANALYTIC_COLUMNS[: len(columns)]:
            raise ValueError("analytic_columns: not the analytic terms this tflat computes")
        width = len(columns) if columns is not None else None
        for kind, coefs in self.analytic.items():
            if not coefs or (width is not None and len(coefs) != width):
                raise ValueError(f"analytic.{kind}: {len(coefs)} coefficients for {width} columns")
        if self.trees.feature and max(self.trees.feature) >= len(self.features):
            top = max(self.trees.feature)
            raise ValueError(f"trees: a split reads feature {top} of {len(self.features)}")
        return self


# -- the CPU bundle (tflat-cpu-v1) ---------------------------------------------------------

_CPU_WIDTH = len(cpu.FEATURE_NAMES)
#: A CPU regressor's stored features are log2(1 + value): a few tens for any real kernel.
LogFeature = Annotated[float, Field(ge=-1e3, le=1e3)]
Row = Annotated[list[LogFeature], Field(min_length=_CPU_WIDTH, max_length=_CPU_WIDTH)]
CpuKey = Annotated[str, Field(max_length=120), AfterValidator(_cpu_model_key)]


class CpuModel(_Strict):
    k: Annotated[int, Field(ge=1, le=1000)]
    coef: Annotated[
        list[Coef], Field(min_length=len(cpu.WORK_TERMS), max_length=len(cpu.WORK_TERMS))
    ]
    x: Annotated[list[Row], Field(min_length=1, max_length=MAX_NODES // _CPU_WIDTH)]
    mu: Row
    sd: Annotated[
        list[Annotated[float, Field(ge=1e-9, le=1e3)]],
        Field(min_length=_CPU_WIDTH, max_length=_CPU_WIDTH),
    ]
    log_ratio: list[LogRatio]

    @model_validator(mode="after")
    def _rows(self) -> Self:
        if len(self.log_ratio) != len(self.x):
            raise ValueError(f"log_ratio has {len(self.log_ratio)} rows, x {len(self.x)}")
        return self


class CpuWhole(_Strict):
    scale: Coef = 1.0
    cache_scale: Coef = 0.0
    per_kernel_ms: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    int8_scale: Coef = 1.0
    fitted_on: Annotated[int, Field(ge=0, le=10**9)] = 0


def _spread(value: list[float]) -> list[float]:
    if not 0 < value[0] <= value[1] <= 1e3:
        raise ValueError("a spread is 0 < low <= high <= 1000")
    return value


class CpuBundle(_Strict):
    format: Literal["tflat-cpu-v1"]
    device: Annotated[Text, Field(min_length=1)]
    rules: Annotated[str, AfterValidator(_rules)] = "xnnpack"
    features: list[str]
    invoke_overhead_ms: Coef
    fallback_overhead_ms: Coef = 0.0
    whole_model: CpuWhole = CpuWhole()
    spread: dict[
        CpuKey, Annotated[list[Finite], Field(min_length=2, max_length=2), AfterValidator(_spread)]
    ]
    models: Annotated[dict[CpuKey, CpuModel], Field(min_length=1)]
    provenance: FreeDict = {}
    pricing: PricingDict | None = None

    @model_validator(mode="after")
    def _agree(self) -> Self:
        if tuple(self.features) != cpu.FEATURE_NAMES:
            raise ValueError("features: not the CPU kernel features this tflat computes")
        rows = sum(len(m.x) for m in self.models.values())
        if rows > MAX_NODES // _CPU_WIDTH:
            raise ValueError(
                f"models hold {rows} training rows in all, over {MAX_NODES // _CPU_WIDTH}"
            )
        return self
