"""Copies at GPU<->CPU partition edges: where a graph splits, every crossing tensor is copied.

When the delegate refuses an op, the graph runs as a GPU partition and CPU ops. Each tensor
produced on one side and read on the other (:func:`tflat.pricing.compose.partition_edges`) is
copied at every inference and converted between the GPU's fp16 4-channel layout and the CPU's
fp32 one by a kernel of the delegate. One copy costs::

    ms = convert_ms + MB (fp32, as the CPU holds it) * ms_per_mb

basis ``cpu``: ``convert_ms`` is one kernel launch of the device's GPU (its analytic rates),
``ms_per_mb`` the phone's CPU streaming rate (:mod:`tflat.pricing.fit_cpu`). Both delegates
take only the largest partition (:mod:`tflat.gpu.support`), so a split graph still invokes the
delegate once per inference, as a fully delegated one does: the wait for its results is in
the per-inference overhead, not in the copies. No public data times a split graph, so the
interval is a stated factor of two either way, not a fit.

The graph's own input and output are not edges: their upload and download are part of every
inference, priced in the per-inference overhead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tflat.predict import sections
from tflat.predict.sections import DEFAULT_BAND, Band, band_of, check_band, check_rates, reading
from tflat.pricing.base import Basis, EdgePricer, FittedPricer, PartitionEdge, Price, PricingContext


@dataclass(frozen=True)
class EdgeParams:
    convert_ms: float
    ms_per_mb: float
    #: no split graph is measured in the public data: a factor of two each way, stated
    log_interval: Band = DEFAULT_BAND
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: the phones these rates were borrowed from (a transferred phone: tflat.devices.borrowed)
    borrowed_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_rates("edge pricing", self, ("convert_ms", "ms_per_mb"), positive=("ms_per_mb",))
        check_band("edge pricing", "log_interval", self.log_interval)

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> EdgeParams:
        with reading("edge pricing"):
            return cls(
                convert_ms=float(section["convert_ms"]),
                ms_per_mb=float(section["ms_per_mb"]),
                log_interval=band_of(section, default=DEFAULT_BAND),
                provenance=dict(section.get("provenance", {})),
                borrowed_from=sections.borrowed_of(section),
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "convert_ms": self.convert_ms,
            "ms_per_mb": self.ms_per_mb,
            "log_interval": list(self.log_interval),
            "provenance": dict(self.provenance),
        } | sections.borrowed_dict(self.borrowed_from)


class TransferPricer(FittedPricer, EdgePricer):
    """Prices every GPU<->CPU copy of a split graph (basis ``cpu``)."""

    params_type = EdgeParams
    params: EdgeParams

    def price_edges(self, ctx: PricingContext, edges: Sequence[PartitionEdge]) -> list[Price]:
        lo, hi = self.params.log_interval
        out: list[Price] = []
        for e in edges:
            if e.nbytes < 0:
                raise ValueError(f"edge of tensor {e.tensor_index} has negative size")
            ms = self.params.convert_ms + e.nbytes / 1e6 * self.params.ms_per_mb
            way = "CPU -> GPU" if e.to_gpu else "GPU -> CPU"
            note = f"copy of tensor {e.tensor_index} ({e.nbytes} B) {way}"
            note += sections.borrowed_note(self.params.borrowed_from, "copy")
            out.append(Price(ms, ms * math.exp(lo), ms * math.exp(hi), Basis.CPU, note))
        return out
