"""Phone GPUs by name: the delegate family a new phone's kernels follow, and spec-sheet figures.

``--gpu "Mali-G710 MP7"`` decides how tflat partitions a model for the new phone (the TFLite
GPU delegate picks Winograd, ConvConstants and work groups per vendor family, see
``gpu/rules/tflite_gpu.toml``) and which USC phone's kernel lists stand for that partition in
the public data. Figures (cores, clock, GFLOPS, memory bandwidth) come from
``tflat/data/gpus.toml``, each with the page it was read from; they are shown with a
transferred device and kept in its provenance, not fitted: the transfer learns the phone's
speed from its timings (benchmarks/results/device_transfer.md says what spec-based source
weights did).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from tflat.errors import TflatError

#: Vendor families of the TFLite GPU delegate, recognised from the start of a GPU's name.
_FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^(qualcomm)?adreno\d", "adreno"),
    (r"^(arm)?mali", "mali"),
    (r"^(imagination)?powervr|^ge\d{4}|^gm\d{4}|^gt\d{4}|^bxm", "powervr"),
    (r"^apple|^a\d{1,2}(bionic|fusion|pro)?$", "apple"),
)

#: The USC phones whose kernel lists show each family's partition (their delegate kernel names
#: are identical within a group: Adreno, Mali and PowerVR alike choose Winograd and drop linked
#: activations from its name, Metal fuses depthwise + 1x1 pairs), in order of preference.
STRUCTURE_PHONES: dict[str, tuple[str, ...]] = {
    "adreno": ("pixel4", "mi8se"),
    "mali": ("s10", "a03s"),
    "powervr": ("a03s", "s10"),
    "apple": ("iphonexs", "iphone7"),
}


@dataclass(frozen=True)
class Figure:
    """One spec-sheet figure and where it was read."""

    value: float
    url: str
    note: str = ""


@dataclass(frozen=True)
class GpuSpec:
    """A GPU as tflat knows it: its delegate family (and rules entry) and its figures."""

    name: str
    family: str
    rules_model: str = ""
    usc_device: str = ""
    soc: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)

    @property
    def gpu_family(self) -> str:
        """The family string predictors and the partition use: ``family:model`` as the shipped
        bundles of the same GPU have it (:func:`tflat.predict.usc.gpu_family_of`), else the
        vendor family."""
        from tflat.predict.usc import gpu_family_of

        return gpu_family_of(self.family, self.rules_model or None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "gpu_family": self.gpu_family,
            "soc": self.soc,
            "figures": {
                k: {"value": f.value, "url": f.url, **({"note": f.note} if f.note else {})}
                for k, f in self.figures.items()
            },
        }


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


@lru_cache(maxsize=1)
def _table() -> dict[str, GpuSpec]:
    text = resources.files("tflat").joinpath("data", "gpus.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text).get("gpu", {})
    out: dict[str, GpuSpec] = {}
    for entry in raw.values():
        figures = {
            k: Figure(float(v["value"]), str(v["url"]), str(v.get("note", "")))
            for k, v in entry.items()
            if isinstance(v, dict) and "value" in v
        }
        spec = GpuSpec(
            name=str(entry["display"]),
            family=str(entry["family"]),
            rules_model=str(entry.get("rules_model", "")),
            usc_device=str(entry.get("usc_device", "")),
            soc=str(entry.get("soc", "")),
            figures=figures,
        )
        for alias in entry.get("names", []):
            out[_key(alias)] = spec
    return out


def known_gpus() -> list[GpuSpec]:
    """Every GPU of the table, once each."""
    seen: dict[str, GpuSpec] = {}
    for spec in _table().values():
        seen.setdefault(spec.name, spec)
    return list(seen.values())


def gpu_spec(name: str) -> GpuSpec:
    """The GPU called ``name`` ("Mali-G710 MP7", "adreno 740", "Apple A15"): a table entry
    when tflat has one, else the vendor family read off the name with no figures. A name of no
    known family -> :class:`TflatError`."""
    key = _key(name)
    if not key:
        raise TflatError("--gpu: empty GPU name")
    table = _table()
    if key in table:
        return table[key]
    for alias, spec in table.items():
        # "Mali-G710 MP7 (Tensor G2)", "Adreno 740 @ 680 MHz": a known name it starts with
        if key.startswith(alias) and len(alias) >= 6:
            return spec
    for pattern, family in _FAMILY_PATTERNS:
        if re.search(pattern, key):
            return GpuSpec(name=name.strip(), family=family)
    raise TflatError(
        f"--gpu: cannot tell the GPU family of {name!r} "
        "(expected an Adreno, Mali, PowerVR or Apple GPU name, e.g. 'Mali-G710 MP7')"
    )
