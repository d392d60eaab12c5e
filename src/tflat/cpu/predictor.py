"""Latency of XNNPACK kernels on a CPU: features, the per-op-type regressor, the whole-model sum.

Why a CPU-specific predictor: on the CPU a kernel's time follows its work (FLOPs, bytes moved)
with an efficiency that depends on shapes (GEMM tiles, channel counts, cache), and a whole model
costs one fixed invoke overhead, not one per layer. Single-op benchmarks include that overhead
once each, so calibration subtracts it (``invoke_overhead_ms``, measured on a near-empty model)
before training; the whole-model estimate adds it back once.

The regressor per op type is a non-negative linear model on work terms (a fit that extrapolates
sanely) times a distance-weighted nearest-neighbour correction in log space (which learns the
shape-dependent efficiency). It is plain numbers, so a bundle is JSON: no pickle, no library
version lock-in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tflat.errors import PredictorError

if TYPE_CHECKING:
    import numpy as np

    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Graph, Op
    from tflat.predict.predictor import DeviceCard, GraphPrediction

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "tflat-cpu-v1"

#: Features of one kernel, all >= 0. Shape fields are 0 where the op has no such notion.
FEATURE_NAMES = (
    "flops",
    "in_bytes",
    "out_bytes",
    "weight_bytes",
    "h",
    "w",
    "cin",
    "cout",
    "kernel",
    "stride",
    "groups",
    "fused",
    "cout_waste",
    "cin_waste",
)
#: Inputs of the linear part, in order (see :func:`work_terms`): the work features, two
#: derived terms and a constant.
WORK_TERMS = ("flops", "in_bytes", "out_bytes", "weight_bytes", "spill_bytes", "pixels", "one")
#: Bytes an op can keep in the last-level cache between runs. Why half of the L3 (32 MiB on
#: this machine's EPYC, shared with the neighbours of a cloud VM): single-op FULLY_CONNECTED
#: runs stream their weights at 33-41 GB/s up to 12 MB and at 16-25 GB/s from 16 MB on
#: (fresh 20-minute calibration database, min of 30 runs); a batch-1 FC past it is bound by
#: DRAM bandwidth, a price per byte the in-cache terms cannot give it.
SPILL_THRESHOLD_BYTES = 16 * 2**20
#: Op types that XNNPACK runs with the same operator (so they share a regressor).
_SAME_AS = {
    "CUSTOM:Convolution2DTransposeBias": "TRANSPOSE_CONV",
    "RELU_N1_TO_1": "RELU",
    "RELU_0_TO_1": "RELU",
    "SUB": "ADD",
    "DIV": "MUL",
    "MAXIMUM": "ADD",
    "MINIMUM": "ADD",
    "SQUARED_DIFFERENCE": "MUL",
    "PRELU": "MUL",
    "LEAKY_RELU": "MUL",
    "SUM": "MEAN",
}
#: Element-wise ops with two operands: a constant operand counts as input, not as weights.
_BINARY = frozenset(
    {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "PRELU", "POW"}
)
#: The fallback when an op type has no regressor: the pooled regressor of its kernel kind.
POOLED_PREFIX = "kind:"
ANY_MODEL = "kind:any"
_K = 6
_EPS_MS = 1e-4
_FLOOR_MS = 0.003


def model_key(op_type: str) -> str:
    return _SAME_AS.get(op_type, op_type)


def op_features(op: Op, static: set[int], fused: int = 0) -> dict[str, float]:
    """The features of ``op`` as the main op of a kernel with ``fused`` ops folded into it."""
    if op.type in _BINARY:  # a constant operand is read like a runtime one (the benchmarks' way)
        data, weights = list(op.inputs), []
    else:
        data = [t for t in op.inputs if t.index not in static]
        weights = [t for t in op.inputs if t.index in static]
    first = data[0] if data else (op.inputs[0] if op.inputs else None)
    out = op.outputs[0] if op.outputs else None
    shape = first.shape if first is not None else ()
    h = w = cin = 0
    if len(shape) == 4:
        h, w, cin = shape[1], shape[2], shape[3]
    elif shape:
        cin = shape[-1]
        h = math.prod(max(d, 1) for d in shape[:-1])
        w = 1
    cout = out.shape[-1] if out is not None and out.shape else 0
    flops = op.flops
    if flops == 0 and out is not None:  # data movement: count what it touches
        flops = out.numel
    return {
        "flops": float(flops),
        "in_bytes": float(sum(t.nbytes for t in data)),
        "out_bytes": float(sum(t.nbytes for t in op.outputs)),
        "weight_bytes": float(sum(t.numel * 4 for t in weights)),
        "h": float(max(h, 0)),
        "w": float(max(w, 0)),
        "cin": float(max(cin, 0)),
        "cout": float(max(cout, 0)),
        "kernel": float(op.kernel[0] * op.kernel[1]) if op.kernel else 0.0,
        "stride": _stride(op, h),
        "groups": float(op.groups),
        "fused": float(fused),
        # SIMD tiles: channels are padded to a multiple of 16 (x86) or 8 (Arm) lanes
        "cout_waste": float(math.ceil(cout / 16) * 16 / cout) if cout > 0 else 1.0,
        "cin_waste": float(math.ceil(cin / 16) * 16 / cin) if cin > 0 else 1.0,
    }


def _stride(op: Op, h: int) -> float:
    if op.type == "CUSTOM:Convolution2DTransposeBias":  # options are opaque: read the shapes
        out_h = op.outputs[0].shape[1] if op.outputs and len(op.outputs[0].shape) == 4 else h
        return float(max(out_h // max(h, 1), 1))
    return float(op.stride[0]) if op.stride else 0.0


def kernel_rows(graph: Graph, kernels: Sequence[Kernel]) -> list[tuple[str, dict[str, float]]]:
    """(op type, features) of each kernel's main op, in kernel order."""
    from tflat.cpu.xnnpack import static_tensors

    static = static_tensors(graph)
    by_index = {op.index: op for op in graph.ops}
    rows = []
    for k in kernels:
        op = by_index[k.main_op]
        rows.append((op.type, op_features(op, static, fused=len(k.op_indices) - 1)))
    return rows


def work_terms(features: Mapping[str, float]) -> list[float]:
    """The linear part's inputs, named by :data:`WORK_TERMS`: the work features, the bytes
    past the last-level cache's share (:data:`SPILL_THRESHOLD_BYTES`), the pixels and a
    constant.

    Why pixels: XNNPACK's kernels loop over pixels with the channels inside, so a thin tensor
    pays a per-pixel cost its bytes do not show (a 1-channel PAD of 172 x 273 takes 0.76 ms,
    about 15 ns a pixel; bytes alone predicted 0.14 ms).
    """
    touched = features["in_bytes"] + features["out_bytes"] + features["weight_bytes"]
    spill = max(touched - SPILL_THRESHOLD_BYTES, 0.0)
    pixels = features["h"] * max(features["w"], 1.0)
    return [*(float(features[n]) for n in WORK_TERMS[:4]), spill, pixels, 1.0]


def _vector(features: Mapping[str, float]) -> list[float]:
    return [math.log2(1.0 + float(features.get(name, 0.0))) for name in FEATURE_NAMES]


class CpuLatencyModel:
    """Latency (ms, invoke overhead excluded) of one op type: NNLS work model x kNN correction.

    ``fit(features, latency_ms)`` returns self; learned state ends in ``_``.
    """

    def __init__(self, *, k: int = _K) -> None:
        self.k = k

    def fit(
        self, features: Sequence[Mapping[str, float]], latency_ms: Sequence[float]
    ) -> CpuLatencyModel:
        import numpy as np
        from scipy.optimize import nnls

        if not features:
            raise PredictorError("cannot fit a CPU latency model on no rows")
        y = np.maximum(np.asarray(latency_ms, dtype=float), _EPS_MS)
        work = np.array([work_terms(f) for f in features], dtype=float)
        scale = np.maximum(work.max(axis=0), 1e-12)
        # Relative least squares (each row divided by its latency), except that ops below a few
        # microseconds, mostly timer noise once the invoke overhead is gone, weigh as that floor.
        w = 1.0 / np.maximum(y, _FLOOR_MS)
        coef, _ = nnls((work / scale) * w[:, None], y * w)
        self.coef_ = [float(c) for c in coef / scale]
        base = np.maximum(work @ np.asarray(self.coef_), _EPS_MS)
        self.x_ = [_vector(f) for f in features]
        x = np.asarray(self.x_)
        self.mu_ = [float(v) for v in x.mean(axis=0)]
        self.sd_ = [float(v) if v > 1e-9 else 1.0 for v in x.std(axis=0)]
        self.log_ratio_ = [float(v) for v in np.log(y / base)]
        return self

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise PredictorError("CPU latency model used before fit")

    def predict(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        import numpy as np

        self._check()
        if not features:
            return np.zeros(0)
        work = np.array([work_terms(f) for f in features], dtype=float)
        base = np.maximum(work @ np.asarray(self.coef_), _EPS_MS)
        mu, sd = np.asarray(self.mu_), np.asarray(self.sd_)
        train = (np.asarray(self.x_) - mu) / sd
        query = (np.asarray([_vector(f) for f in features]) - mu) / sd
        ratios = np.asarray(self.log_ratio_)
        k = min(self.k, len(ratios))
        d = np.sqrt(((query[:, None, :] - train[None, :, :]) ** 2).sum(axis=2))
        nearest = np.argsort(d, axis=1)[:, :k]
        dn = np.take_along_axis(d, nearest, axis=1)
        wts = 1.0 / (dn + 0.05)
        corr = (wts * ratios[nearest]).sum(axis=1) / wts.sum(axis=1)
        return np.asarray(base * np.exp(corr))

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {
            "k": self.k,
            "coef": self.coef_,
            "x": [[round(v, 6) for v in row] for row in self.x_],
            "mu": self.mu_,
            "sd": self.sd_,
            "log_ratio": [round(v, 6) for v in self.log_ratio_],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CpuLatencyModel:
        model = cls(k=int(data["k"]))
        model.coef_ = [float(v) for v in data["coef"]]
        if len(model.coef_) != len(WORK_TERMS):
            raise PredictorError(
                "CPU latency model has other work terms (an older tflat): run tflat calibrate again"
            )
        model.x_ = [[float(v) for v in row] for row in data["x"]]
        model.mu_ = [float(v) for v in data["mu"]]
        model.sd_ = [float(v) for v in data["sd"]]
        model.log_ratio_ = [float(v) for v in data["log_ratio"]]
        return model


@dataclass(frozen=True)
class TrainingRow:
    """One measured single-op model: its main kernel's op type, kind and features."""

    op_type: str
    kind: str
    features: Mapping[str, float]
    latency_ms: float  # invoke overhead already subtracted
    spec_hash: str = ""


def fit_models(rows: Sequence[TrainingRow], *, min_rows: int = 4) -> dict[str, CpuLatencyModel]:
    """One model per op type with enough rows, one pooled per kind, and one over everything."""
    groups: dict[str, list[TrainingRow]] = {}
    for r in rows:
        groups.setdefault(model_key(r.op_type), []).append(r)
        if r.kind not in ("free",):
            groups.setdefault(POOLED_PREFIX + r.kind, []).append(r)
    if rows:
        groups[ANY_MODEL] = [r for r in rows if r.kind != "free"]
    models = {}
    for key, members in groups.items():
        if len(members) < min_rows:
            continue
        models[key] = CpuLatencyModel().fit(
            [m.features for m in members], [m.latency_ms for m in members]
        )
    return models


@dataclass(frozen=True)
class WholeModelTerm:
    """How kernels compose into a whole model, fitted on measured whole networks.

    kernel time in a model = ``scale * base + cache_scale * base * pressure + per_kernel_ms``
    where ``pressure = log2(1 + working set / 256 KiB)``: a one-op benchmark reruns on warm
    caches, inside a network big tensors are evicted between layers. A quantized (int8)
    kernel takes ``int8_scale * base`` instead: its base comes from float single-op models,
    and int8 kernels run faster. ``per_kernel_ms`` is signed (inside one delegate subgraph a
    float kernel skips per-op costs its one-op model paid) and for float kernels only, so
    float and int8 networks are fitted by separate terms; a kernel never drops below
    :data:`MIN_KERNEL_SHARE` of its base.
    """

    scale: float = 1.0
    cache_scale: float = 0.0
    per_kernel_ms: float = 0.0
    fitted_on: int = 0
    int8_scale: float = 1.0

    def kernel_ms(self, base_ms: float, pressure: float, int8: bool) -> float:
        if int8:
            return base_ms * self.int8_scale
        factor = self.scale + self.cache_scale * pressure
        return max(base_ms * factor + self.per_kernel_ms, MIN_KERNEL_SHARE * base_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "cache_scale": self.cache_scale,
            "per_kernel_ms": self.per_kernel_ms,
            "int8_scale": self.int8_scale,
            "fitted_on": self.fitted_on,
        }


#: The least share of its single-op time a kernel keeps under a negative per-kernel term.
MIN_KERNEL_SHARE = 0.1
#: Bounds of the signed per-kernel term (ms): a few microseconds either way.
_PER_KERNEL_BOUND_MS = 0.005


def cache_pressure(features: Mapping[str, float]) -> float:
    ws = features["in_bytes"] + features["out_bytes"] + features["weight_bytes"]
    return math.log2(1.0 + ws / 262144.0)


#: Which terms a whole-model fit may use: 0 the float kernel sum, 1 its cache-weighted part,
#: 2 the float kernel count (signed), 3 the int8 kernel sum (without it int8 kernels count as
#: float ones). ``()`` is the plain kernel sum.
WHOLE_VARIANTS: dict[str, tuple[int, ...]] = {
    "plain": (),
    "scale": (0,),
    "scale+int8": (0, 3),
    "scale+count": (0, 2),
    "scale+int8+count": (0, 2, 3),
    "scale+cache": (0, 1),
    "scale+cache+int8+count": (0, 1, 2, 3),
}


def fit_whole_term(
    rows: Sequence[Sequence[float]], ys: Sequence[float], terms: Sequence[int] = (0, 1, 2)
) -> WholeModelTerm:
    """Relative least squares of ``ys`` on the chosen columns (``terms``) of the rows of
    :meth:`CpuPredictor.whole_rows`: scales non-negative, the per-kernel term signed within a
    few microseconds. Fewer than four networks keep the plain sum."""
    import numpy as np
    from scipy.optimize import lsq_linear

    if len(rows) < 4 or not terms:
        return WholeModelTerm(fitted_on=len(rows))
    given = np.asarray(rows, dtype=float)
    x = np.zeros((len(rows), 4))
    x[:, : min(given.shape[1], 4)] = given[:, :4]
    if 3 not in terms:  # int8 kernels are scaled like float ones
        x[:, 0] += x[:, 3]
    cols = list(terms)
    target = np.asarray(ys, dtype=float)
    a = x[:, cols]
    norm = np.maximum(np.abs(a).max(axis=0), 1e-12)
    low = np.array([-_PER_KERNEL_BOUND_MS if c == 2 else 0.0 for c in cols]) * norm
    high = np.array([_PER_KERNEL_BOUND_MS if c == 2 else np.inf for c in cols]) * norm
    fit = lsq_linear((a / norm) / target[:, None], np.ones_like(target), bounds=(low, high))
    full = np.zeros(4)
    full[cols] = fit.x / norm
    int8 = full[3] if 3 in terms else full[0]
    return WholeModelTerm(
        float(full[0]), float(full[1]), float(full[2]), len(rows), int8_scale=float(int8)
    )


def whole_term_ms(term: WholeModelTerm, kernels: Sequence[tuple[float, float, bool]]) -> float:
    """A network's kernel time under ``term``; ``kernels`` as in :meth:`CpuPredictor.whole_rows`
    (base ms, cache pressure, int8) of every non-free kernel."""
    return sum(term.kernel_ms(ms, p, q) for ms, p, q in kernels)


#: Fallbacks for kernels whose op type has no regressor of its own.
_KIND_FALLBACK = {
    "other": "kind:elementwise",
    "cpu_fallback": "kind:elementwise",
    "pad": "kind:elementwise",
    "concat": "kind:elementwise",
    "resize": "kind:elementwise",
    "softmax": "kind:elementwise",
}


class CpuPredictor:
    """Whole-model latency from measured single-op kernels: partition, per-kernel models,
    whole-model term, one invoke overhead."""

    def __init__(
        self,
        device: str,
        models: Mapping[str, CpuLatencyModel],
        *,
        invoke_overhead_ms: float,
        fallback_overhead_ms: float = 0.0,
        spread: Mapping[str, tuple[float, float]] | None = None,
        rules: str = "xnnpack",
        whole: WholeModelTerm | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        self.device = device
        self.models = dict(models)
        self.invoke_overhead_ms = invoke_overhead_ms
        self.fallback_overhead_ms = fallback_overhead_ms
        #: op-type key -> (low, high) ratio of measured to predicted (cross-validated 10/90 %)
        self.spread = dict(spread or {})
        self.rules = rules
        self.whole = whole or WholeModelTerm()
        self.provenance = dict(provenance or {})

    def _model_for(self, op_type: str, kind: str) -> tuple[str, CpuLatencyModel | None]:
        keys = (model_key(op_type), POOLED_PREFIX + kind, _KIND_FALLBACK.get(kind, ""), ANY_MODEL)
        for key in keys:
            if key in self.models:
                return key, self.models[key]
        return "", None

    @property
    def card(self) -> DeviceCard:
        from tflat.predict.predictor import DeviceCard

        prov = self.provenance
        return DeviceCard(
            id=self.device,
            name=str(prov.get("name", self.device)),
            soc=str(prov.get("soc", "")),
            gpu=str(prov.get("gpu", "")),
            source=str(prov.get("source", "tflat calibrate")),
            trained_at=str(prov.get("trained_at", "")),
            provenance=dict(prov),
        )

    def base_times(
        self, graph: Graph
    ) -> tuple[tuple[Kernel, ...], list[tuple[str, float, float, bool]]]:
        """Kernels and, per kernel, (model key, single-op ms, cache pressure, int8); free ones
        0 ms. A kernel is int8 when its main op reads or writes an int8 tensor."""
        from tflat.cpu.delegates import partition

        kernels = partition(graph, rules=self.rules)
        rows = kernel_rows(graph, kernels)
        by_index = {op.index: op for op in graph.ops}
        out: list[tuple[str, float, float, bool]] = []
        for k, (op_type, feats) in zip(kernels, rows, strict=True):
            if k.kind == "free":
                out.append(("", 0.0, 0.0, False))
                continue
            op = by_index[k.main_op]
            int8 = any(t.dtype in ("int8", "uint8") for t in (*op.inputs, *op.outputs))
            key, model = self._model_for(op_type, k.kind)
            if model is None:
                raise PredictorError(f"{self.device}: no model for {op_type} ({k.kind})")
            if key != model_key(op_type):
                log.info("%s kernel %d %s: model %s used", graph.name, k.index, op_type, key)
            out.append((key, float(model.predict([feats])[0]), cache_pressure(feats), int8))
        return kernels, out

    def predict_graph(self, graph: Graph) -> GraphPrediction:
        """Per-kernel times; ``total_ms == sum(kernel latency_ms) + overhead_ms``."""
        from tflat.cpu.xnnpack import delegate_partitions
        from tflat.predict.predictor import GraphPrediction, KernelTime

        kernels, base = self.base_times(graph)
        w = self.whole
        times: list[KernelTime] = []
        var_low = var_high = 0.0
        for k, (key, ms0, pressure, int8) in zip(kernels, base, strict=True):
            if k.kind == "free":
                times.append(KernelTime(0.0, 0.0, 0.0))
                continue
            ms = w.kernel_ms(ms0, pressure, int8)
            lo_r, hi_r = self.spread.get(key, (0.8, 1.25))
            lo, hi = ms * min(lo_r, 1.0), ms * max(hi_r, 1.0)
            var_low += (ms - lo) ** 2
            var_high += (hi - ms) ** 2
            times.append(KernelTime(ms, lo, hi))
        switches = max(delegate_partitions(kernels) - 1, 0) + sum(
            1 for k in kernels if k.kind == "cpu_fallback"
        )
        overhead = self.invoke_overhead_ms + switches * self.fallback_overhead_ms
        total = sum(t.latency_ms for t in times) + overhead
        return GraphPrediction(
            device=self.device,
            kernels=kernels,
            kernel_times=tuple(times),
            overhead_ms=overhead,
            total_ms=total,
            total_low_ms=max(total - math.sqrt(var_low), overhead),
            total_high_ms=total + math.sqrt(var_high),
        )

    def whole_rows(
        self, networks: Sequence[tuple[Graph, float]]
    ) -> tuple[list[list[float]], list[float], list[list[tuple[float, float, bool]]]]:
        """Per network: [float kernel ms, its cache-weighted sum, float kernel count, int8
        kernel ms], measured ms minus the invoke overhead (the target of :func:`fit_whole_term`) and
        the (base ms, pressure, int8) of each non-free kernel (for :func:`whole_term_ms`)."""
        rows, ys, per_kernel = [], [], []
        for graph, measured in networks:
            kernels, base = self.base_times(graph)
            parts = [(ms, p, q) for k, (_, ms, p, q) in zip(kernels, base, strict=True)
                     if k.kind != "free"]  # fmt: skip
            f = sum(ms for ms, _, q in parts if not q)
            c = sum(ms * p for ms, p, q in parts if not q)
            i8 = sum(ms for ms, _, q in parts if q)
            left = measured - self.invoke_overhead_ms
            if f + i8 > 0 and left > 0:
                rows.append([f, c, float(sum(1 for _, _, q in parts if not q)), i8])
                ys.append(left)
                per_kernel.append(parts)
        return rows, ys, per_kernel

    def fit_whole(self, networks: Sequence[tuple[Graph, float]]) -> WholeModelTerm:
        """Fit the whole-model term on measured (graph, ms) networks; sets and returns it."""
        rows, ys, _ = self.whole_rows(networks)
        self.whole = fit_whole_term(rows, ys)
        return self.whole

    def to_bundle(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "device": self.device,
            "rules": self.rules,
            "features": list(FEATURE_NAMES),
            "invoke_overhead_ms": self.invoke_overhead_ms,
            "fallback_overhead_ms": self.fallback_overhead_ms,
            "whole_model": self.whole.to_dict(),
            "spread": {k: list(v) for k, v in self.spread.items()},
            "models": {k: m.to_dict() for k, m in self.models.items()},
            "provenance": {"trained_at": datetime.now(UTC).isoformat(), **self.provenance},
        }

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> CpuPredictor:
        if bundle.get("format") != BUNDLE_FORMAT:
            raise PredictorError(f"not a CPU predictor bundle (format {bundle.get('format')!r})")
        if list(bundle.get("features", [])) != list(FEATURE_NAMES):
            raise PredictorError(
                f"predictor of {bundle.get('device')} was trained on other features "
                "(an older tflat): run tflat calibrate again"
            )
        try:
            wm = bundle.get("whole_model", {})
            return cls(
                str(bundle["device"]),
                {k: CpuLatencyModel.from_dict(v) for k, v in bundle["models"].items()},
                invoke_overhead_ms=float(bundle["invoke_overhead_ms"]),
                fallback_overhead_ms=float(bundle.get("fallback_overhead_ms", 0.0)),
                spread={k: (float(v[0]), float(v[1])) for k, v in bundle["spread"].items()},
                rules=str(bundle.get("rules", "xnnpack")),
                whole=WholeModelTerm(
                    float(wm.get("scale", 1.0)),
                    float(wm.get("cache_scale", 0.0)),
                    float(wm.get("per_kernel_ms", 0.0)),
                    int(wm.get("fitted_on", 0)),
                    # bundles written before int8 kernels had their own scale: same as float
                    float(wm.get("int8_scale", wm.get("scale", 1.0))),
                ),
                provenance=bundle.get("provenance", {}),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PredictorError(f"CPU predictor bundle is malformed: {exc!r}") from exc
