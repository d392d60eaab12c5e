"""Loader of the USC mobile ML benchmark (qed-usc/mobile-ml-benchmark, MIT licence).

The study measured pytorchcv CNNs converted to float TFLite on six phones: one row per GPU kernel
(``tflite_cnn_ops_gpu.csv``) and one per whole model and configuration (``tflite_cnn_e2e.csv``).
It is the training and test set of the shipped phone predictors, so the loader keeps provenance
and the architecture family of each model: evaluation never puts one family in train and test.
Units in the CSV files are microseconds; here they are milliseconds.

The files ship inside the package (``tflat/data/usc/*.csv.xz``, with their licence and source), so
a fresh install trains and evaluates with nothing beside it; ``TFLAT_USC_DIR`` or an explicit
folder of the repository's plain ``.csv`` files take precedence.
"""

from __future__ import annotations

import ast
import csv
import io
import lzma
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tflat.errors import TflatError

DEVICES = ("pixel4", "s10", "mi8se", "a03s", "iphone7", "iphonexs")
OPS_FILE = "tflite_cnn_ops_gpu.csv"
E2E_FILE = "tflite_cnn_e2e.csv"
SOURCE = {
    "source": "github.com/qed-usc/mobile-ml-benchmark",
    "commit": "c864a33",
    "licence": "MIT",
    "units_in_source": "us",
}

#: Architecture families, first matching prefix wins. Variants of one paper share a family
#: (widths, "b" variants, pre-activation and squeeze-excitation ResNets, SqueezeResNet with
#: SqueezeNet), so a family-held-out split never tests on a sibling of a training model.
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("mobilenetv3", "mobilenetv3"),
    ("mobilenetv2", "mobilenetv2"),
    ("fdmobilenet", "mobilenet"),
    ("mobilenet", "mobilenet"),
    ("sepreresnet", "resnet"),
    ("seresnet", "resnet"),
    ("preresnet", "resnet"),
    ("resnext", "resnext"),
    ("resnet", "resnet"),
    ("squeeze", "squeezenet"),
    ("densenet", "densenet"),
    ("proxylessnas", "proxylessnas"),
    ("regnet", "regnet"),
    ("diracnet", "diracnet"),
    ("bagnet", "bagnet"),
    ("bninception", "bninception"),
    ("fbnet", "fbnet"),
    ("spnasnet", "spnasnet"),
)


def family_of(model: str) -> str:
    """The architecture family of a pytorchcv model name (unknown names: the name's stem)."""
    name = model.lower()
    for prefix, family in _FAMILY_PREFIXES:
        if name.startswith(prefix):
            return family
    return re.split(r"[_\d]", name, maxsplit=1)[0] or name


@dataclass(frozen=True)
class UscOpRow:
    """One GPU kernel of one model on one device.

    ``feature`` keeps the data's keys (Input_shape, Input_channel, Output_shape, Stride, Kernel,
    Filter, Group, FLOPS) as ints; keys the data marks "-" are absent. For CONCATENATION,
    Kernel is the number of inputs and Filter the output channels. ``position`` is the kernel's
    order within its model.
    """

    model: str
    family: str
    operation: str
    feature: dict[str, int]
    device: str
    latency_ms: float
    kernel_name: str
    position: int = 0


@dataclass(frozen=True)
class UscModelRow:
    """Whole-model latency of one model in one configuration ("gpu|float", "1large|float")."""

    model: str
    family: str
    device: str
    config: str
    mean_ms: float
    std_ms: float
    flops: int
    size_bytes: int


@dataclass(frozen=True)
class UscData:
    ops: list[UscOpRow]
    models: list[UscModelRow]
    folder: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def ops_for(self, device: str) -> list[UscOpRow]:
        return [r for r in self.ops if r.device == device]

    def models_for(self, device: str, config: str = "gpu|float") -> list[UscModelRow]:
        return [r for r in self.models if r.device == device and r.config == config]


def packaged_folder() -> Path:
    """The copy shipped inside the package: ``tflat/data/usc`` (xz-compressed CSV files)."""
    return Path(__file__).resolve().parents[1] / "data" / "usc"


def default_folder() -> Path:
    """TFLAT_USC_DIR when set, else the packaged copy."""
    env = os.environ.get("TFLAT_USC_DIR")
    return Path(env) if env else packaged_folder()


def data_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` (a plain CSV), else ``folder/name.xz`` (the packaged form), else None."""
    for candidate in (folder / name, folder / f"{name}.xz"):
        if candidate.is_file():
            return candidate
    return None


def have_usc(folder: Path | None = None) -> bool:
    """Whether both files are in ``folder`` (default: :func:`default_folder`)."""
    base = Path(folder) if folder is not None else default_folder()
    return all(data_file(base, name) is not None for name in (OPS_FILE, E2E_FILE))


def _int(value: Any) -> int:
    return int(float(value))


def _parse_feature(text: str, where: str) -> dict[str, int]:
    try:
        raw = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise TflatError(f"{where}: feature is not a dict literal") from exc
    if not isinstance(raw, dict):
        raise TflatError(f"{where}: feature is not a dict literal")
    try:
        # "-" marks a field that does not apply (Stride of a concatenation): left out.
        return {str(k): _int(v) for k, v in raw.items() if str(v).strip() != "-"}
    except (TypeError, ValueError) as exc:
        raise TflatError(f"{where}: feature value is not a number") from exc


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file, plain or xz-compressed (``.xz``)."""
    try:
        if path.suffix == ".xz":
            text = lzma.decompress(path.read_bytes()).decode("utf-8")
            return list(csv.DictReader(io.StringIO(text, newline="")))
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise TflatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (lzma.LZMAError, UnicodeDecodeError) as exc:
        raise TflatError(f"cannot read {path}: not an xz-compressed UTF-8 CSV ({exc})") from exc


def load_usc(folder: Path | None = None) -> UscData:
    """Read both CSV files of the USC benchmark; latencies in ms, one op row per device."""
    base = Path(folder) if folder is not None else default_folder()
    found = {name: data_file(base, name) for name in (OPS_FILE, E2E_FILE)}
    for name, p in found.items():
        if p is None:
            raise TflatError(
                f"USC data not found: no {name} in {base} (set TFLAT_USC_DIR or pass the folder)"
            )
    ops_path, e2e_path = found[OPS_FILE], found[E2E_FILE]
    assert ops_path is not None and e2e_path is not None
    ops: list[UscOpRow] = []
    position: dict[str, int] = {}
    for line, rec in enumerate(read_csv(ops_path), start=2):
        model = rec["model"]
        pos = position.get(model, 0)
        position[model] = pos + 1
        feature = _parse_feature(rec["feature"], f"{OPS_FILE}:{line}")
        for dev in DEVICES:
            value = rec.get(f"{dev}|gpu|float", "")
            if not value:
                continue
            ops.append(
                UscOpRow(
                    model=model,
                    family=family_of(model),
                    operation=rec["operation"],
                    feature=feature,
                    device=dev,
                    latency_ms=float(value) / 1000.0,
                    kernel_name=rec.get(f"{dev}|gpu|kernel", "") or "",
                    position=pos,
                )
            )
    models: list[UscModelRow] = []
    for rec in read_csv(e2e_path):
        model = rec["model"]
        for key, value in rec.items():
            if not key.endswith("|mean") or not value:
                continue
            dev, config = key.split("|", 1)[0], key.split("|", 1)[1].rsplit("|", 1)[0]
            std = rec.get(key[: -len("mean")] + "std", "") or "nan"
            models.append(
                UscModelRow(
                    model=model,
                    family=family_of(model),
                    device=dev,
                    config=config,
                    mean_ms=float(value) / 1000.0,
                    std_ms=float(std) / 1000.0,
                    flops=_int(rec.get("FLOPS") or 0),
                    size_bytes=_int(rec.get("size") or 0),
                )
            )
    provenance = dict(SOURCE, op_rows=len(ops), model_rows=len(models), files=[OPS_FILE, E2E_FILE])
    return UscData(ops=ops, models=models, folder=str(base), provenance=provenance)
