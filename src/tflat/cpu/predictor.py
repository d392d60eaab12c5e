"""A device's latency from measured single-op kernels: per-kernel regressors, the whole-model
term, one invoke overhead (what ``tflat calibrate`` trains, on this CPU or a phone).

Why a CPU-specific predictor: a whole model costs one fixed invoke overhead, not one per layer.
Single-op benchmarks include that overhead once each, so calibration subtracts it
(``invoke_overhead_ms``, measured on a near-empty model) before training; the whole-model
estimate adds it back once. Kernels come from :mod:`tflat.cpu.features` and are priced by the
per-op-type regressors of :mod:`tflat.cpu.regressor`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tflat.cpu.features import FEATURE_NAMES, cache_pressure, kernel_rows, model_key
from tflat.cpu.regressor import ANY_MODEL, POOLED_PREFIX, CpuLatencyModel
from tflat.errors import PredictorError

if TYPE_CHECKING:
    from tflat.gpu.kernel import Kernel
    from tflat.model.ops import Graph
    from tflat.predict.predictor import DeviceCard, GraphPrediction, KernelTime

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "tflat-cpu-v1"


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
        #: the bundle this predictor was read from ({} when trained here); its optional
        #: "pricing" sections plug further pricers in (tflat.pricing.registry)
        self.bundle: Mapping[str, Any] = {}

    def _model_for(self, op_type: str, kind: str) -> tuple[str, CpuLatencyModel | None]:
        keys = (model_key(op_type), POOLED_PREFIX + kind, _KIND_FALLBACK.get(kind, ""), ANY_MODEL)
        for key in keys:
            if key in self.models:
                return key, self.models[key]
        return "", None

    @property
    def precision(self) -> str:
        """The math precision the calibration ran in (fp32 on a CPU)."""
        runtime = self.provenance.get("runtime", {})
        return str(runtime.get("precision", "fp32")) if isinstance(runtime, dict) else "fp32"

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
            precision=self.precision,
        )

    def base_times(
        self, graph: Graph
    ) -> tuple[tuple[Kernel, ...], list[tuple[str, float, float, bool]]]:
        """Kernels and, per kernel, (model key, single-op ms, cache pressure, int8); free ones
        0 ms. A kernel is int8 when its main op reads or writes an int8 tensor."""
        kernels = self.kernels(graph)
        return kernels, self.kernel_bases(graph, kernels)

    def kernels(self, graph: Graph) -> tuple[Kernel, ...]:
        """The kernels of ``graph`` under the delegate this device was calibrated with."""
        from tflat.cpu.delegates import partition

        return partition(graph, rules=self.rules)

    def kernel_bases(
        self, graph: Graph, kernels: Sequence[Kernel]
    ) -> list[tuple[str, float, float, bool]]:
        """Per kernel of ``kernels`` (of ``graph``): (model key, single-op ms, cache pressure,
        int8), kernel by kernel; free ones 0 ms."""
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
        return out

    def kernel_times(self, graph: Graph, kernels: Sequence[Kernel]) -> list[tuple[str, KernelTime]]:
        """(model key, time in a whole inference with its interval) per kernel of ``kernels``:
        the single-op time through the whole-model term; free kernels ("", 0 ms)."""
        from tflat.predict.predictor import KernelTime

        w = self.whole
        out: list[tuple[str, KernelTime]] = []
        for k, (key, ms0, pressure, int8) in zip(
            kernels, self.kernel_bases(graph, kernels), strict=True
        ):
            if k.kind == "free":
                out.append(("", KernelTime(0.0, 0.0, 0.0)))
                continue
            ms = w.kernel_ms(ms0, pressure, int8)
            lo_r, hi_r = self.spread.get(key, (0.8, 1.25))
            out.append((key, KernelTime(ms, ms * min(lo_r, 1.0), ms * max(hi_r, 1.0))))
        return out

    def overhead_ms(self, kernels: Sequence[Kernel]) -> float:
        """One invoke, plus a switch cost per delegate partition boundary and refused kernel."""
        from tflat.cpu.xnnpack import delegate_partitions

        switches = max(delegate_partitions(tuple(kernels)) - 1, 0) + sum(
            1 for k in kernels if k.kind == "cpu_fallback"
        )
        return self.invoke_overhead_ms + switches * self.fallback_overhead_ms

    @staticmethod
    def total_interval(
        total_ms: float, overhead_ms: float, times: Sequence[KernelTime]
    ) -> tuple[float, float]:
        """The interval of a total: the kernels' deviations added in quadrature (independent
        errors), never below the overhead."""
        var_low = var_high = 0.0
        for t in times:
            var_low += (t.latency_ms - t.low_ms) ** 2
            var_high += (t.high_ms - t.latency_ms) ** 2
        return max(total_ms - math.sqrt(var_low), overhead_ms), total_ms + math.sqrt(var_high)

    def predict_graph(self, graph: Graph) -> GraphPrediction:
        """Per-kernel times; ``total_ms == sum(kernel latency_ms) + overhead_ms``."""
        from tflat.predict.predictor import GraphPrediction

        kernels = self.kernels(graph)
        times = [t for _, t in self.kernel_times(graph, kernels)]
        overhead = self.overhead_ms(kernels)
        return GraphPrediction.summed(
            self.device,
            kernels,
            times,
            overhead,
            lambda total: self.total_interval(total, overhead, times),
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
            **({"pricing": self.bundle["pricing"]} if "pricing" in self.bundle else {}),
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
            predictor = cls(
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
            predictor.bundle = bundle
            return predictor
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PredictorError(f"CPU predictor bundle is malformed: {exc!r}") from exc
