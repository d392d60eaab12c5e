"""A trained device predictor: per-kernel latencies with intervals, and the whole-model term.

A predictor is a JSON bundle (see :mod:`tflat.predict.train` for how it is made) evaluated with
numpy only. Per kernel: an analytic term (launch cost + FLOPs / throughput + bytes / bandwidth,
fitted per device and kind) times a boosted-tree correction learned on log latency, so shapes
beyond the data still get a physically sensible answer. Per model: the kernel sum is rescaled
and completed with a cost for kernels the op-level data never lists (standalone element-wise,
pad, resize, ...) and a per-inference overhead, all fitted on whole-model measurements.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflat.errors import PredictorError, SpecError
from tflat.gpu.kernel import Kernel
from tflat.gpu.precision import TimeParts, cpu_io_ms, fold_constant_weights, load_precision_facts
from tflat.predict.features import (
    FEATURE_NAMES,
    LISTED_KINDS,
    PROXY_KIND,
    KernelShape,
    analytic_ms,
    analytic_parts,
    feature_matrix,
)
from tflat.predict.ranges import TrainingRange, kernel_aspect
from tflat.predict.shapes import as_pointwise, ops_by_index, output_bytes, shape_from_kernel
from tflat.predict.trees import TreeEnsemble
from tflat.predict.whole import WholeModelTerm, model_features

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "tflat-predictor"
BUNDLE_FORMAT_VERSION = 2
DEFAULT_KERNEL_LOG_INTERVAL = (math.log(0.6), math.log(1.6))
_PAD_TYPES = frozenset({"PAD", "PADV2", "MIRROR_PAD"})
#: kinds whose non-square kernels are priced as their 1x1 equivalent
_DENSE = frozenset({"conv2d", "grouped_conv2d"})


@dataclass(frozen=True)
class KernelTime:
    """Predicted latency of one kernel with its interval (``interval`` of the prediction);
    ``outside`` says why a learned kind's price is extrapolated (empty: inside its training
    range), and the interval is then the wider extrapolation band."""

    latency_ms: float
    low_ms: float
    high_ms: float
    outside: str = ""


@dataclass(frozen=True)
class GraphPrediction:
    """Per-kernel times of a graph; ``total_ms == sum(latency_ms) + overhead_ms``."""

    device: str
    kernels: tuple[Kernel, ...]
    kernel_times: tuple[KernelTime, ...]
    overhead_ms: float
    total_ms: float
    total_low_ms: float
    total_high_ms: float
    interval: float = 0.8
    #: of ``overhead_ms``: the CPU converting int8 graph inputs/outputs at every inference
    cpu_io_ms: float = 0.0

    @classmethod
    def summed(
        cls,
        device: str,
        kernels: Sequence[Kernel],
        times: Sequence[KernelTime],
        overhead_ms: float,
        total_interval: Callable[[float], tuple[float, float]],
        **given: Any,
    ) -> GraphPrediction:
        """The prediction whose total is the kernels' times plus the overhead (so the rows add
        up by construction), bounded by ``total_interval(total_ms)``, the predictor's own way
        of bounding a total; ``given``: the other fields."""
        total = sum(t.latency_ms for t in times) + overhead_ms
        low, high = total_interval(total)
        return cls(
            device=device,
            kernels=tuple(kernels),
            kernel_times=tuple(times),
            overhead_ms=overhead_ms,
            total_ms=total,
            total_low_ms=low,
            total_high_ms=high,
            **given,
        )


@dataclass(frozen=True)
class DeviceCard:
    """What a predictor is for and where it comes from."""

    id: str
    name: str
    soc: str
    gpu: str
    source: str
    trained_at: str
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: the math precision the device's data was measured in (a CPU computes in fp32)
    precision: str = "fp32"


class Predictor:
    """Predictions of one device from a bundle dict (as saved by :func:`fit_device`)."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        if bundle.get("format") != BUNDLE_FORMAT:
            raise PredictorError("not a tflat predictor bundle")
        if int(bundle.get("format_version", 0)) > BUNDLE_FORMAT_VERSION:
            raise PredictorError(
                f"predictor bundle format {bundle.get('format_version')} is newer than this tflat"
            )
        try:
            dev = bundle["device"]
            self.device: str = str(dev["id"])
            facts = load_precision_facts()
            #: the GPU math the data was measured in; a bundle that does not say is taken as
            #: benchmark_model's default (gpu/rules/tflite_gpu_precision.toml)
            self.precision = facts.check(str(bundle.get("precision", facts.default_measured)))
            self.card = DeviceCard(
                id=self.device,
                name=str(dev.get("name", self.device)),
                soc=str(dev.get("soc", "")),
                gpu=str(dev.get("gpu", "")),
                source=str(bundle.get("provenance", {}).get("source", "")),
                trained_at=str(bundle.get("trained_at", "")),
                provenance=dict(bundle.get("provenance", {})),
                precision=self.precision,
            )
            self.gpu_family: str = str(bundle.get("gpu_family", "default"))
            self.rules: str = str(bundle.get("rules", "tflite_gpu"))
            self.kinds: tuple[str, ...] = tuple(bundle["kinds"])
            self.analytic: dict[str, np.ndarray] = {
                k: np.asarray(v, dtype=float) for k, v in bundle["analytic"].items()
            }
            self.trees = TreeEnsemble.from_dict(bundle["trees"])
            names = tuple(bundle.get("features", FEATURE_NAMES))
            # New features are appended, so an older bundle's trees read the columns they know.
            if names != FEATURE_NAMES[: len(names)]:
                raise PredictorError(
                    "predictor bundle was trained on other kernel features; retrain it"
                )
            self.kernel_log_interval: dict[str, tuple[float, float]] = {
                k: (float(v[0]), float(v[1]))
                for k, v in bundle["kernel_interval"]["log_ratio"].items()
            }
            self.interval = float(bundle["kernel_interval"].get("level", 0.8))
            self.whole = WholeModelTerm.from_bundle(bundle["whole_model"])
            self.training_range: TrainingRange | None = (
                TrainingRange.from_dict(bundle["training_range"], FEATURE_NAMES)
                if "training_range" in bundle
                else None
            )
        except (KeyError, TypeError, ValueError, IndexError, SpecError) as exc:
            raise PredictorError(f"predictor bundle is malformed: {exc!r}") from exc
        self.bundle = bundle
        launches = [float(c[0]) for c in self.analytic.values() if len(c)]
        self.min_launch_ms = max(min(launches), 0.0) if launches else 0.0

    # ------------------------------------------------------------ kernels
    def predict_shapes(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        """Raw per-kernel latency (ms) as measured alone, before the whole-model term."""
        return self._predict(shapes)[0]

    def _predict(self, shapes: Sequence[KernelShape]) -> tuple[np.ndarray, np.ndarray]:
        """Raw latencies and the feature rows the trees read (kinds as the trees know them)."""
        if not shapes:
            return np.zeros(0), np.zeros((0, len(FEATURE_NAMES)))
        shapes = [proxy_shape(s, self.kinds) for s in shapes]
        analytic = self.analytic_ms(shapes)
        x = feature_matrix(shapes, self.kinds, analytic)
        return analytic * np.exp(self.trees.predict(x)), x

    def predict_in_range(self, shapes: Sequence[KernelShape]) -> tuple[np.ndarray, list[str]]:
        """Raw latencies, each with why it lies outside the training range ("" inside).

        A kernel that is not square when every trained one was (the USC data's are) is out of
        range. A dense convolution is then priced as the 1x1 convolution that does the same
        work (its input channels times the taps: same FLOPs, weights and serial loop), the
        mapping that priced held-out 3x3 and 7x7 convolutions best from the other sizes
        (``scripts/fit_pricing.py``); a depthwise one keeps its taps (no mapping was
        checked for it)."""
        tr = self.training_range
        notes = [""] * len(shapes)
        priced = list(shapes)
        for i, s in enumerate(shapes):
            kind = proxy_shape(s, self.kinds).kind
            if tr is None or kernel_aspect(s) <= tr.trained_aspect(kind):
                continue
            short = s.taps // max(s.kernel, 1)
            notes[i] = f"a non-square kernel ({short} by {s.kernel}), the trained ones are square"
            if kind in _DENSE:
                priced[i] = as_pointwise(s)
                notes[i] += (
                    f": priced as a 1x1 convolution over {s.taps}x the input channels (same "
                    "FLOPs and weights)"
                )
        raw, x = self._predict(priced)
        if tr is not None:
            for i, s in enumerate(priced):
                why = tr.out_of_range(proxy_shape(s, self.kinds).kind, x[i])
                if why is not None:
                    notes[i] = "; ".join(n for n in (notes[i], why) if n)
        return raw, notes

    def analytic_ms(self, shapes: Sequence[KernelShape]) -> np.ndarray:
        for s in shapes:
            if s.kind not in self.analytic:
                raise PredictorError(f"{self.device}: no model for kernel kind {s.kind}")
        return analytic_ms(self.analytic, shapes)

    def covers(self, kind: str) -> bool:
        return kind in self.kinds or kind in PROXY_KIND or kind in LISTED_KINDS

    # ------------------------------------------------------------ graphs
    def predict_graph(self, graph: Any) -> GraphPrediction:
        """Partition ``graph`` (as the delegate holds it, :meth:`loaded`) with this device's
        delegate rules and predict every kernel, in the precision the data was measured in."""
        from tflat.gpu import partition

        graph = self.loaded(graph)
        kernels = partition(graph, rules=self.rules, gpu_family=self.gpu_family)
        times = self.kernel_times(graph, kernels)
        io_ms = cpu_io_ms(graph, kernels)
        lo, hi = self.whole.log_interval
        return GraphPrediction.summed(
            self.device,
            kernels,
            times,
            self.whole.overhead_ms + io_ms,
            lambda total: (total * math.exp(lo), total * math.exp(hi)),
            interval=self.interval,
            cpu_io_ms=io_ms,
        )

    @staticmethod
    def loaded(graph: Any) -> Any:
        """``graph`` as the GPU delegate holds it once built: weights behind a DEQUANTIZE of a
        constant are constant float weights (:func:`~tflat.gpu.precision.fold_constant_weights`)."""
        return fold_constant_weights(graph)

    def kernel_times(
        self, graph: Any, kernels: Sequence[Kernel], by_index: Mapping[int, Any] | None = None
    ) -> list[KernelTime]:
        """Each kernel's share of a whole inference with its interval, kernel by kernel (a
        kernel's time does not depend on which others are asked with it): listed kinds from
        the regressors and the whole-model term, others at the term's per-kernel rate, free
        kernels 0."""
        by_index = by_index if by_index is not None else ops_by_index(graph)
        listed, shapes = self._listed(graph, kernels, by_index)
        raw_ms, notes = self.predict_in_range(shapes)
        raw = dict(zip((k.index for k in listed), raw_ms, strict=True))
        outside = dict(zip((k.index for k in listed), notes, strict=True))
        weight_mb = {k.index: s.weight_bytes / 1e6 for k, s in zip(listed, shapes, strict=True)}
        wm = self.whole
        times: list[KernelTime] = []
        for k in kernels:
            if k.kind == "free":
                times.append(KernelTime(0.0, 0.0, 0.0))
            elif k.index in raw:
                lo, hi = self.kernel_log_interval.get(
                    PROXY_KIND.get(k.kind, k.kind), DEFAULT_KERNEL_LOG_INTERVAL
                )
                # a kind's held-out residuals may all lean one way: the interval still holds
                # the prediction (a Price requires low <= ms <= high)
                lo, hi = min(lo, 0.0), max(hi, 0.0)
                ms = wm.listed_kernel_ms(
                    PROXY_KIND.get(k.kind, k.kind), raw[k.index], weight_mb[k.index]
                )
                if any(by_index[i].type in _PAD_TYPES for i in k.op_indices[1:]):
                    ms += wm.merged_pad_ms
                low, high = ms * math.exp(lo), ms * math.exp(hi)
                note = outside[k.index]
                if note and self.training_range is not None:
                    low, high = self.training_range.widen(ms, low, high)
                times.append(KernelTime(ms, low, high, note))
            else:
                ms = max(self._unlisted_ms(graph, k, by_index), self.min_launch_ms)
                lo, hi = DEFAULT_KERNEL_LOG_INTERVAL
                times.append(KernelTime(ms, ms * math.exp(lo), ms * math.exp(hi)))
        return times

    def time_parts(
        self, graph: Any, kernels: Sequence[Kernel], by_index: Mapping[int, Any] | None = None
    ) -> dict[int, TimeParts]:
        """Where each non-free kernel's time goes (launch, arithmetic, bytes, serial steps),
        by kernel index: listed kinds as this device's analytic term splits them, others a
        launch plus the bytes they write (all launch where floored at the cheapest launch)."""
        by_index = by_index if by_index is not None else ops_by_index(graph)
        listed, shapes = self._listed(graph, kernels, by_index)
        cols = analytic_parts(self.analytic, [proxy_shape(s, self.kinds) for s in shapes])
        parts = {
            k.index: TimeParts(*(float(x) for x in row))
            for k, row in zip(listed, cols, strict=True)
        }
        launch = self.whole.unlisted_kernel_ms(0.0)
        for k in kernels:
            if k.kind == "free" or k.index in parts:
                continue
            fitted = self._unlisted_ms(graph, k, by_index)
            if fitted >= self.min_launch_ms:
                parts[k.index] = TimeParts(launch=launch, memory=fitted - launch)
            else:
                parts[k.index] = TimeParts(launch=self.min_launch_ms)
        return parts

    def _listed(
        self, graph: Any, kernels: Sequence[Kernel], by_index: Mapping[int, Any]
    ) -> tuple[list[Kernel], list[KernelShape]]:
        """The kernels a regressor prices (its own kind's or a proxy's), with their shapes."""
        listed = [k for k in kernels if k.kind != "free" and self.covers(k.kind)]
        shapes = [
            shape_from_kernel(graph, k.op_indices, k.kind, k.name, by_index, self.gpu_family)
            for k in listed
        ]
        return listed, shapes

    def _unlisted_ms(self, graph: Any, kernel: Kernel, by_index: Mapping[int, Any]) -> float:
        """What the whole-model term says a kernel the op-level data never lists costs (a
        launch plus the MB it writes). The caller floors it at the cheapest kernel launch: the
        fit may give its count no weight (the per-inference overhead absorbs it), a launch is
        never free."""
        mb = output_bytes(graph, kernel.main_op, by_index) / 1e6
        return self.whole.unlisted_kernel_ms(mb)

    def total_from_parts(
        self,
        listed_raw_ms: Sequence[float] | np.ndarray,
        unlisted_count: int,
        unlisted_mb: float,
        kinds: Sequence[str] | None = None,
        merged_pads: int = 0,
        weight_mb: Sequence[float] | None = None,
    ) -> float:
        """The whole-model estimate from raw listed-kernel times (of ``kinds``; all "main"
        kernels when not given; their weights in MB) and the unlisted kernels."""
        kinds = list(kinds) if kinds is not None else ["conv2d"] * len(listed_raw_ms)
        feats = model_features(
            kinds, listed_raw_ms, unlisted_count, unlisted_mb, merged_pads, weight_mb
        )
        return self.whole.total(feats)


def proxy_shape(shape: KernelShape, kinds: Sequence[str]) -> KernelShape:
    """The shape as a kind the predictor has a model for (a kind absent from training is priced
    as the closest one it has: a plain convolution, else the first kind)."""
    if shape.kind in kinds:
        return shape
    kind = PROXY_KIND.get(shape.kind, "conv2d")
    if kind not in kinds:
        kind = kinds[0]
    from dataclasses import replace

    return replace(shape, kind=kind)


__all__ = [
    "BUNDLE_FORMAT",
    "LISTED_KINDS",
    "DeviceCard",
    "GraphPrediction",
    "KernelTime",
    "Predictor",
    "WholeModelTerm",
]
