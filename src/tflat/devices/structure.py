"""A whole model as the transfer sees it on the new phone: its listed kernels and the rest.

The same :class:`~tflat.predict.train.ModelParts` the predictors are trained on, built two
ways: from a real ``.tflite`` graph partitioned with the new phone's delegate family (what
``tflat estimate`` does), or from the kernel rows of the USC data, whose kernel names show the
partition of the phones measured there (:data:`~tflat.devices.gpus.STRUCTURE_PHONES` says
which phone's names stand for a family). Only structure is read from those rows, never a
latency.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tflat.errors import TflatError
from tflat.predict.train import ModelParts


@dataclass(frozen=True)
class TargetParts(ModelParts):
    """:class:`ModelParts` with the fp16 MB each unlisted kernel writes (the transfer prices
    them one by one; the USC rows give only their total, spread evenly), and how many of the
    graph's kernels the delegate leaves to the CPU (counted among the unlisted ones)."""

    unlisted_mb_each: tuple[float, ...] = ()
    cpu_kernels: int = 0


#: Kinds the per-kernel regressors price (the others of a real graph are "unlisted").
_PAD_TYPES = frozenset({"PAD", "PADV2", "MIRROR_PAD"})


def parts_from_graph(
    graph: Any, name: str, gpu_family: str, rules: str = "tflite_gpu"
) -> TargetParts:
    """The listed kernels of ``graph`` on a GPU of ``gpu_family`` (as
    :meth:`tflat.predict.Predictor.predict_graph` sees them), the count and fp16 MB of the
    other non-free kernels, and the PADs merged into listed kernels."""
    from tflat.gpu import partition
    from tflat.predict.features import LISTED_KINDS, PROXY_KIND
    from tflat.predict.shapes import ops_by_index, output_bytes, shape_from_kernel

    kernels = partition(graph, rules=rules, gpu_family=gpu_family)
    by_index = ops_by_index(graph)
    shapes = []
    unlisted_each: list[float] = []
    pads = 0
    cpu = 0
    for k in kernels:
        if k.kind == "free":
            continue
        cpu += not k.on_gpu
        if k.kind in LISTED_KINDS or k.kind in PROXY_KIND:
            shapes.append(
                shape_from_kernel(graph, k.op_indices, k.kind, k.name, by_index, gpu_family)
            )
            pads += any(by_index[i].type in _PAD_TYPES for i in k.op_indices[1:])
        else:
            unlisted_each.append(output_bytes(graph, k.main_op, by_index) / 1e6)
    return TargetParts(
        model=name,
        family=name,
        shapes=tuple(shapes),
        unlisted_ops=len(unlisted_each),
        unlisted_mb=float(sum(unlisted_each)),
        measured_ms=None,
        merged_pads=pads,
        unlisted_mb_each=tuple(unlisted_each),
        cpu_kernels=cpu,
    )


def structure_phone(family: str, available: Iterable[str]) -> str:
    """The USC phone whose kernel names show the partition of a GPU of ``family`` (the first
    of :data:`STRUCTURE_PHONES` that is in ``available``)."""
    from tflat.devices.gpus import STRUCTURE_PHONES

    have = set(available)
    for dev in STRUCTURE_PHONES.get(family, ()):
        if dev in have:
            return dev
    raise TflatError(f"no USC phone of the {family} family to read kernel lists from")


def parts_from_usc(
    data: Any, gpu_family: str, models: Sequence[str] | None = None, *, exclude: Sequence[str] = ()
) -> dict[str, TargetParts]:
    """USC models as a GPU of ``gpu_family`` runs them: the kernel rows (structure only) of the
    phone of the same delegate family, shapes featurized for ``gpu_family``; ``exclude`` are
    phones whose rows may not be read (a phone left out in an evaluation)."""
    from tflat.devices.gpus import STRUCTURE_PHONES
    from tflat.gpu.dispatch import base_family
    from tflat.predict.train import model_parts

    family = base_family(gpu_family)
    phones = [d for d in STRUCTURE_PHONES.get(family, ()) if d not in exclude]
    present = {r.device for r in data.ops}
    phone = structure_phone(family, [d for d in phones if d in present])
    want = set(models) if models is not None else None
    ops = [r for r in data.ops_for(phone) if want is None or r.model in want]
    rows = [
        replace(m, mean_ms=0.0) for m in data.models_for(phone) if want is None or m.model in want
    ]
    out: dict[str, TargetParts] = {}
    for p in model_parts(ops, rows, gpu_family):
        each = (p.unlisted_mb / p.unlisted_ops,) * p.unlisted_ops if p.unlisted_ops else ()
        fields = {f: getattr(p, f) for f in ModelParts.__dataclass_fields__}
        out[p.model] = TargetParts(**{**fields, "measured_ms": None}, unlisted_mb_each=each)
    return out
