"""Whole-model timings of a new phone: the ``model,ms`` CSV of ``tflat device add --timings``.

``model`` is a ``.tflite`` file (relative to the CSV's folder, else to the working folder) or a
model name of the USC data given with ``--usc``; ``ms`` is the whole-model GPU latency
measured on the phone (or read off a paper). Every problem is one line naming the file and
line; nothing is skipped silently.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from tflat.errors import TflatError

MIN_ROWS = 3


@dataclass(frozen=True)
class Timing:
    """One row: the model as written, the file it names (None for a USC name), the ms."""

    model: str
    latency_ms: float
    path: Path | None
    line: int

    @property
    def name(self) -> str:
        """The model's name without folder and extension (``mobilenet_v2.tflite`` ->
        ``mobilenet_v2``)."""
        return self.path.stem if self.path is not None else self.model


def _positive_ms(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TflatError(f"{where}: ms must be a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise TflatError(f"{where}: ms must be a positive number, got {text!r}")
    return value


def read_timings(path: Path, usc_models: set[str] | frozenset[str] = frozenset()) -> list[Timing]:
    """The rows of a timings CSV, each model resolved to a ``.tflite`` file or a USC name."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TflatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise TflatError(f"cannot read {path}: not a text (UTF-8) CSV file") from None
    lines = text.splitlines()
    try:
        reader = csv.DictReader(lines)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise TflatError(f"{path}: not a CSV file: {exc}") from exc
    if "model" not in header or "ms" not in header:
        raise TflatError(f"{path}: expected a header with columns model,ms")
    reader.fieldnames = header
    out: list[Timing] = []
    seen: dict[str, int] = {}
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise TflatError(f"{path}: not a CSV file: {exc}") from exc
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        model = (row.get("model") or "").strip()
        ms_text = (row.get("ms") or "").strip()
        if not model and not ms_text:
            continue  # a blank line
        if not model:
            raise TflatError(f"{where}: empty model")
        ms = _positive_ms(ms_text, where)
        resolved = _resolve(model, path.parent)
        if resolved is None and model not in usc_models:
            hint = (
                " nor a model of --usc" if usc_models else " (pass --usc DIR for USC model names)"
            )
            raise TflatError(f"{where}: unknown model {model!r}: not a .tflite file{hint}")
        if model in seen:
            raise TflatError(f"{where}: model {model!r} is listed twice (line {seen[model]})")
        seen[model] = line
        out.append(Timing(model=model, latency_ms=ms, path=resolved, line=line))
    if len(out) < MIN_ROWS:
        raise TflatError(f"{path}: {len(out)} timed models; a transfer needs at least {MIN_ROWS}")
    return out


def _resolve(model: str, folder: Path) -> Path | None:
    if not model.lower().endswith(".tflite"):
        return None
    for base in (folder, Path.cwd()):
        p = (base / model) if not Path(model).is_absolute() else Path(model)
        if p.is_file():
            return p
    return None
