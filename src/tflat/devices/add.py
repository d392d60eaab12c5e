"""``tflat device add``: a predictor for a phone tflat has not measured, three ways.

- **timings** (``--timings CSV``): whole-model times of a few models on the new phone and its
  GPU's name; the shipped phones' predictors are transferred (:mod:`tflat.devices.transfer`;
  a timed model the delegate splits, refused ops on the CPU, is kept but not fitted);
- **profiled** (no ``--timings``): the phone's own kernel rows and whole-model times in the
  USC data or the database, however few, train its predictor as ``tflat train`` does (with ten
  diverse models that beat every way of mixing in the sources we tried:
  benchmarks/results/device_transfer.md and op_profiled_sources.md);
- **sharpen** (a calibrated ``host-cpu*`` or ``android:SERIAL`` id with ``--timings``): the
  device's per-op predictor stays, its whole-model term is refitted on the timings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tflat.devices.gpus import GpuSpec, gpu_spec
from tflat.devices.structure import parts_from_graph, parts_from_usc
from tflat.devices.timings import Timing, read_timings
from tflat.errors import TflatError
from tflat.predict.train import ModelParts

if TYPE_CHECKING:
    from tflat.model.ops import Graph

log = logging.getLogger(__name__)

#: Zoo networks (tflat's own writer) whose kernels the transfer is distilled on, with widths:
#: real layer sequences of the main CNN families at several sizes, so the distilled trees see
#: the shapes real models have even without the USC data.
CORPUS_ZOO: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("mobilenet", (0.25, 0.5, 0.75, 1.0)),
    ("mobilenetv2", (0.35, 0.5, 0.75, 1.0, 1.4)),
    ("mobilenetv3_large", (0.35, 0.5, 0.75, 1.0, 1.25)),
    ("resnet18", (0.25, 0.5, 1.0)),
    ("squeezenet_v1_1", (1.0,)),
    ("densenet121", (1.0,)),
)


@dataclass(frozen=True)
class AddResult:
    """What ``device add`` made: the bundle and the figures to show."""

    device: str
    mode: str
    bundle: dict[str, Any]
    timings: int = 0
    fitted: tuple[tuple[str, float, float], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def loo_mape_pct(self) -> float | None:
        m = self.bundle.get("metrics", {})
        v = m.get("model_loo_mape_pct", m.get("model_oof_mape_pct"))
        return float(v) if v is not None else None


def add_device(
    device: str,
    *,
    gpu: str | None = None,
    timings: Path | None = None,
    usc: Path | None = None,
    db_url: str | None = None,
    from_devices: Sequence[str] | None = None,
    name: str | None = None,
    cpu_timings: Path | None = None,
) -> AddResult:
    """Build the predictor of ``device`` (see the module docstring for the three ways).
    ``cpu_timings``: whole-model CPU times of the phone (``model,ms``, .tflite paths) that set
    the level of its borrowed CPU rates (timings way only)."""
    from tflat.pricing.predictors import is_calibratable

    if cpu_timings is not None and (timings is None or is_calibratable(device)):
        raise TflatError("--cpu-timings goes with --timings, for a phone transferred from them")
    if is_calibratable(device):
        if timings is None:
            raise TflatError(
                f"{device} is calibrated with 'tflat calibrate'; 'device add' sharpens it "
                "with --timings CSV"
            )
        from tflat.devices.sharpen import sharpen_device

        return sharpen_device(device, timings, db_url)
    if timings is None:
        if usc is None and db_url is None:
            raise TflatError(
                "give --timings CSV, or the phone's own rows with --usc DIR or --db URL"
            )
        return _add_profiled(device, gpu, usc, db_url, name)
    if db_url is not None:
        raise TflatError("--db gives a phone's own measured rows: use it without --timings")
    if gpu is None:
        raise TflatError("--gpu NAME is needed to transfer from timings (e.g. 'Mali-G710 MP7')")
    return _add_from_timings(device, gpu_spec(gpu), timings, usc, from_devices, name,
                             cpu_timings)  # fmt: skip


def _sources(device: str, from_devices: Sequence[str] | None) -> list[Any]:
    from tflat.predict.bundles import BUNDLED_DEVICES
    from tflat.pricing.predictors import load_predictor

    ids = list(from_devices) if from_devices else [d for d in BUNDLED_DEVICES if d != device]
    if device in ids:
        raise TflatError(f"--from-devices: {device} cannot be its own source")
    preds = [load_predictor(d) for d in ids]
    for p in preds:
        if getattr(p, "rules", "") != "tflite_gpu":
            raise TflatError(f"--from-devices: {p.device} is not a GPU predictor")
    if not preds:
        raise TflatError("--from-devices: no source devices")
    return preds


def timed_parts(
    rows: Sequence[Timing], gpu_family: str, usc_parts: Mapping[str, ModelParts]
) -> list[ModelParts]:
    """Each timed model as the new phone partitions it, with its measured time."""
    from tflat.model import read_model

    out: list[ModelParts] = []
    for t in rows:
        parts: ModelParts
        if t.path is not None:
            try:
                graph = read_model(t.path)
            except TflatError as exc:
                raise TflatError(f"line {t.line}: {exc}") from exc
            parts = parts_from_graph(graph, t.model, gpu_family)
        else:
            parts = replace(usc_parts[t.model], model=t.model)
        if not parts.shapes:
            raise TflatError(f"line {t.line}: {t.model} has no GPU kernel tflat can price")
        out.append(replace(parts, measured_ms=t.latency_ms))
    return out


def zoo_graphs() -> list[tuple[str, Graph]]:
    """The zoo networks of :data:`CORPUS_ZOO`, read, each with its name ``arch@width``."""
    from tflat.model import read_model, zoo

    return [
        (f"{arch}@{w:g}", read_model(zoo.build_model(arch, width=w)))
        for arch, widths in CORPUS_ZOO
        for w in widths
    ]


def zoo_corpus(
    gpu_family: str, graphs: Sequence[tuple[str, Graph]] | None = None
) -> list[ModelParts]:
    """The zoo networks of :data:`CORPUS_ZOO` (or ``graphs`` read from them), partitioned for
    ``gpu_family``."""
    return [parts_from_graph(g, name, gpu_family) for name, g in graphs or zoo_graphs()]


def _add_from_timings(
    device: str,
    spec: GpuSpec,
    timings_csv: Path,
    usc: Path | None,
    from_devices: Sequence[str] | None,
    name: str | None,
    cpu_timings: Path | None = None,
) -> AddResult:
    from tflat.devices import transfer
    from tflat.devices.borrowed import borrowed_pricing

    data = None
    usc_names: set[str] = set()
    if usc is not None:
        from tflat.datasets.usc import load_usc

        data = load_usc(usc)
        usc_names = {m.model for m in data.models}
    rows = read_timings(timings_csv, usc_names)
    sources = _sources(device, from_devices)
    family = spec.gpu_family
    usc_parts = parts_from_usc(data, family, exclude=[device]) if data is not None else {}
    all_timed = timed_parts(rows, family, usc_parts)
    timed, left_out = _gpu_only(all_timed)
    mix = transfer.SourceMix(sources)
    tf = transfer.fit_timings(mix, timed)
    graphs = zoo_graphs()
    corpus = [*zoo_corpus(family, graphs), *usc_parts.values()]
    card = {
        "id": device,
        "name": name or device,
        "soc": spec.soc,
        "gpu": spec.name,
    }
    provenance = {
        "source": f"transferred from {len(timed)} whole-model timings",
        "basis": "transferred",
        "transfer": {
            "method": "tflat.devices.transfer: per-kernel geometric mean of the sources, "
            "per-class scales and overhead fitted on the timings, distilled",
            "timings": [{"model": t.model, "ms": t.latency_ms} for t in rows],
            "not_fitted": left_out,
            "timings_file": timings_csv.name,
            "sources": list(mix.names),
            "class_scale": tf.fit.scale,
            "overhead_ms": tf.fit.overhead_ms,
            "ridge_alpha": tf.fit.alpha,
            "design_loo_mape_pct": tf.design_loo_mape_pct,
            "loo_mape_pct": tf.loo_mape_pct,
            "loo_log_residuals": list(tf.loo_log_residuals),
            "corpus_models": len(corpus),
            "usc_corpus": bool(usc_parts),
        },
        "gpu": spec.to_dict(),
    }
    bundle = transfer.distill(
        mix, tf, corpus, timed, device=card, gpu_family=family, provenance=provenance
    )
    # the phone's CPU, its partition edges and GPU kinds nobody measured: borrowed prices
    pricing = borrowed_pricing(sources, [g for _, g in graphs], family, tf.fit.scale["unlisted"],
                               str(bundle["precision"]))  # fmt: skip
    if pricing and cpu_timings is not None:
        pricing = _cpu_timed(pricing, cpu_timings, usc_names)
        bundle["provenance"]["transfer"]["cpu_timings_file"] = cpu_timings.name
    if pricing:
        bundle["pricing"] = pricing
    fitted = tuple(
        (p.model, float(p.measured_ms or 0.0), float(f))
        for p, f in zip(timed, tf.fitted_ms, strict=True)
    )
    notes = tuple(f"{d['model']}: not fitted, {d['why']}" for d in left_out)
    return AddResult(device, "timings", bundle, timings=len(timed), fitted=fitted, notes=notes)


def _cpu_timed(pricing: dict[str, Any], csv_path: Path, usc_names: set[str]) -> dict[str, Any]:
    """The borrowed sections with the CPU's level set by whole-model CPU timings."""
    from tflat.devices.borrowed import cpu_run_work, timed_cpu
    from tflat.model import read_model

    timed = []
    for t in read_timings(csv_path, usc_names):
        if t.path is None:
            raise TflatError(f"line {t.line}: a CPU timing needs the model's .tflite file")
        try:
            graph = read_model(t.path)
        except TflatError as exc:
            raise TflatError(f"line {t.line}: {exc}") from exc
        timed.append((t.model, cpu_run_work(graph), t.latency_ms))
    return timed_cpu(pricing, timed)


def _gpu_only(timed: Sequence[ModelParts]) -> tuple[list[ModelParts], list[dict[str, Any]]]:
    """The timed models the delegate runs wholly on the GPU, and why the others are left out
    of the fit: a model the delegate splits runs its refused ops on the CPU, a time the
    transfer (GPU kernels of the sources) cannot price, so its timing would bend the class
    scales of every GPU kernel. (Table 6's ConvNeXt-S: 584 of 599 ops on the CPU under the
    TFLite 2.10 rules; fitted anyway, it took the leave-one-timing-out MAPE of the seven
    from 13.7 / 12.6 % to 18.9 / 26.7 %, benchmarks/results/table6_transfer.md.)"""
    from tflat.devices.transfer import MIN_TIMINGS

    keep: list[ModelParts] = []
    left: list[dict[str, Any]] = []
    for p in timed:
        cpu = int(getattr(p, "cpu_kernels", 0))
        if cpu:
            why = f"{cpu} of its kernels run on the CPU (ops the GPU delegate refuses)"
            log.info("%s: not fitted, %s", p.model, why)  # the caller shows AddResult.notes
            left.append({"model": p.model, "cpu_kernels": cpu, "why": why})
        else:
            keep.append(p)
    if len(keep) < MIN_TIMINGS and left:
        raise TflatError(
            f"{len(left)} of {len(timed)} timed models run partly on the CPU; a transfer "
            f"needs at least {MIN_TIMINGS} that run wholly on the GPU"
        )
    return keep, left


def _add_profiled(
    device: str, gpu: str | None, usc: Path | None, db_url: str | None, name: str | None
) -> AddResult:
    """The phone's own kernel rows (however few models) train its predictor."""
    from tflat.predict.train import fit_device
    from tflat.predict.usc import GPU_CONFIG

    if usc is not None:
        from tflat.datasets.usc import load_usc

        data = load_usc(usc)
    else:
        from tflat.predict.dbrows import rows_from_store
        from tflat.store import open_store

        store = open_store(db_url)
        try:
            data = rows_from_store(store, device)
        finally:
            store.close()
    ops = data.ops_for(device) if usc is not None else list(data.ops)
    models = data.models_for(device, GPU_CONFIG) if usc is not None else data.models_for(device)
    where = str(usc) if usc is not None else "the database"
    if not ops or not models:
        raise TflatError(f"no kernel rows and whole-model times of {device} in {where}")
    spec = gpu_spec(gpu) if gpu else _usc_gpu(device)
    timed = {m.model for m in models}
    ops = [r for r in ops if r.model in timed]
    n_models = len({r.model for r in ops})
    if n_models < 3:
        raise TflatError(f"{device}: {n_models} op-profiled models in {where}; need at least 3")
    card = {"id": device, "name": name or device, "soc": spec.soc, "gpu": spec.name}
    provenance = {
        **{k: v for k, v in data.provenance.items() if k not in ("op_rows", "model_rows")},
        "source": f"{device}'s own kernel rows of {n_models} models ({where})",
        "basis": "measured",
        "models": sorted(timed),
    }
    bundle = fit_device(ops, models, device=card, gpu_family=spec.gpu_family,
                        provenance=provenance)  # fmt: skip
    return AddResult(device, "profiled", bundle, timings=n_models)


def _usc_gpu(device: str) -> GpuSpec:
    from tflat.devices.gpus import known_gpus

    for spec in known_gpus():
        if spec.usc_device == device:
            return spec
    raise TflatError(f"--gpu NAME is needed for {device} (its GPU's name, e.g. 'Adreno 740')")
